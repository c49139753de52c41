#pragma once
// Generated inputs. gaussian: entries of q and k ~ N(0, scale²), v ~ N(0, 1),
// drawn with Boost.Random (mt19937_64 and its normal_distribution, fixed
// algorithms, so the same seed gives the same inputs on any platform with the
// same Boost) in a fixed order: all of q, then k, then v, head-major.
#include <cstdint>

#include "satalab/tensor.hpp"

namespace satalab {

struct GaussianWorkload {
  std::size_t heads = 1, n_tokens = 1024, d_key = 8, d_value = 8;
  double scale = 1.0;
  std::uint64_t seed = 1;
};

// Throws InvalidArgument for zero sizes or a scale that is not finite and > 0,
// ResourceLimit when the arrays would exceed the memory limit.
QkvArrays gaussian_inputs(const GaussianWorkload& workload);

// Logit statistics of inputs: max |s| and the standard deviation of s = q·k/c
// over (a sample of at most `max_pairs` of) the pairs the mask allows.
struct LogitStats {
  double max_abs = 0, std = 0;
};
LogitStats logit_stats(const QkvArrays& inputs, double softmax_denominator, bool causal,
                       std::size_t max_pairs = 1u << 22);

}  // namespace satalab
