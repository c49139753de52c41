#pragma once
// Planning a sweep before anything runs: the time model behind --dry-run and
// the ETA, the groups of points that share inputs (and so one truth), the
// static shards of `--shard K/N` and the order in which MPI hands groups out.
#include <cstdint>
#include <string>
#include <vector>

#include "satalab/io/results_file.hpp"

namespace satalab::cli {

// The time model (experiment/point.hpp), also under its former name here.
using satalab::point_seconds_estimate;

// Points that share their inputs and truth: computed together, with one truth.
struct PointGroup {
  std::vector<std::uint64_t> point_ids;  // ascending
  double estimated_seconds = 0;          // sum of point_seconds_estimate
};

// Groups every point by its inputs (workload, seed, shape, scale, truth, ...),
// groups in the order of their first point_id. `points[i].point_id` must be i.
std::vector<PointGroup> group_by_inputs(const std::vector<PointParams>& points);

// `--shard K/N`: shard K (1-based) of N.
struct Shard {
  std::uint64_t index = 1, count = 1;
};
// Parses "K/N" with 1 <= K <= N <= kMaxShards; InvalidArgument naming the text otherwise.
inline constexpr std::uint64_t kMaxShards = 1'000'000;
Shard parse_shard(const std::string& text);

// The shard (1..count) of each group: longest estimated group first, each to
// the shard with the least estimated seconds so far (ties: the lower shard;
// equal groups: the lower first point_id). Deterministic for a config, so
// every task of an array computes the same split.
std::vector<std::uint64_t> assign_shards(const std::vector<PointGroup>& groups, std::uint64_t count);

// Indices of `groups`, most expensive first (ties: lower first point_id).
std::vector<std::size_t> most_expensive_first(const std::vector<PointGroup>& groups);

}  // namespace satalab::cli
