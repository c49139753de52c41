// Error metrics (docs/architecture.md §1, §3): quantiles against numpy's type-7 closed form,
// fixed log10 histogram edges, elementwise / normwise errors on inputs with
// errors known by construction, position blocks, normaliser statistics.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "satalab/error.hpp"
#include "satalab/metrics/error_metrics.hpp"

namespace satalab {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// numpy.percentile default ("linear", type 7) on the sorted sample x_0..x_{n-1}
// with x_k = a + b*k: the virtual index q*(n-1) interpolates linearly, so the
// quantile is a + b*q*(n-1).
double type7_arithmetic(double a, double b, std::size_t n, double q) {
  return a + b * q * static_cast<double>(n - 1);
}

std::vector<double> shuffled(std::vector<double> v, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

std::size_t bin_of(const Log10Histogram& h) {
  // Index of the only non-empty bin (test helper; fails if there is not exactly one).
  std::size_t found = kLog10Bins, nonempty = 0;
  for (std::size_t i = 0; i < kLog10Bins; ++i) {
    if (h.counts[i] != 0) {
      found = i;
      ++nonempty;
    }
  }
  EXPECT_EQ(nonempty, 1u);
  return found;
}

// ---------------------------------------------------------------- quantiles

TEST(Quantiles, OneToHundredOneGivesOrderStatisticsAtIntegerVirtualIndices) {
  std::vector<double> v(101);
  std::iota(v.begin(), v.end(), 1.0);
  const Quantiles q = quantiles(shuffled(v, 1));
  EXPECT_EQ(q.median, 51.0);
  EXPECT_EQ(q.p05, 6.0);
  EXPECT_EQ(q.p95, 96.0);
  EXPECT_EQ(q.p99, 100.0);
  EXPECT_EQ(q.max, 101.0);
}

TEST(Quantiles, FourElementsInterpolateLinearlyBetweenOrderStatistics) {
  // Sorted: 10, 20, 30, 40 = 10 + 10k, so quantile(q) = 10 + 30q.
  const std::vector<double> v = {40.0, 10.0, 30.0, 20.0};
  const Quantiles q = quantiles(v);
  EXPECT_DOUBLE_EQ(q.median, 25.0);
  EXPECT_DOUBLE_EQ(q.p05, 11.5);
  EXPECT_DOUBLE_EQ(q.p95, 38.5);
  EXPECT_DOUBLE_EQ(q.p99, 39.7);
  EXPECT_EQ(q.max, 40.0);
}

TEST(Quantiles, EvenLengthArithmeticSequenceMatchesClosedForm) {
  std::vector<double> v(1000);
  for (std::size_t k = 0; k < v.size(); ++k) v[k] = 3.0 + 0.5 * static_cast<double>(k);
  const Quantiles q = quantiles(shuffled(v, 2));
  EXPECT_NEAR(q.median, type7_arithmetic(3.0, 0.5, 1000, 0.5), 1e-12);
  EXPECT_NEAR(q.p05, type7_arithmetic(3.0, 0.5, 1000, 0.05), 1e-12);
  EXPECT_NEAR(q.p95, type7_arithmetic(3.0, 0.5, 1000, 0.95), 1e-12);
  EXPECT_NEAR(q.p99, type7_arithmetic(3.0, 0.5, 1000, 0.99), 1e-12);
  EXPECT_EQ(q.max, 3.0 + 0.5 * 999);
}

TEST(Quantiles, SingleValueIsEveryQuantile) {
  const std::vector<double> v = {7.25};
  const Quantiles q = quantiles(v);
  EXPECT_EQ(q.median, 7.25);
  EXPECT_EQ(q.p05, 7.25);
  EXPECT_EQ(q.p95, 7.25);
  EXPECT_EQ(q.p99, 7.25);
  EXPECT_EQ(q.max, 7.25);
}

TEST(Quantiles, EmptyInputGivesNaNEverywhere) {
  const Quantiles q = quantiles(std::span<const double>{});
  EXPECT_TRUE(std::isnan(q.median));
  EXPECT_TRUE(std::isnan(q.p05));
  EXPECT_TRUE(std::isnan(q.p95));
  EXPECT_TRUE(std::isnan(q.p99));
  EXPECT_TRUE(std::isnan(q.max));
}

TEST(Quantiles, NaNCountsAsPlusInfinity) {
  // {1, 2, NaN} is ranked as {1, 2, +inf}: max and p99 (virtual index 1.98,
  // interpolating towards +inf) are +inf, lower quantiles are unaffected.
  const std::vector<double> v = {kNaN, 2.0, 1.0};
  const Quantiles q = quantiles(v);
  EXPECT_EQ(q.max, kInf);
  EXPECT_EQ(q.p99, kInf);
  EXPECT_EQ(q.p95, kInf);
  EXPECT_EQ(q.median, 2.0);
  EXPECT_DOUBLE_EQ(q.p05, 1.1);
}

TEST(Quantiles, InfinityIsNeverAveragedIntoNaN) {
  // Interpolating between +inf and +inf must stay +inf (inf - inf would be NaN).
  const std::vector<double> v = {kInf, 1.0, kInf, kInf};
  const Quantiles q = quantiles(v);
  EXPECT_EQ(q.median, kInf);
  EXPECT_EQ(q.p95, kInf);
  // p05: virtual index 0.15 lies between 1 and +inf; any positive weight on +inf is +inf.
  EXPECT_EQ(q.p05, kInf);
}

TEST(Quantiles, InputOrderIsIrrelevantAndInputIsNotModified) {
  std::vector<double> v(257);
  for (std::size_t k = 0; k < v.size(); ++k) v[k] = std::sin(static_cast<double>(k)) * 10.0;
  const std::vector<double> before = v;
  const Quantiles a = quantiles(v);
  EXPECT_EQ(v, before);
  const Quantiles b = quantiles(shuffled(v, 3));
  EXPECT_EQ(a.median, b.median);
  EXPECT_EQ(a.p05, b.p05);
  EXPECT_EQ(a.p95, b.p95);
  EXPECT_EQ(a.p99, b.p99);
  EXPECT_EQ(a.max, b.max);
}

// ---------------------------------------------------------------- histogram

TEST(Log10Histogram, OneThousandthLandsInBinWithLowerEdgeMinusThree) {
  Log10Histogram h;
  h.add(1e-3);
  const std::size_t i = bin_of(h);
  EXPECT_EQ(Log10Histogram::lower_edge(i), -3.0);
  EXPECT_EQ(i, 170u);
}

TEST(Log10Histogram, EveryPowerOfTenInRangeLandsInBinStartingAtItsExponent) {
  for (int k = -20; k <= 4; ++k) {
    Log10Histogram h;
    h.add(std::pow(10.0, k));
    const std::size_t i = bin_of(h);
    EXPECT_EQ(Log10Histogram::lower_edge(i), static_cast<double>(k)) << "10^" << k;
  }
}

TEST(Log10Histogram, BinMidpointsLandInTheirOwnBin) {
  for (std::size_t i = 0; i < kLog10Bins; ++i) {
    Log10Histogram h;
    h.add(std::pow(10.0, Log10Histogram::lower_edge(i) + 0.5 * kLog10BinWidth));
    EXPECT_EQ(bin_of(h), i);
  }
}

TEST(Log10Histogram, ZeroUnderflowOverflowAndNonFiniteGoToTheirCounters) {
  Log10Histogram h;
  h.add(0.0);
  h.add(-0.0);
  h.add(1e-25);
  h.add(std::numeric_limits<double>::denorm_min());
  h.add(1e6);
  h.add(1e5);  // log10 = kLog10Max exactly: bins are half-open, so overflow
  h.add(kNaN);
  h.add(kInf);
  EXPECT_EQ(h.zeros, 2u);
  EXPECT_EQ(h.underflow, 2u);
  EXPECT_EQ(h.overflow, 2u);
  EXPECT_EQ(h.non_finite, 2u);
  for (const auto c : h.counts) EXPECT_EQ(c, 0u);
  EXPECT_EQ(h.total(), 8u);
}

TEST(Log10Histogram, TotalEqualsNumberOfValuesAdded) {
  Log10Histogram h;
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> expo(-30.0, 10.0);
  for (int k = 0; k < 10000; ++k) h.add(std::pow(10.0, expo(rng)));
  h.add(0.0);
  h.add(kNaN);
  EXPECT_EQ(h.total(), 10002u);
}

TEST(Log10Histogram, NegativeValueIsRejected) {
  Log10Histogram h;
  EXPECT_THROW(h.add(-1e-3), InvalidArgument);
}

// ---------------------------------------------------------------- error_metrics

struct Pair {
  std::vector<double> y, ref;
};

// y_ref with random signs and magnitudes in [0.5, 2); y = y_ref * (1 + eps).
Pair scaled_pair(const OutputShape& s, double eps, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> mag(0.5, 2.0);
  Pair p;
  p.ref.resize(s.elements());
  p.y.resize(s.elements());
  for (std::size_t e = 0; e < p.ref.size(); ++e) {
    p.ref[e] = (rng() & 1u ? 1.0 : -1.0) * mag(rng);
    p.y[e] = p.ref[e] * (1.0 + eps);
  }
  return p;
}

void expect_all_near(const Quantiles& q, double value, double tol) {
  EXPECT_NEAR(q.median, value, tol);
  EXPECT_NEAR(q.p05, value, tol);
  EXPECT_NEAR(q.p95, value, tol);
  EXPECT_NEAR(q.p99, value, tol);
  EXPECT_NEAR(q.max, value, tol);
}

TEST(ErrorMetrics, UniformRelativePerturbationGivesThatRelativeErrorEverywhere) {
  const OutputShape s{3, 7, 5};
  const Pair p = scaled_pair(s, 2e-3, 5);
  const ErrorMetrics m = error_metrics(p.y, p.ref, s);
  EXPECT_EQ(m.elements, 105u);
  EXPECT_EQ(m.rel_undefined, 0u);
  EXPECT_EQ(m.non_finite_outputs, 0u);
  expect_all_near(m.rel_error, 2e-3, 1e-12);
  expect_all_near(m.normwise_rel_error, 2e-3, 1e-12);
  EXPECT_GE(m.abs_error.p05, 0.5 * 2e-3 * (1 - 1e-9));
  EXPECT_LE(m.abs_error.max, 2.0 * 2e-3 * (1 + 1e-9));
  // log10(2e-3) = -2.699, so every relative error is in the bin [-2.7, -2.6).
  EXPECT_EQ(m.rel_histogram.counts[173], 105u);
  EXPECT_EQ(Log10Histogram::lower_edge(173), -20.0 + 17.3);
  EXPECT_EQ(m.rel_histogram.total(), 105u);
  EXPECT_EQ(m.abs_histogram.total(), 105u);
}

TEST(ErrorMetrics, AbsoluteErrorQuantilesMatchClosedFormOnDyadicErrors) {
  // 100 elements with y_ref = 1 and abs errors k/1024, k = 1..100 (exact in
  // binary), scattered over heads and tokens in a shuffled order.
  const OutputShape s{2, 5, 10};
  std::vector<double> k(100);
  std::iota(k.begin(), k.end(), 1.0);
  k = shuffled(k, 6);
  std::vector<double> ref(100, 1.0), y(100);
  for (std::size_t e = 0; e < 100; ++e) y[e] = 1.0 + k[e] / 1024.0;
  const ErrorMetrics m = error_metrics(y, ref, s);
  for (const Quantiles* q : {&m.abs_error, &m.rel_error}) {
    EXPECT_NEAR(q->median, type7_arithmetic(1.0, 1.0, 100, 0.5) / 1024.0, 1e-15);
    EXPECT_NEAR(q->p05, type7_arithmetic(1.0, 1.0, 100, 0.05) / 1024.0, 1e-15);
    EXPECT_NEAR(q->p95, type7_arithmetic(1.0, 1.0, 100, 0.95) / 1024.0, 1e-15);
    EXPECT_NEAR(q->p99, type7_arithmetic(1.0, 1.0, 100, 0.99) / 1024.0, 1e-15);
    EXPECT_EQ(q->max, 100.0 / 1024.0);
  }
}

TEST(ErrorMetrics, ZeroReferenceElementsAreCountedAsRelUndefinedAndExcluded) {
  const OutputShape s{1, 2, 3};
  const std::vector<double> ref = {0.0, 1.0, -0.0, 2.0, 4.0, 0.0};
  const std::vector<double> y = {0.5, 1.25, 0.0, 2.5, 5.0, 0.0};
  const ErrorMetrics m = error_metrics(y, ref, s);
  EXPECT_EQ(m.rel_undefined, 3u);
  // Relative errors of the defined elements: 0.25, 0.25, 0.25.
  expect_all_near(m.rel_error, 0.25, 0.0);
  EXPECT_EQ(m.rel_histogram.total(), 3u);
  // Absolute errors include every element: {0.5, 0.25, 0, 0.5, 1, 0}.
  EXPECT_EQ(m.abs_error.max, 1.0);
  EXPECT_EQ(m.abs_histogram.total(), 6u);
  EXPECT_EQ(m.abs_histogram.zeros, 2u);
}

TEST(ErrorMetrics, NaNOutputIsCountedAndMakesMaxErrorsInfinite) {
  const OutputShape s{2, 3, 4};
  Pair p = scaled_pair(s, 1e-3, 7);
  p.y[7] = kNaN;
  const ErrorMetrics m = error_metrics(p.y, p.ref, s);
  EXPECT_EQ(m.non_finite_outputs, 1u);
  EXPECT_EQ(m.abs_error.max, kInf);
  EXPECT_EQ(m.rel_error.max, kInf);
  EXPECT_EQ(m.normwise_rel_error.max, kInf);
  EXPECT_EQ(m.abs_histogram.non_finite, 1u);
  EXPECT_EQ(m.rel_histogram.non_finite, 1u);
  EXPECT_NEAR(m.rel_error.median, 1e-3, 1e-12);  // one bad element does not move the median
  EXPECT_TRUE(std::isfinite(m.normwise_rel_error.median));
}

TEST(ErrorMetrics, InfiniteOutputIsCountedAsNonFinite) {
  const OutputShape s{1, 2, 2};
  Pair p = scaled_pair(s, 1e-3, 8);
  p.y[0] = -kInf;
  p.y[3] = kInf;
  const ErrorMetrics m = error_metrics(p.y, p.ref, s);
  EXPECT_EQ(m.non_finite_outputs, 2u);
  EXPECT_EQ(m.abs_error.max, kInf);
  EXPECT_EQ(m.abs_histogram.non_finite, 2u);
  EXPECT_EQ(m.normwise_rel_error.median, kInf);  // both rows contain a non-finite y
}

TEST(ErrorMetrics, NormwiseErrorOfEachRowMatchesHandComputation) {
  const OutputShape s{1, 2, 3};
  // Row 0: y_ref = (1, 2, 2), ||y_ref|| = 3; y - y_ref = (0.3, 0, -0.4), norm 0.5 -> 1/6.
  // Row 1: y_ref = (0, 3, 4), ||y_ref|| = 5; y - y_ref = (0.5, 0, 0), norm 0.5 -> 0.1.
  const std::vector<double> ref = {1.0, 2.0, 2.0, 0.0, 3.0, 4.0};
  const std::vector<double> y = {1.3, 2.0, 1.6, 0.5, 3.0, 4.0};
  const ErrorMetrics m = error_metrics(y, ref, s);
  const double r0 = 0.5 / 3.0, r1 = 0.1;
  EXPECT_NEAR(m.normwise_rel_error.max, r0, 1e-15);
  EXPECT_NEAR(m.normwise_rel_error.median, 0.5 * (r0 + r1), 1e-15);
  EXPECT_NEAR(m.normwise_rel_error.p05, r1 + 0.05 * (r0 - r1), 1e-15);
  EXPECT_EQ(m.rel_undefined, 1u);
}

TEST(ErrorMetrics, NormwiseErrorIsScaleInvariantAtExtremeMagnitudes) {
  // Squares of 1e200 overflow and squares of 1e-200 underflow; the norm must not.
  const OutputShape s{1, 1, 2};
  for (double scale : {1e200, 1e-200}) {
    const std::vector<double> ref = {3.0 * scale, 4.0 * scale};
    const std::vector<double> y = {3.0 * scale,
                                   4.5 * scale};  // diff norm 0.5*scale, ref norm 5*scale
    const ErrorMetrics m = error_metrics(y, ref, s);
    EXPECT_NEAR(m.normwise_rel_error.max, 0.1, 1e-14) << scale;
  }
}

TEST(ErrorMetrics, RowsWithZeroReferenceNormAreExcludedFromNormwise) {
  const OutputShape s{1, 3, 2};
  const std::vector<double> ref = {3.0, 4.0, 0.0, 0.0, 6.0, 8.0};
  const std::vector<double> y = {3.0, 4.5, 1.0, 1.0, 6.0, 9.0};  // rows: 0.1, excluded, 0.1
  const ErrorMetrics m = error_metrics(y, ref, s);
  expect_all_near(m.normwise_rel_error, 0.1, 1e-15);
  EXPECT_EQ(m.rel_undefined, 2u);
}

TEST(ErrorMetrics, EmptyShapeGivesNaNQuantilesAndNoBlocks) {
  const OutputShape s{4, 0, 8};
  const ErrorMetrics m = error_metrics({}, {}, s);
  EXPECT_EQ(m.elements, 0u);
  EXPECT_TRUE(std::isnan(m.abs_error.median));
  EXPECT_TRUE(std::isnan(m.normwise_rel_error.max));
  EXPECT_TRUE(m.by_position.empty());
}

TEST(ErrorMetrics, SizeMismatchThrowsInvalidArgument) {
  const OutputShape s{2, 3, 4};
  const std::vector<double> ok(24, 1.0), short_(23, 1.0);
  EXPECT_THROW(error_metrics(short_, ok, s), InvalidArgument);
  EXPECT_THROW(error_metrics(ok, short_, s), InvalidArgument);
  try {
    error_metrics(ok, short_, s);
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("23"), std::string::npos) << msg;
    EXPECT_NE(msg.find("24"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(ErrorMetrics, ShapeWhoseElementCountOverflowsThrowsInvalidArgument) {
  const std::size_t big = std::size_t{1} << 40;
  const OutputShape s{big, big, 1};
  const std::vector<double> v(4, 1.0);
  EXPECT_THROW(error_metrics(v, v, s), InvalidArgument);
}

// ---------------------------------------------------------------- by_position

// y_ref = 1, abs error of every element of token i = (i + 1) / 1024.
Pair token_indexed_pair(const OutputShape& s) {
  Pair p;
  p.ref.assign(s.elements(), 1.0);
  p.y.resize(s.elements());
  for (std::size_t h = 0; h < s.heads; ++h)
    for (std::size_t i = 0; i < s.n_tokens; ++i)
      for (std::size_t j = 0; j < s.d_value; ++j)
        p.y[(h * s.n_tokens + i) * s.d_value + j] = 1.0 + static_cast<double>(i + 1) / 1024.0;
  return p;
}

TEST(ByPosition, TenTokensInFourBlocksAreSizedThreeThreeTwoTwo) {
  const OutputShape s{2, 10, 3};
  const Pair p = token_indexed_pair(s);
  const ErrorMetrics m = error_metrics(p.y, p.ref, s, 4);
  ASSERT_EQ(m.by_position.size(), 4u);
  const std::size_t first[4] = {0, 3, 6, 8}, last[4] = {2, 5, 7, 9};
  std::vector<int> covered(10, 0);
  for (std::size_t b = 0; b < 4; ++b) {
    const PositionSummary& ps = m.by_position[b];
    EXPECT_EQ(ps.first_token, first[b]);
    EXPECT_EQ(ps.last_token, last[b]);
    for (std::size_t i = ps.first_token; i <= ps.last_token; ++i) ++covered[i];
    // Tokens first..last each contribute heads*d_value equal errors (i+1)/1024.
    EXPECT_EQ(ps.abs_error.max, static_cast<double>(last[b] + 1) / 1024.0);
    EXPECT_EQ(ps.abs_error.p05, static_cast<double>(first[b] + 1) / 1024.0);
    EXPECT_NEAR(ps.abs_error.median, (static_cast<double>(first[b] + last[b]) / 2.0 + 1.0) / 1024.0,
                1e-15);
    EXPECT_EQ(ps.rel_error.max, ps.abs_error.max);  // y_ref = 1
  }
  for (int c : covered) EXPECT_EQ(c, 1);
}

TEST(ByPosition, MoreBlocksThanTokensGivesOneBlockPerToken) {
  const OutputShape s{1, 3, 2};
  const Pair p = token_indexed_pair(s);
  const ErrorMetrics m = error_metrics(p.y, p.ref, s, 16);
  ASSERT_EQ(m.by_position.size(), 3u);
  for (std::size_t b = 0; b < 3; ++b) {
    EXPECT_EQ(m.by_position[b].first_token, b);
    EXPECT_EQ(m.by_position[b].last_token, b);
    expect_all_near(m.by_position[b].abs_error, static_cast<double>(b + 1) / 1024.0, 0.0);
  }
}

TEST(ByPosition, SingleBlockEqualsGlobalQuantiles) {
  const OutputShape s{2, 5, 3};
  const Pair p = scaled_pair(s, 1e-3, 9);
  const ErrorMetrics m = error_metrics(p.y, p.ref, s, 1);
  ASSERT_EQ(m.by_position.size(), 1u);
  EXPECT_EQ(m.by_position[0].first_token, 0u);
  EXPECT_EQ(m.by_position[0].last_token, 4u);
  EXPECT_EQ(m.by_position[0].abs_error.median, m.abs_error.median);
  EXPECT_EQ(m.by_position[0].abs_error.max, m.abs_error.max);
  EXPECT_EQ(m.by_position[0].rel_error.p99, m.rel_error.p99);
}

TEST(ByPosition, BlockQuantilesAgreeWithQuantilesOfTheGatheredElements) {
  const OutputShape s{3, 11, 4};
  Pair p = scaled_pair(s, 0.0, 10);
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(-1e-2, 1e-2);
  for (double& v : p.y) v += u(rng);
  p.ref[5] = 0.0;  // one undefined relative error inside block 0
  const ErrorMetrics m = error_metrics(p.y, p.ref, s, 3);  // sizes 4, 4, 3
  ASSERT_EQ(m.by_position.size(), 3u);
  for (const PositionSummary& ps : m.by_position) {
    std::vector<double> a, r;
    for (std::size_t h = 0; h < s.heads; ++h)
      for (std::size_t i = ps.first_token; i <= ps.last_token; ++i)
        for (std::size_t j = 0; j < s.d_value; ++j) {
          const std::size_t e = (h * s.n_tokens + i) * s.d_value + j;
          a.push_back(std::fabs(p.y[e] - p.ref[e]));
          if (p.ref[e] != 0.0) r.push_back(std::fabs(p.y[e] - p.ref[e]) / std::fabs(p.ref[e]));
        }
    const Quantiles qa = quantiles(a), qr = quantiles(r);
    EXPECT_EQ(ps.abs_error.median, qa.median);
    EXPECT_EQ(ps.abs_error.p95, qa.p95);
    EXPECT_EQ(ps.rel_error.median, qr.median);
    EXPECT_EQ(ps.rel_error.p99, qr.p99);
    EXPECT_EQ(ps.rel_error.max, qr.max);
  }
}

TEST(ByPosition, ZeroBlocksRequestedGivesNoPositionSummaries) {
  const OutputShape s{1, 4, 2};
  const Pair p = scaled_pair(s, 1e-3, 12);
  EXPECT_TRUE(error_metrics(p.y, p.ref, s, 0).by_position.empty());
}

// ---------------------------------------------------------------- normaliser_stats

TEST(NormaliserStats, CountsNonPositiveIncludingSignedZeros) {
  const std::vector<double> z = {3.0, -0.0, 0.0, -2.0, 0.5, 1e-300};
  const NormaliserStats st = normaliser_stats(z);
  EXPECT_EQ(st.non_positive, 3u);
  EXPECT_EQ(st.non_finite, 0u);
  EXPECT_EQ(st.min_abs, 0.0);
  EXPECT_EQ(st.min, -2.0);
}

TEST(NormaliserStats, FindsSmallestMagnitudeAndSignedMinimum) {
  const std::vector<double> z = {3.0, -2.0, 0.25, -0.125, 7.0};
  const NormaliserStats st = normaliser_stats(z);
  EXPECT_EQ(st.min_abs, 0.125);
  EXPECT_EQ(st.min, -2.0);
  EXPECT_EQ(st.non_positive, 2u);
}

TEST(NormaliserStats, NonFiniteAreCountedAndExcludedFromMinima) {
  const std::vector<double> z = {kNaN, 2.0, -kInf, kInf, 0.5};
  const NormaliserStats st = normaliser_stats(z);
  EXPECT_EQ(st.non_finite, 3u);
  EXPECT_EQ(st.min_abs, 0.5);
  EXPECT_EQ(st.min, 0.5);
  EXPECT_EQ(st.non_positive, 1u);  // -inf <= 0; NaN is not
}

TEST(NormaliserStats, EmptyInputGivesNaNMinimaAndZeroCounts) {
  const NormaliserStats st = normaliser_stats(std::span<const double>{});
  EXPECT_TRUE(std::isnan(st.min_abs));
  EXPECT_TRUE(std::isnan(st.min));
  EXPECT_EQ(st.non_positive, 0u);
  EXPECT_EQ(st.non_finite, 0u);
}

}  // namespace
}  // namespace satalab
