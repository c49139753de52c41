#pragma once
// SATA's decode state under a runtime precision policy: the SataState<T> of
// the carrier the policy needs (float, double or MPFR) behind a float64
// interface, as compute_attention is for whole sequences. Inputs are rounded
// once into the policy's input format; outputs are the carrier's values
// rounded to float64. This is the decode loop driven from outside C++ (the
// Python module's SataState) and what a state file holds (io/sata_state_file.hpp).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "satalab/attention/options.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {

class RuntimeSataState {
 public:
  // An empty state (no tokens). Throws InvalidArgument (d < 1, P outside
  // 1..kMaxTaylorTerms, a softmax denominator that is not finite and > 0) or
  // ResourceLimit (basis tables or state larger than the memory limit),
  // before allocating anything large.
  RuntimeSataState(std::size_t d_key, std::size_t d_value, const PrecisionPolicy& policy,
                   const AttentionOptions& options);
  ~RuntimeSataState();
  RuntimeSataState(RuntimeSataState&&) noexcept;
  RuntimeSataState& operator=(RuntimeSataState&&) noexcept;

  // Appends n tokens: k is [n × d_key], v is [n × d_value], row-major.
  void append(const double* k, const double* v, std::size_t n);
  // Outputs for m queries against the tokens appended so far: y [m × d_value], z [m].
  void query(const double* q, std::size_t m, double* y, double* z) const;
  // Causal prefill of n tokens continuing from the state (chunks of
  // options.chunk: Taylor-quadratic inside a chunk, the state across chunks):
  // y [n × d_value], z [n]; leaves the n tokens in the state. Feeding a
  // sequence through prefill in pieces whose lengths are multiples of the
  // chunk gives the same numbers as one causal sata_attention call.
  void prefill(const double* q, const double* k, const double* v, std::size_t n, double* y,
               double* z);

  std::size_t tokens() const;
  std::size_t d_key() const;
  std::size_t d_value() const;
  std::size_t taylor_terms() const;
  std::size_t features() const;        // C(d_key+P-1, P-1)
  std::size_t state_elements() const;  // features · (d_value+1)
  std::uint64_t state_bytes() const;   // state_elements · bytes per element of the carrier
  const PrecisionPolicy& policy() const;
  const AttentionOptions& options() const;

  // The state [features × (d_value+1)] row-major (z in the last column),
  // rounded to float64 (exact for float and double carriers).
  std::vector<double> values() const;
  // The same values exactly, as C99 hexadecimal floats ("%a"; MPFR's "%Ra").
  std::vector<std::string> values_hex() const;
  // Replaces the state by `tokens` tokens' worth of sums given exactly (the
  // inverse of values_hex, or of values() for float and double carriers);
  // InvalidArgument if the count is wrong or a value is not exactly
  // representable in the carrier.
  void restore(std::size_t tokens, std::span<const std::string> values_hex);
  void restore(std::size_t tokens, std::span<const double> values);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace satalab
