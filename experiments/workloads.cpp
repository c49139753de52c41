#include "workloads.hpp"

#include <fmt/format.h>

#include "satalab/error.hpp"

namespace satalab::cli {

std::vector<WorkloadModifier> workload_modifiers(const PointParams& p) {
  std::vector<WorkloadModifier> out;
  for (const ModifierKind kind : parse_modifier_list(p.modifiers)) {
    WorkloadModifier m;
    m.kind = kind;
    m.rope_theta = p.rope_theta;
    m.outlier_channels = p.outlier_channels;
    m.outlier_magnitude = p.outlier_magnitude;
    m.key_bias_norm = p.key_bias_norm;
    m.sink_tokens = p.sink_tokens;
    m.sink_logit = p.sink_logit;
    m.sink_alignment = p.sink_alignment;
    out.push_back(m);
  }
  return out;
}

QkvArrays fitted_workload_inputs(const QkvArrays& source, const std::string& path, std::size_t heads,
                                 std::size_t n_tokens, std::size_t d_key, std::size_t d_value, std::uint64_t seed) {
  if (source.q.heads != heads || source.q.dim != d_key || source.v.dim != d_value) {
    throw InvalidArgument(fmt::format("fitted: '{}' has heads={}, d_key={}, d_value={} but the point has heads={}, "
                                      "d_key={}, d_value={} (set them to the file's)",
                                      path, source.q.heads, source.q.dim, source.v.dim, heads, d_key, d_value));
  }
  return fitted_inputs(source, n_tokens, seed);
}

}  // namespace satalab::cli
