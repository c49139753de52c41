#pragma once
// Generated inputs with heavy tails: entries of q and k follow a Student-t
// distribution with `dof` degrees of freedom, rescaled by
// scale * sqrt((dof - 2) / dof) so that their standard deviation equals
// workload.scale (the same second moment as gaussian_inputs, but with larger
// rare logits: the excess kurtosis of an entry is 6 / (dof - 4) for dof > 4
// and infinite for 2 < dof <= 4). v ~ N(0, 1) as in gaussian_inputs.
//
// RNG conventions are those of gaussian_inputs: one Boost.Random mt19937_64
// seeded with workload.seed, consumed sequentially (so the result does not
// depend on the thread count) in a fixed order: all of q, then k, then v,
// head-major. Each t variate is Boost's student_t_distribution(dof), which
// draws one normal and one chi-squared(dof) variate per value.
#include "satalab/tensor.hpp"
#include "satalab/workload/gaussian.hpp"

namespace satalab {

// Throws InvalidArgument for everything gaussian_inputs rejects (zero sizes, a
// scale that is not finite and > 0) and for a dof that is not finite or <= 2
// (the variance is infinite there); ResourceLimit when the arrays would exceed
// the memory limit.
QkvArrays heavy_tailed_inputs(const GaussianWorkload& workload, double dof);

}  // namespace satalab
