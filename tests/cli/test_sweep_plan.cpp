// Sweep planning (experiments/sweep_plan.hpp): groups of points sharing
// inputs, static shards and the hand-out order, checked against properties
// computed here from the points themselves.
#include "sweep_plan.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "satalab/error.hpp"
#include "sweep_config.hpp"

namespace {

using satalab::cli::assign_shards;
using satalab::cli::group_by_inputs;
using satalab::cli::parse_shard;

const char* const kGrid = R"(
method = ["sata", "taylor-quadratic", "exact"]
taylor_terms = [2, 4]
precision = ["fp32", "bf16"]
d_key = [4, 8]
heads_times_d_key = 16
n_tokens = [128, 1024, 4096]
seed = [1, 2, 3]
)";

TEST(SweepPlan, GroupsHoldExactlyThePointsSharingWorkloadShapeSeedAndTruth) {
  const auto config = satalab::cli::parse_sweep_config(kGrid, "grid.toml", {});
  const auto groups = group_by_inputs(config.points);
  // Inputs differ by d_key (and heads), n_tokens, seed; the truth by precision only through fp64 (never here).
  EXPECT_EQ(groups.size(), 2u * 3u * 3u);
  std::set<std::uint64_t> seen;
  for (const auto& g : groups) {
    const auto& first = config.points[g.point_ids.front()];
    double seconds = 0;
    for (const std::uint64_t id : g.point_ids) {
      const auto& p = config.points[id];
      EXPECT_EQ(std::tie(p.d_key, p.heads, p.n_tokens, p.seed), std::tie(first.d_key, first.heads, first.n_tokens,
                                                                           first.seed));
      EXPECT_TRUE(seen.insert(id).second) << "point " << id << " in two groups";
      seconds += satalab::cli::point_seconds_estimate(p);
    }
    EXPECT_DOUBLE_EQ(g.estimated_seconds, seconds);
    EXPECT_TRUE(std::is_sorted(g.point_ids.begin(), g.point_ids.end()));
  }
  EXPECT_EQ(seen.size(), config.points.size());
}

TEST(SweepPlan, ShardsCoverEveryGroupOnceAreDeterministicAndBalancedWithinTheLargestGroup) {
  const auto config = satalab::cli::parse_sweep_config(kGrid, "grid.toml", {});
  const auto groups = group_by_inputs(config.points);
  double total = 0, largest = 0;
  for (const auto& g : groups) {
    total += g.estimated_seconds;
    largest = std::max(largest, g.estimated_seconds);
  }
  for (const std::uint64_t shards : {1u, 2u, 3u, 5u, 40u}) {
    const auto shard_of = assign_shards(groups, shards);
    EXPECT_EQ(shard_of, assign_shards(groups, shards));
    std::vector<double> load(shards, 0.0);
    for (std::size_t g = 0; g < groups.size(); ++g) {
      ASSERT_GE(shard_of[g], 1u);
      ASSERT_LE(shard_of[g], shards);
      load[shard_of[g] - 1] += groups[g].estimated_seconds;
    }
    // Greedy longest-first: no shard exceeds the mean by more than one group.
    const double heaviest = *std::max_element(load.begin(), load.end());
    EXPECT_LE(heaviest, total / static_cast<double>(shards) + largest + 1e-9) << shards << " shards";
    EXPECT_NEAR(std::accumulate(load.begin(), load.end(), 0.0), total, 1e-9 * total);
  }
}

TEST(SweepPlan, MostExpensiveFirstOrdersGroupsByEstimatedTime) {
  const auto config = satalab::cli::parse_sweep_config(kGrid, "grid.toml", {});
  const auto groups = group_by_inputs(config.points);
  const auto order = satalab::cli::most_expensive_first(groups);
  ASSERT_EQ(order.size(), groups.size());
  for (std::size_t i = 1; i < order.size(); ++i) {
    EXPECT_GE(groups[order[i - 1]].estimated_seconds, groups[order[i]].estimated_seconds);
  }
  EXPECT_EQ(config.points[groups[order.front()].point_ids.front()].n_tokens, 4096u);
}

TEST(SweepPlan, ParseShardAcceptsKOfNAndRefusesEverythingElseNamingIt) {
  const auto s = parse_shard("2/8");
  EXPECT_EQ(s.index, 2u);
  EXPECT_EQ(s.count, 8u);
  for (const char* bad : {"0/3", "4/3", "3", "1/0", "a/b", "1/3x", "-1/3", "/3", "1/", ""}) {
    try {
      (void)parse_shard(bad);
      ADD_FAILURE() << bad << " accepted";
    } catch (const satalab::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
