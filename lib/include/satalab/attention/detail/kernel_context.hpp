#pragma once
// What every kernel of one call needs to know of its precision policy,
// decided once per call (internal; docs/architecture.md, Kernels): the
// rounders of the three formats, the softmax denominator c, the path (blocked
// matrix products or operation by operation) and the carrier's
// multiprecision precision. Entry points build a context and pass it down;
// kernels never re-derive any of it from the policy.
#include <cmath>
#include <cstddef>
#include <optional>
#include <type_traits>

#include "satalab/numeric/mp_precision.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab::detail {

// How a kernel computes its sums.
//  - blocked: float or double carrier accumulating in its own format (fp64,
//    fp32, *-acc32): the sums are matrix products (Eigen), the elementwise
//    values still rounded as the policy says.
//  - operation_by_operation: sums rounded below the carrier (fp16, bf16) or
//    multiprecision: every operation rounded in software, in token order.
enum class KernelPath { blocked, operation_by_operation };

// The path for carrier T under `policy` (operation by operation when the
// policy's carrier is not T's, which no entry point does).
template <class T>
KernelPath kernel_path(const PrecisionPolicy& policy) {
  constexpr bool native = std::is_same_v<T, float> || std::is_same_v<T, double>;
  if constexpr (native) {
    const Carrier own = std::is_same_v<T, float> ? Carrier::f32 : Carrier::f64;
    if (policy.carrier == own && !Rounder<T>::needs_rounding(policy.accumulate, policy.carrier)) {
      return KernelPath::blocked;
    }
  }
  return KernelPath::operation_by_operation;
}

// An MpPrecisionScope for multiprecision policies, nothing otherwise.
class CarrierPrecisionScope {
 public:
  explicit CarrierPrecisionScope(const PrecisionPolicy& policy) {
    if (policy.carrier == Carrier::mp) scope_.emplace(policy.mp_bits);
  }

 private:
  std::optional<MpPrecisionScope> scope_;
};

// The context of one call (or of one state or decoder, for its lifetime).
// For mp_t, construct it with the policy's precision set (a
// CarrierPrecisionScope first): c is created at the current precision.
template <class T>
struct KernelContext {
  KernelContext(const PrecisionPolicy& policy_, std::size_t d_key, const std::optional<double>& softmax_denominator)
      : policy(policy_), round(policy), c(denominator(softmax_denominator, d_key, round)), path(kernel_path<T>(policy)) {}

  bool blocked() const { return path == KernelPath::blocked; }
  // Enters the carrier's precision for a public entry point (a no-op for
  // float and double, and when the precision is already set).
  CarrierPrecisionScope precision_scope() const { return CarrierPrecisionScope(policy); }

  PrecisionPolicy policy;
  PolicyRounders<T> round;
  T c;  // the softmax denominator, s = q·k / c, in the compute format
  KernelPath path;

 private:
  // c = the given value, or sqrt(d_key), rounded into the compute format.
  static T denominator(const std::optional<double>& given, std::size_t d_key, const PolicyRounders<T>& round) {
    using std::sqrt;
    return round.compute(given ? T(*given) : sqrt(T(static_cast<double>(d_key))));
  }
};

// A context built with the policy's precision set (the way to construct one
// outside a scope, e.g. as a member): the prvalue is built in place.
template <class T>
KernelContext<T> make_kernel_context(const PrecisionPolicy& policy, std::size_t d_key,
                                     const std::optional<double>& softmax_denominator) {
  const CarrierPrecisionScope scope(policy);
  return KernelContext<T>(policy, d_key, softmax_denominator);
}

}  // namespace satalab::detail
