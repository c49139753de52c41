#pragma once
// Runtime dispatch: run a method on float64 inputs under a precision policy,
// choosing the carrier scalar (float, double or MPFR) the policy needs, and
// return float64 outputs. Inputs are rounded once into the input format.
#include <cstdint>
#include <vector>

#include "satalab/attention/options.hpp"
#include "satalab/numeric/precision_policy.hpp"
#include "satalab/tensor.hpp"

namespace satalab {

struct AttentionOutput {
  HeadArrays y;           // [heads, n_tokens, d_value], the carrier's value rounded to float64
  std::vector<double> z;  // [heads, n_tokens] normalisers
  // exact-kvquant with a float-cast scheme: the absmax scales of K and V (one
  // per tensor or per head, quantized_kv.hpp); empty otherwise.
  std::vector<double> kv_scales_key, kv_scales_value;
};

// Throws InvalidArgument (shapes, P, names) or ResourceLimit (memory) before
// allocating anything large.
AttentionOutput compute_attention(Method method, const QkvArrays& inputs, const PrecisionPolicy& policy,
                                  const AttentionOptions& options);

// Bytes the carrier needs for inputs, outputs and states of one call (the
// number compute_attention checks against the memory limit).
std::uint64_t attention_memory_bytes(Method method, const QkvArrays& inputs, const PrecisionPolicy& policy,
                                     const AttentionOptions& options);

// True when the kernels run this policy as blocked matrix products (float or
// double carrier accumulating in its own format: fp64, fp32, *-acc32); false
// when every operation is rounded in software (fp16/bf16 accumulation, mp).
bool uses_matrix_products(const PrecisionPolicy& policy);

// Memory the method keeps for one sequence of n_tokens (all heads), in bytes:
// the KV cache for exact, taylor-quadratic and exact-kvquant (as
// options.kv_quant stores it; unquantized values in the policy's input
// format), SATA's recurrent state for sata (heads × state elements × bytes of
// the accumulate format). Throws ResourceLimit on 64-bit overflow.
std::uint64_t sequence_memory_bytes(Method method, std::uint64_t heads, std::uint64_t n_tokens, std::uint64_t d_key,
                                    std::uint64_t d_value, const PrecisionPolicy& policy,
                                    const AttentionOptions& options);

}  // namespace satalab
