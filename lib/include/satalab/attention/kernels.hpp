#pragma once
// The attention kernels, each written once over the carrier scalar T (float,
// double, mp_t; instantiated in src/attention for those three) and taking a
// runtime precision policy. Inputs must already be in the policy's input
// format (see to_carrier). Outputs: y [heads, n, d_value] in the accumulate
// format and the normaliser z [heads, n] of every row:
//  - exact: z = Σ_j exp(s_ij - max_j s_ij) (>= 1; the max-subtracted sum),
//  - taylor-quadratic and SATA: z = Σ_j T_P(s_ij), which can be tiny or
//    negative when P-1 is odd; it is reported as computed, never clamped.
// Heads run in parallel (OpenMP). Sums run in a fixed order (keys in token
// order, features in basis order) independent of the number of threads.
#include <vector>

#include "satalab/attention/head_tensor.hpp"
#include "satalab/attention/options.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {

template <class T>
struct AttentionResult {
  HeadTensor<T> y;
  std::vector<T> z;  // [heads * n_tokens]
};

// Softmax attention, max-subtracted, in key blocks of options.key_block with an
// online rescaling (memory O(n·d)).
template <class T>
AttentionResult<T> exact_attention(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                                   const PrecisionPolicy& policy, const AttentionOptions& options);

// Exact attention with exp replaced by T_P(s) = Σ_{p<P} s^p/p! (Horner's rule
// on s): the mathematical target of SATA and its oracle; O(n²).
template <class T>
AttentionResult<T> taylor_quadratic_attention(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                                              const PrecisionPolicy& policy, const AttentionOptions& options);

// Symmetry-aware Taylor attention: non-causal (one state of all keys) or causal
// chunked prefill (sata_state.hpp).
template <class T>
AttentionResult<T> sata_attention(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                                  const PrecisionPolicy& policy, const AttentionOptions& options);

// Checks shapes (heads and n equal, q and k the same d, nothing empty, P >= 1)
// and throws InvalidArgument naming the mismatch.
// Exact attention as a kernel recipe computes it (attention/recipe.hpp):
// options.recipe (not none) on the float64 inputs, which the recipe rounds and
// quantises itself; outputs in float64 (each in the recipe's output format),
// z the row's normaliser Σ_j exp(s_ij - m_i) as the recipe sums it in fp32.
AttentionResult<double> recipe_attention(const QkvArrays& inputs, const AttentionOptions& options);

template <class T>
void check_attention_shapes(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                            const AttentionOptions& options);

}  // namespace satalab
