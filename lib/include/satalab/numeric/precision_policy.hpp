#pragma once
// A precision policy (docs/architecture.md): the format inputs are stored in, the format
// of elementwise products that are stored (features, scores, kernel weights),
// and the format of sums (states, normalisers, dot products). A product that
// feeds a sum directly is rounded to the accumulate format, as a tensor core
// multiplying fp16 operands exactly into an fp32 accumulator does.
#include <cstddef>
#include <string>
#include <type_traits>
#include <string_view>
#include <vector>

#include "satalab/numeric/format.hpp"
#include "satalab/numeric/rounding.hpp"

namespace satalab {

// The scalar type the arithmetic is carried out in. Every format of a policy
// must be representable in it, and it must have at least 2p+2 bits for the
// formats it emulates by rounding after each operation.
enum class Carrier { f32, f64, mp };

struct PrecisionPolicy {
  std::string name;
  Format input;
  Format compute;
  Format accumulate;
  Carrier carrier = Carrier::f64;
  unsigned mp_bits = 0;  // carrier precision when carrier == mp
};

// Presets: fp64, fp32, bf16, fp16, fp16-acc32, bf16-acc32, e4m3-acc32,
// e5m2-acc32, e4m3sat-acc32, and mp<bits> (e.g. mp256). Unknown names throw
// InvalidArgument listing the valid ones.
PrecisionPolicy precision_policy(std::string_view name);
std::vector<std::string> precision_names();

// Rounds carrier values into one format; a no-op when the carrier is that format.
template <class T>
class Rounder {
 public:
  // Keeps its own copy of the format, so temporaries are safe to pass.
  Rounder(const Format& format, Carrier carrier) : format_(format), active_(needs_rounding(format, carrier)) {}
  T operator()(const T& x) const { return active_ ? round_to(x, format_) : x; }
  // Rounds x[0 .. n) in place (vectorised for float and double).
  void apply(T* x, std::size_t n) const {
    if (!active_) return;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      round_to(x, x, n, format_);
    } else {
      for (std::size_t i = 0; i < n; ++i) x[i] = round_to(x[i], format_);
    }
  }
  bool active() const { return active_; }
  const Format& format() const { return format_; }
  static bool needs_rounding(const Format& format, Carrier carrier) {
    if (carrier == Carrier::f32) return format != fp32();
    if (carrier == Carrier::f64) return format != fp64();
    return !format.multiprecision;  // mp carrier is created at the policy's precision
  }

 private:
  Format format_;
  bool active_;
};

// The three rounders of a policy, for a kernel written over carrier T.
template <class T>
struct PolicyRounders {
  explicit PolicyRounders(const PrecisionPolicy& p)
      : input(p.input, p.carrier), compute(p.compute, p.carrier), accumulate(p.accumulate, p.carrier) {}
  Rounder<T> input, compute, accumulate;
};

}  // namespace satalab
