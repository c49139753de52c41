#pragma once
// Needle-in-a-haystack inputs for sharp retrieval (docs/architecture.md §1, question 8):
// Gaussian inputs in which, for every head and every block of `query_block`
// consecutive queries, one key is planted so that the block's last query
// matches it with a prescribed logit.
//
// Construction. Start from gaussian_inputs(workload) (same seed, same stream:
// q and v and all other keys are bit-identical to it). For head h and block b
// with first position j = b * query_block and last query
// i = min(j + query_block, n_tokens) - 1, replace key j by
//     k_j = needle_logit * c * q_i / |q_i|^2,      c = softmax_denominator,
// so that s_ij = q_i·k_j / c = needle_logit up to the rounding of the
// construction (j <= i: the needle is visible under a causal mask). When the
// block holds a single query, i == j.
//
// Caveat: a planted key is also seen by later queries, for which it is a
// distractor with logit needle_logit * (q_i'·q_i) / |q_i|^2. That can exceed
// needle_logit when q_i is short and roughly aligned with q_i' (more likely at
// small d_key), so even exact attention may miss some needles.
#include <cstddef>
#include <vector>

#include "satalab/tensor.hpp"
#include "satalab/workload/gaussian.hpp"

namespace satalab {

struct NeedleInputs {
  QkvArrays qkv;
  // For each head h and query block b (head-major, then block order): the
  // query index i (the last query of the block) and the needle key index j
  // (the block's first position), with s_ij = q_i·k_j / c = needle_logit up to
  // the rounding of the construction. Indices are token positions within the
  // head.
  struct Needle {
    std::size_t head, query, key;
  };
  std::vector<Needle> needles;  // heads * ceil(n_tokens / query_block) entries
};

// Throws InvalidArgument for everything gaussian_inputs rejects, for
// query_block < 1, for a needle_logit that is not finite, for a
// softmax_denominator that is not finite and > 0 (pass sqrt(d_key) for the
// default), and if a planted key would not be finite (a zero query, or
// needle_logit * c too large); ResourceLimit when the arrays would exceed the
// memory limit.
NeedleInputs needle_inputs(const GaussianWorkload& workload, double needle_logit, double softmax_denominator,
                           std::size_t query_block = 64);

// Hit rate of an attention output y ([heads, n_tokens, d_value], row-major
// float64) on the needles of `inputs`. For needle (h, i, j) the coefficient of
// the needle value in the query's output is the projection
//     a = <y_i, v_j> / <v_j, v_j>
// (a = 1 when y_i = v_j, i.e. all attention on the needle; a ≈ the needle's
// attention weight in general, plus the projection of the other values). The
// needle is a hit when a > 0.5, i.e. y_i is dominated by v_j. Returns
// hits / needles in [0, 1], or NaN when there are no needles. A needle with
// v_j = 0 or a non-finite a is a miss. Throws InvalidArgument when y.size()
// is not heads * n_tokens * d_value of inputs.qkv.v.
double needle_hit_rate(const NeedleInputs& inputs, const std::vector<double>& y);

}  // namespace satalab
