// A-priori truncation estimates (experiment/a_priori.hpp) against independent
// computations: every weight's relative error (long double) is within the
// Taylor remainder bound of its row, and every output element's measured
// truncation error (Taylor-quadratic vs exact attention, compute_attention)
// within what the bound and the predicted relative error allow.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "satalab/attention/compute.hpp"
#include "satalab/experiment/a_priori.hpp"
#include "satalab/workload/gaussian.hpp"

namespace {

using namespace satalab;

PointSpec spec_for(std::size_t P, PolynomialFamily family, Mask mask) {
  PointSpec spec;
  spec.method = Method::sata;
  spec.options.taylor_terms = P;
  spec.options.polynomial.family = family;
  spec.options.mask = mask;
  return spec;
}

QkvArrays inputs() { return gaussian_inputs({2, 24, 4, 3, 0.9, 7}); }

TEST(APriori, TaylorRemainderBoundsEveryWeightsRelativeErrorAndIsAttainedWithinItsSlack) {
  const QkvArrays qkv = inputs();
  const std::size_t n = qkv.q.n_tokens, d = qkv.q.dim;
  for (const std::size_t P : {1u, 2u, 4u, 6u}) {
    const std::vector<RowEstimate> rows = a_priori_rows(spec_for(P, PolynomialFamily::taylor, Mask::causal), qkv, {});
    ASSERT_EQ(rows.size(), 2 * n);
    for (std::size_t h = 0; h < 2; ++h) {
      for (std::size_t i = 0; i < n; ++i) {
        const RowEstimate& r = rows[h * n + i];
        long double worst = 0, max_abs = 0;
        for (std::size_t j = 0; j <= i; ++j) {
          long double s = 0;
          for (std::size_t e = 0; e < d; ++e) s += static_cast<long double>(qkv.q.row(h, i)[e]) * qkv.k.row(h, j)[e];
          s /= std::sqrt(static_cast<long double>(d));
          long double taylor = 0, term = 1;
          for (std::size_t p = 0; p < P; ++p) {
            taylor += term;
            term *= s / static_cast<long double>(p + 1);
          }
          const long double rel = std::fabs(taylor - std::exp(s)) / std::exp(s);
          EXPECT_LE(static_cast<double>(rel), r.remainder_bound * (1 + 1e-9)) << "P=" << P << " h=" << h << " i=" << i;
          worst = std::max(worst, rel);
          max_abs = std::max(max_abs, std::fabs(s));
        }
        // The Lagrange bound is attained up to e^{|s|} at an endpoint: not vacuous.
        EXPECT_GE(static_cast<double>(worst), r.remainder_bound * std::exp(-static_cast<double>(max_abs)) * (1 - 1e-9))
            << "P=" << P << " h=" << h << " i=" << i;
      }
    }
  }
}

TEST(APriori, MeasuredTruncationErrorOfEveryOutputIsWithinTheBoundAndThePrediction) {
  const QkvArrays qkv = inputs();
  const std::size_t n = qkv.q.n_tokens, dv = qkv.v.dim;
  const PrecisionPolicy fp64 = precision_policy("fp64");
  for (const Mask mask : {Mask::causal, Mask::none}) {
    for (const PolynomialFamily family : {PolynomialFamily::taylor, PolynomialFamily::chebyshev}) {
      for (const std::size_t P : {3u, 5u}) {
        const PointSpec spec = spec_for(P, family, mask);
        const std::vector<RowEstimate> rows = a_priori_rows(spec, qkv, {});
        const AttentionOutput exact = compute_attention(Method::exact, qkv, fp64, spec.options);
        const AttentionOutput oracle = compute_attention(Method::taylor_quadratic, qkv, fp64, spec.options);
        std::size_t bounded = 0;
        for (std::size_t h = 0; h < 2; ++h) {
          for (std::size_t i = 0; i < n; ++i) {
            const RowEstimate& r = rows[h * n + i];
            const std::size_t end = mask == Mask::causal ? i + 1 : n;
            for (std::size_t e = 0; e < dv; ++e) {
              const double y = exact.y.row(h, i)[e];
              double spread = 0;  // max_j |v_je − y_e|
              for (std::size_t j = 0; j < end; ++j) spread = std::max(spread, std::abs(qkv.v.row(h, j)[e] - y));
              const double err = std::abs(oracle.y.row(h, i)[e] - y);
              EXPECT_LE(err, r.predicted_rel_err * spread + 1e-12) << "P=" << P << " h=" << h << " i=" << i;
              if (family == PolynomialFamily::taylor && r.remainder_bound < 1) {
                ++bounded;
                const double B = r.remainder_bound;
                EXPECT_LE(err, 2 * B / (1 - B) * spread + 1e-12) << "P=" << P << " h=" << h << " i=" << i;
              }
            }
          }
        }
        if (family == PolynomialFamily::taylor && P == 5) {
          EXPECT_GT(bounded, n * dv);  // the bound applies to most rows
        }
      }
    }
  }
}

TEST(APriori, MediansAreNaNForExactMethodsAndFiniteForSata) {
  const QkvArrays qkv = inputs();
  PointSpec spec = spec_for(4, PolynomialFamily::moment_fit, Mask::causal);
  const APrioriEstimate sata = a_priori_estimate(spec, qkv, {3, 11, 23});
  EXPECT_TRUE(std::isfinite(sata.remainder_bound_median));
  EXPECT_TRUE(std::isfinite(sata.predicted_rel_err_median));
  EXPECT_EQ(a_priori_rows(spec, qkv, {3, 11, 23}).size(), 6u);
  spec.method = Method::exact;
  spec.options.polynomial = {};
  const APrioriEstimate exact = a_priori_estimate(spec, qkv, {});
  EXPECT_TRUE(std::isnan(exact.remainder_bound_median));
  EXPECT_TRUE(std::isnan(exact.predicted_rel_err_median));
}

}  // namespace
