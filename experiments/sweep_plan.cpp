// Sweep planning: time model, groups of points sharing inputs, static shards.
#include "sweep_plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <numeric>
#include <tuple>

#include "commands.hpp"
#include "satalab/error.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab::cli {
namespace {

// Everything that determines a point's inputs and its exact truth.
using InputKey = std::tuple<std::string, std::uint64_t, std::uint32_t, std::uint64_t, std::uint32_t, std::uint32_t,
                            double, double, double, std::string, bool, double, std::string, std::uint64_t, std::string>;
InputKey input_key(const PointParams& p) {
  const std::string truth = truth_policy(p.truth, precision_policy(p.precision)).name;
  // The modifiers and their parameters, as text: every value that changes the inputs.
  const std::string modifiers = p.modifiers.empty() ? std::string()
                                                    : fmt::format("{}|{}|{}|{}|{}|{}|{}|{}", p.modifiers, p.rope_theta,
                                                                  p.outlier_channels, p.outlier_magnitude,
                                                                  p.key_bias_norm, p.sink_tokens, p.sink_logit,
                                                                  p.sink_alignment);
  return {p.workload,   p.seed,   p.heads, p.n_tokens, p.d_key, p.d_value, p.scale, p.dof, p.needle_logit,
          p.input_file, p.causal, softmax_denominator(p), truth, measured_rows(p), modifiers};
}

std::uint64_t parse_positive(std::string_view digits) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) return 0;
  return v;
}

}  // namespace

std::vector<PointGroup> group_by_inputs(const std::vector<PointParams>& points) {
  std::map<InputKey, std::size_t> index;
  std::vector<PointGroup> groups;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const PointParams& p = points[i];
    if (p.point_id != i) throw std::logic_error(fmt::format("point {} is at index {}", p.point_id, i));
    const auto [it, inserted] = index.emplace(input_key(p), groups.size());
    if (inserted) groups.emplace_back();
    PointGroup& g = groups[it->second];
    g.point_ids.push_back(p.point_id);
    g.estimated_seconds += point_seconds_estimate(p);
  }
  return groups;
}

Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  Shard s;
  if (slash != std::string::npos) {
    s.index = parse_positive(std::string_view(text).substr(0, slash));
    s.count = parse_positive(std::string_view(text).substr(slash + 1));
  }
  if (slash == std::string::npos || s.index < 1 || s.count < 1 || s.index > s.count || s.count > kMaxShards) {
    throw InvalidArgument(fmt::format(
        "--shard '{}' is invalid (expected K/N with 1 <= K <= N <= {}, e.g. 2/8 for the second of eight shards)", text,
        kMaxShards));
  }
  return s;
}

std::vector<std::size_t> most_expensive_first(const std::vector<PointGroup>& groups) {
  std::vector<std::size_t> order(groups.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return groups[a].estimated_seconds > groups[b].estimated_seconds;  // stable: ties keep point_id order
  });
  return order;
}

std::vector<std::uint64_t> assign_shards(const std::vector<PointGroup>& groups, std::uint64_t count) {
  std::vector<std::uint64_t> shard_of(groups.size(), 1);
  std::vector<double> load(static_cast<std::size_t>(count), 0.0);
  for (const std::size_t g : most_expensive_first(groups)) {
    const auto least = std::min_element(load.begin(), load.end());  // the first of equal loads
    *least += groups[g].estimated_seconds;
    shard_of[g] = static_cast<std::uint64_t>(least - load.begin()) + 1;
  }
  return shard_of;
}

}  // namespace satalab::cli
