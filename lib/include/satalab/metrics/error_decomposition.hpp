#pragma once
// The four-way error decomposition of DESIGN §3 for one method at one
// precision policy on one input set, as `satalab run` reports it:
//   total      = method(policy)            vs exact(truth)
//   truncation = taylor-quadratic(truth)   vs exact(truth)             (not for exact)
//   rounding   = method(policy)            vs taylor-quadratic(truth)  (not for exact)
//   baseline   = exact(policy)             vs exact(truth)             (for exact: the total)
// plus the normaliser statistics of the method's output.
#include <cstddef>
#include <functional>
#include <optional>
#include <string_view>

#include "satalab/attention/compute.hpp"
#include "satalab/metrics/error_metrics.hpp"

namespace satalab {

// The truth precision for a policy: `name` is "auto", "fp64" or "mp<bits>".
// auto: fp64 for policies at fp32 and below (float carrier), mp128 for fp64,
// mp<2*bits> for mp<bits>. Other names throw InvalidArgument.
PrecisionPolicy truth_policy(std::string_view name, const PrecisionPolicy& policy);

// How one attention output is computed; compute_attention by default. A caller
// may pass its own (e.g. one that reports progress or can be interrupted) as
// long as it returns what compute_attention returns.
using AttentionComputer = std::function<AttentionOutput(
    Method, const QkvArrays&, const PrecisionPolicy&, const AttentionOptions&)>;

struct ErrorDecomposition {
  PrecisionPolicy truth;
  AttentionOutput output;        // the method at the policy
  AttentionOutput truth_output;  // exact attention at the truth precision
  ErrorMetrics total;
  std::optional<ErrorMetrics> truncation, rounding;
  ErrorMetrics baseline;
  NormaliserStats normalisers;  // of output.z
};

// Checks the memory of all (up to four) computations against the limit before
// any starts (ResourceLimit naming the computation), then runs them.
ErrorDecomposition decompose_error(Method method, const QkvArrays& inputs,
                                   const PrecisionPolicy& policy, const PrecisionPolicy& truth,
                                   const AttentionOptions& options,
                                   std::size_t position_blocks = 16,
                                   const AttentionComputer& compute = compute_attention);

}  // namespace satalab
