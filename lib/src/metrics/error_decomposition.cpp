#include "satalab/metrics/error_decomposition.hpp"

#include <fmt/format.h>

#include <string>
#include <utility>

#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {

PrecisionPolicy truth_policy(std::string_view name, const PrecisionPolicy& policy) {
  if (name != "auto") {
    const PrecisionPolicy truth = precision_policy(name);
    if (truth.name != "fp64" && truth.carrier != Carrier::mp) {
      throw InvalidArgument(fmt::format(
          "truth precision '{}' is not allowed (allowed: fp64, mp<bits> e.g. mp256)", name));
    }
    return truth;
  }
  if (policy.carrier == Carrier::f32) return precision_policy("fp64");
  if (policy.carrier == Carrier::f64) return precision_policy("mp128");
  return precision_policy(fmt::format("mp{}", 2 * policy.mp_bits));
}

ErrorDecomposition decompose_error(Method method, const QkvArrays& inputs,
                                   const PrecisionPolicy& policy, const PrecisionPolicy& truth,
                                   const AttentionOptions& options, std::size_t position_blocks,
                                   const AttentionComputer& compute) {
  for (const auto& [m, p] : {std::pair{method, policy},
                             {Method::exact, truth},
                             {Method::taylor_quadratic, truth},
                             {Method::exact, policy}}) {
    check_memory(attention_memory_bytes(m, inputs, p, options),
                 fmt::format("{} at {}", method_name(m), p.name));
  }
  ErrorDecomposition out;
  out.truth = truth;
  out.output = compute(method, inputs, policy, options);
  out.truth_output = compute(Method::exact, inputs, truth, options);
  const OutputShape shape{out.output.y.heads, out.output.y.n_tokens, out.output.y.dim};
  out.total = error_metrics(out.output.y.data, out.truth_output.y.data, shape, position_blocks);
  if (method == Method::exact) {
    out.baseline = out.total;
  } else {
    const AttentionOutput oracle = compute(Method::taylor_quadratic, inputs, truth, options);
    out.truncation = error_metrics(oracle.y.data, out.truth_output.y.data, shape, position_blocks);
    out.rounding = error_metrics(out.output.y.data, oracle.y.data, shape, position_blocks);
    const AttentionOutput exact_policy = compute(Method::exact, inputs, policy, options);
    out.baseline =
        error_metrics(exact_policy.y.data, out.truth_output.y.data, shape, position_blocks);
  }
  out.normalisers = normaliser_stats(out.output.z);
  return out;
}

}  // namespace satalab
