// Cost formulas (docs/architecture.md §2, paper §2.6-2.7) against the paper's published
// numbers and an independent evaluation: binomials from a Pascal table, the
// closed form of eq. (15) evaluated in exact integer arithmetic, and the
// per-degree sum Σ_{p<P} (4 d_v + 2p + 4)·m_p.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "satalab/cost/cost.hpp"
#include "satalab/error.hpp"

namespace satalab {
namespace {

// C(n, k) for n < 80, k < 10 by Pascal's rule.
std::uint64_t pascal(std::size_t n, std::size_t k) {
  static const std::vector<std::vector<std::uint64_t>> table = [] {
    std::vector<std::vector<std::uint64_t>> t(80, std::vector<std::uint64_t>(10, 0));
    for (std::size_t r = 0; r < t.size(); ++r) {
      t[r][0] = 1;
      for (std::size_t c = 1; c < t[r].size() && c <= r; ++c) t[r][c] = t[r - 1][c - 1] + t[r - 1][c];
    }
    return t;
  }();
  return table.at(n).at(k);
}

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

TEST(SataCost, PaperExampleDKey64DValue64FourTerms) {
  const SataCost cost = sata_cost(64, 64, 4);
  EXPECT_EQ(cost.features, 47905u);  // C(67, 3)
  EXPECT_EQ(cost.state_elements, 3113825u);
  EXPECT_EQ(cost.flops_per_token, 12738308u);
  EXPECT_NEAR(static_cast<double>(sata_flops_closed_form(64, 64, 4)), 12738308.0, 1e-6);
}

TEST(SataCost, IntegerFlopsAndStateMatchClosedFormAndPascalTableOverAGrid) {
  for (std::uint64_t d_key = 1; d_key <= 64; ++d_key) {
    for (std::uint64_t d_value : {1u, 8u, 64u}) {
      for (std::uint64_t P = 1; P <= 8; ++P) {
        const SataCost cost = sata_cost(d_key, d_value, P);
        const std::uint64_t features = pascal(d_key + P - 1, P - 1);
        ASSERT_EQ(cost.features, features) << d_key << " " << d_value << " " << P;
        ASSERT_EQ(cost.state_elements, (d_value + 1) * features) << d_key << " " << d_value << " " << P;

        // Eq. (15) in exact integers: (4 d_v + 2)·N + 2(P d_k + 1)·N/(d_k + 1),
        // where (d_k + 1) divides 2(P d_k + 1)·N.
        const std::uint64_t numerator = 2 * (P * d_key + 1) * features;
        ASSERT_EQ(numerator % (d_key + 1), 0u) << d_key << " " << d_value << " " << P;
        const std::uint64_t closed = (4 * d_value + 2) * features + numerator / (d_key + 1);
        ASSERT_EQ(cost.flops_per_token, closed) << d_key << " " << d_value << " " << P;

        // The long double closed form rounds to the same integer.
        const long double approx = sata_flops_closed_form(d_key, d_value, P);
        ASSERT_EQ(static_cast<std::uint64_t>(std::llround(approx)), cost.flops_per_token)
            << d_key << " " << d_value << " " << P;

        // And the per-degree sum of eq. (14).
        std::uint64_t sum = 0;
        for (std::uint64_t p = 0; p < P; ++p) sum += (4 * d_value + 2 * p + 4) * pascal(d_key + p - 1, p);
        ASSERT_EQ(cost.flops_per_token, sum) << d_key << " " << d_value << " " << P;
      }
    }
  }
}

TEST(SataCost, InvalidDimensionsOrTermsThrowInvalidArgument) {
  EXPECT_THROW(sata_cost(0, 64, 4), InvalidArgument);
  EXPECT_THROW(sata_cost(64, 0, 4), InvalidArgument);
  EXPECT_THROW(sata_cost(64, 64, 0), InvalidArgument);
  EXPECT_THROW(sata_cost(0, 0, 0), InvalidArgument);
}

TEST(SataCost, HugeRequestThrowsResourceLimit) {
  EXPECT_THROW(sata_cost(1000000, 64, 21), ResourceLimit);
  // Overflow anywhere (the d + P - 1 argument, the state, the FLOPs) is refused, never wrapped.
  EXPECT_THROW(sata_cost(kMax, 64, 2), ResourceLimit);
  EXPECT_THROW(sata_cost(64, kMax, 2), ResourceLimit);
  EXPECT_THROW(sata_cost(64, kMax / 2, 4), ResourceLimit);
}

// d_key = 1 has one feature per degree, so P can be huge while the counts
// still fit: m_p = 1, N = P, FLOPs = Σ_{p<P} (4 d_v + 2p + 4) = (4 d_v + 4)P + P(P-1).
TEST(SataCost, HugeTermCountsAreExactOrRefusedQuickly) {
  const std::uint64_t P = 1ull << 20;
  const SataCost line = sata_cost(1, 1, P);
  EXPECT_EQ(line.features, P);
  EXPECT_EQ(line.state_elements, 2 * P);
  EXPECT_EQ(line.flops_per_token, 8 * P + P * (P - 1));
  // P(P-1) > 2^64: refused, not looped over for minutes, not wrapped.
  EXPECT_THROW(sata_cost(1, 1, 1ull << 40), ResourceLimit);
  EXPECT_THROW(sata_cost(2, 1, 1ull << 33), ResourceLimit);
  // d_key = 2: m_p = p + 1, summed here term by term.
  const std::uint64_t terms = 3000;
  std::uint64_t sum = 0, features = 0;
  for (std::uint64_t p = 0; p < terms; ++p) {
    sum += (4 * 3 + 2 * p + 4) * (p + 1);
    features += p + 1;
  }
  const SataCost plane = sata_cost(2, 3, terms);
  EXPECT_EQ(plane.features, features);
  EXPECT_EQ(plane.state_elements, 4 * features);
  EXPECT_EQ(plane.flops_per_token, sum);
}

TEST(ConventionalCost, KvCacheAndFlopsPerTokenMatchThePaper) {
  EXPECT_EQ(kv_cache_elements(64, 64, 1000), 128000u);
  EXPECT_EQ(conventional_flops_per_token(64, 64, 1000), 259000u);
  EXPECT_EQ(kv_cache_elements(3, 5, 7), 7u * 8u);
  EXPECT_EQ(conventional_flops_per_token(3, 5, 7), 7u * (6 + 10 + 3));
  EXPECT_EQ(kv_cache_elements(64, 64, 0), 0u);
}

TEST(ConventionalCost, OverflowThrowsResourceLimitInsteadOfWrapping) {
  EXPECT_THROW(kv_cache_elements(kMax, 64, 1000), ResourceLimit);
  EXPECT_THROW(kv_cache_elements(kMax, 1, 1), ResourceLimit);
  EXPECT_THROW(kv_cache_elements(64, 64, kMax), ResourceLimit);
  EXPECT_THROW(conventional_flops_per_token(kMax / 2 + 1, 1, 1), ResourceLimit);
  EXPECT_THROW(conventional_flops_per_token(1, kMax / 2, 1), ResourceLimit);
  EXPECT_THROW(conventional_flops_per_token(64, 64, kMax), ResourceLimit);
}

}  // namespace
}  // namespace satalab
