// Read-out polynomials (readout_polynomial.hpp): each family's multipliers
// against an independent property of its definition (Gaussian moments,
// Chebyshev nodes, the shifted Taylor series evaluated directly), and SATA
// with each family against its polynomial-quadratic oracle (moments from the
// logits directly, no state) in fp64 and mp256, causal and non-causal,
// prefill (blocked and chunked) and decode.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "satalab/attention/kernels.hpp"
#include "satalab/attention/readout_polynomial.hpp"
#include "satalab/attention/sata_state.hpp"
#include "satalab/error.hpp"
#include "satalab/numeric/multiprecision.hpp"
#include "satalab/numeric/scalar_traits.hpp"

namespace satalab {
namespace {

const std::vector<PolynomialFamily> kFamilies = {PolynomialFamily::taylor_shift, PolynomialFamily::moment_fit,
                                                 PolynomialFamily::chebyshev, PolynomialFamily::positive};

template <class T>
HeadTensor<T> random_tensor(std::size_t heads, std::size_t n, std::size_t d, unsigned seed, double scale,
                            const Rounder<T>& input) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  HeadTensor<T> t(heads, n, d);
  for (auto& x : t.data) x = input(T(scale * normal(rng)));
  return t;
}

// Largest normwise relative difference of the rows of y against ref (d_value
// columns each).
template <class T>
double max_row_difference(const std::vector<T>& y, const std::vector<T>& ref, std::size_t d_value) {
  double worst = 0;
  for (std::size_t r = 0; r * d_value < ref.size(); ++r) {
    double diff = 0, norm = 0;
    for (std::size_t t = 0; t < d_value; ++t) {
      diff = std::max(diff, std::abs(to_double(T(y[r * d_value + t] - ref[r * d_value + t]))));
      norm = std::max(norm, std::abs(to_double(ref[r * d_value + t])));
    }
    worst = std::max(worst, diff / std::max(norm, 1e-300));
  }
  return worst;
}

// w(s) = Σ_p m_p s^p / p! in double.
double weight(const std::vector<double>& m, double s) {
  double total = 0, term = 1;
  for (std::size_t p = 0; p < m.size(); ++p) {
    total += m[p] * term;
    term *= s / static_cast<double>(p + 1);
  }
  return total;
}

std::vector<double> multipliers(PolynomialFamily family, std::size_t P, double mu, double sigma, double width = 2) {
  const PrecisionPolicy fp64 = precision_policy("fp64");
  const PolicyRounders<double> round(fp64);
  ReadoutPolynomial poly;
  poly.family = family;
  poly.chebyshev_width = width;
  const double n = 10;
  LogitMoments<double> moments{n, n * mu, n * (sigma * sigma + mu * mu)};
  std::vector<double> m(P);
  readout_multipliers(poly, P, moments, round.compute, m.data());
  return m;
}

TEST(ReadoutPolynomial, TaylorShiftAndPositiveAreTheShiftedSeries) {
  for (std::size_t P : {3, 4, 6, 7}) {
    const double mu = 1.3;
    const auto shift = multipliers(PolynomialFamily::taylor_shift, P, mu, 0.7);
    const auto positive = multipliers(PolynomialFamily::positive, P, mu, 0.7);
    const std::size_t D = (P - 1) % 2 == 0 ? P - 1 : P - 2;
    for (double s : {-3.0, -0.4, 0.0, 1.1, 2.5}) {
      // T_K(s − μ) written out directly.
      auto series = [&](std::size_t K) {
        double total = 0, term = 1;
        for (std::size_t k = 0; k < K; ++k) {
          total += term;
          term *= (s - mu) / static_cast<double>(k + 1);
        }
        return total;
      };
      EXPECT_NEAR(weight(shift, s), series(P), 1e-12 * std::max(1.0, std::abs(series(P)))) << P << " " << s;
      EXPECT_NEAR(weight(positive, s), series(D + 1), 1e-12 * std::max(1.0, std::abs(series(D + 1))));
    }
    // Even degree: positive far on both sides, where the odd series is not.
    for (double s = -40; s <= 40; s += 0.25) EXPECT_GT(weight(positive, s), 0.0) << P << " " << s;
  }
}

// Raw moments E[s^n], s ~ N(μ, σ²): M_n = μ M_{n−1} + (n−1) σ² M_{n−2}.
std::vector<double> gaussian_moments(double mu, double sigma, std::size_t count) {
  std::vector<double> M(count);
  M[0] = 1;
  if (count > 1) M[1] = mu;
  for (std::size_t n = 2; n < count; ++n) M[n] = mu * M[n - 1] + static_cast<double>(n - 1) * sigma * sigma * M[n - 2];
  return M;
}

// The L2 projection under N(μ, σ²): the residual exp(s) − C w(s) is
// orthogonal to 1, s, ..., s^{P−1}. E[s^k exp(s)] = exp(μ + σ²/2) E[s'^k] with
// s' ~ N(μ + σ², σ²); the multipliers drop the factor C = exp(μ + σ²/2).
TEST(ReadoutPolynomial, MomentFitIsTheGaussianLeastSquaresProjection) {
  for (std::size_t P : {3, 4, 5, 8}) {
    for (auto [mu, sigma] : {std::pair{0.2, 0.5}, std::pair{-1.0, 1.3}, std::pair{2.0, 0.0}}) {
      const auto m = multipliers(PolynomialFamily::moment_fit, P, mu, sigma);
      const auto M = gaussian_moments(mu, sigma, 2 * P);
      const auto tilted = gaussian_moments(mu + sigma * sigma, sigma, P);
      for (std::size_t k = 0; k < P; ++k) {
        double fitted = 0, factorial = 1;
        for (std::size_t p = 0; p < P; ++p) {
          if (p > 0) factorial *= static_cast<double>(p);
          fitted += m[p] / factorial * M[k + p];
        }
        EXPECT_NEAR(fitted, tilted[k], 1e-10 * std::max(1.0, std::abs(tilted[k]))) << P << " " << mu << " " << k;
      }
    }
  }
}

// Interpolation at the P Chebyshev points of μ ± width·σ: w(x_j) = e^{−μ} exp(x_j).
TEST(ReadoutPolynomial, ChebyshevInterpolatesExpAtTheChebyshevPoints) {
  for (std::size_t P : {3, 4, 6, 9}) {
    for (double width : {1.0, 2.0, 3.5}) {
      const double mu = 0.8, sigma = 0.9, h = width * sigma;
      const auto m = multipliers(PolynomialFamily::chebyshev, P, mu, sigma, width);
      for (std::size_t j = 0; j < P; ++j) {
        const double x = mu + h * std::cos((2.0 * static_cast<double>(j) + 1.0) * M_PI / (2.0 * static_cast<double>(P)));
        EXPECT_NEAR(weight(m, x), std::exp(x - mu), 1e-11 * std::exp(x - mu)) << P << " " << width << " " << j;
      }
    }
  }
  // σ = 0: the interval is a point, the interpolant the Taylor series there.
  const auto at_point = multipliers(PolynomialFamily::chebyshev, 5, 0.5, 0.0);
  const auto shifted = multipliers(PolynomialFamily::taylor_shift, 5, 0.5, 0.0);
  for (std::size_t p = 0; p < 5; ++p) EXPECT_NEAR(at_point[p], shifted[p], 1e-15);
}

TEST(ReadoutPolynomial, TaylorIsAllOnesAndBadInputIsRefused) {
  for (double m : multipliers(PolynomialFamily::taylor, 5, 3.0, 2.0)) EXPECT_EQ(m, 1.0);
  EXPECT_THROW(polynomial_family_by_name("legendre"), InvalidArgument);
  for (const auto& name : polynomial_family_names()) {
    EXPECT_EQ(polynomial_family_name(polynomial_family_by_name(name)), name);
  }
  ReadoutPolynomial poly;
  poly.family = PolynomialFamily::moment_fit;
  EXPECT_THROW(validate_readout_polynomial(poly, 2), InvalidArgument);
  EXPECT_NO_THROW(validate_readout_polynomial(poly, 3));
  poly.family = PolynomialFamily::chebyshev;
  poly.chebyshev_width = 0;
  EXPECT_THROW(validate_readout_polynomial(poly, 4), InvalidArgument);
  poly.chebyshev_width = 65;
  EXPECT_THROW(validate_readout_polynomial(poly, 4), InvalidArgument);
  // SATA and the oracle refuse too.
  const PrecisionPolicy fp64 = precision_policy("fp64");
  const PolicyRounders<double> round(fp64);
  const auto x = random_tensor<double>(1, 4, 2, 1, 1.0, round.input);
  AttentionOptions options;
  options.taylor_terms = 2;
  options.polynomial.family = PolynomialFamily::taylor_shift;
  EXPECT_THROW(sata_attention(x, x, x, fp64, options), InvalidArgument);
  EXPECT_THROW(taylor_quadratic_attention(x, x, x, fp64, options), InvalidArgument);
}

// SATA (prefill over several chunks, causal and not) against the oracle.
template <class T>
void expect_sata_equals_oracle(const char* policy_name, double tolerance) {
  const PrecisionPolicy policy = precision_policy(policy_name);
  const detail::CarrierPrecisionScope scope(policy);
  const PolicyRounders<T> round(policy);
  const std::size_t n = 19, d = 3, dv = 2;
  const auto q = random_tensor<T>(2, n, d, 11, 1.5, round.input);
  const auto k = random_tensor<T>(2, n, d, 12, 1.5, round.input);
  const auto v = random_tensor<T>(2, n, dv, 13, 1.0, round.input);
  for (PolynomialFamily family : kFamilies) {
    for (std::size_t P : {3, 5}) {
      for (Mask mask : {Mask::causal, Mask::none}) {
        AttentionOptions options;
        options.taylor_terms = P;
        options.mask = mask;
        options.chunk = 5;
        options.polynomial.family = family;
        const auto sata = sata_attention(q, k, v, policy, options);
        const auto oracle = taylor_quadratic_attention(q, k, v, policy, options);
        EXPECT_LT(max_row_difference(sata.y.data, oracle.y.data, dv), tolerance)
            << polynomial_family_name(family) << " P=" << P << (mask == Mask::causal ? " causal" : " non-causal");
        // And it is not Taylor's (the test sees the family).
        options.polynomial.family = PolynomialFamily::taylor;
        const auto taylor = taylor_quadratic_attention(q, k, v, policy, options);
        EXPECT_GT(max_row_difference(taylor.y.data, oracle.y.data, dv), 1e-6);
      }
    }
  }
}

// Key centring: SATA on first-chunk centred keys against its oracle (with the
// same centring), and exact attention unchanged by the shift (mp256, where the
// centred keys are not rounded: only the shift's invariance is left).
template <class T>
void expect_centred_sata_equals_oracle(const char* policy_name, double tolerance) {
  const PrecisionPolicy policy = precision_policy(policy_name);
  const detail::CarrierPrecisionScope scope(policy);
  const PolicyRounders<T> round(policy);
  const std::size_t n = 17, d = 3, dv = 2;
  const auto q = random_tensor<T>(1, n, d, 41, 1.0, round.input);
  auto k = random_tensor<T>(1, n, d, 42, 1.0, round.input);
  for (auto& x : k.data) x = round.input(T(x + T(1.5)));  // a key bias
  const auto v = random_tensor<T>(1, n, dv, 43, 1.0, round.input);
  for (PolynomialFamily family : {PolynomialFamily::taylor, PolynomialFamily::chebyshev}) {
    for (Mask mask : {Mask::causal, Mask::none}) {
      AttentionOptions options;
      options.taylor_terms = 4;
      options.mask = mask;
      options.chunk = 6;
      options.polynomial.family = family;
      options.key_centring = KeyCentring::first_chunk;
      const auto sata = sata_attention(q, k, v, policy, options);
      const auto oracle = taylor_quadratic_attention(q, k, v, policy, options);
      EXPECT_LT(max_row_difference(sata.y.data, oracle.y.data, dv), tolerance) << polynomial_family_name(family);
      options.key_centring = KeyCentring::none;
      const auto uncentred = taylor_quadratic_attention(q, k, v, policy, options);
      // Taylor sees the smaller logits; chebyshev is invariant under the
      // per-query logit shift q·μ the centring is.
      if (family == PolynomialFamily::taylor) {
        EXPECT_GT(max_row_difference(uncentred.y.data, oracle.y.data, dv), 1e-6);
      } else {
        EXPECT_LT(max_row_difference(uncentred.y.data, oracle.y.data, dv), tolerance);
      }
    }
  }
}

TEST(ReadoutPolynomial, KeyCentringKeepsSataEqualToItsOracle) {
  expect_centred_sata_equals_oracle<double>("fp64", 1e-12);
  expect_centred_sata_equals_oracle<mp_t>("mp256", 1e-40);
}

TEST(ReadoutPolynomial, KeyCentringLeavesExactSoftmaxUnchanged) {
  const PrecisionPolicy policy = precision_policy("mp256");
  const detail::CarrierPrecisionScope scope(policy);
  const PolicyRounders<mp_t> round(policy);
  const auto q = random_tensor<mp_t>(2, 12, 3, 51, 1.0, round.input);
  auto k = random_tensor<mp_t>(2, 12, 3, 52, 1.0, round.input);
  for (auto& x : k.data) x += mp_t(2);
  const auto v = random_tensor<mp_t>(2, 12, 2, 53, 1.0, round.input);
  const auto centred = centred_keys(k, 5, round.input);
  // The first five keys of each head now have mean zero.
  for (std::size_t h = 0; h < 2; ++h) {
    for (std::size_t c = 0; c < 3; ++c) {
      mp_t sum = 0;
      for (std::size_t j = 0; j < 5; ++j) sum += centred.row(h, j)[c];
      EXPECT_LT(std::abs(to_double(sum)), 1e-70);
    }
  }
  AttentionOptions options;
  const auto a = exact_attention(q, k, v, policy, options);
  const auto b = exact_attention(q, centred, v, policy, options);
  EXPECT_LT(max_row_difference(a.y.data, b.y.data, 2), 1e-70);
}

TEST(ReadoutPolynomial, Fp64SataEqualsItsPolynomialQuadraticOracle) { expect_sata_equals_oracle<double>("fp64", 1e-12); }

TEST(ReadoutPolynomial, Mp256SataEqualsItsPolynomialQuadraticOracle) { expect_sata_equals_oracle<mp_t>("mp256", 1e-40); }

// Decode: the state's step (causal rows) and query (all keys) against the oracle.
template <class T>
void expect_decode_equals_oracle(const char* policy_name, double tolerance) {
  const PrecisionPolicy policy = precision_policy(policy_name);
  const detail::CarrierPrecisionScope scope(policy);
  const PolicyRounders<T> round(policy);
  const std::size_t n = 12, d = 3, dv = 2;
  const auto q = random_tensor<T>(1, n, d, 21, 1.5, round.input);
  const auto k = random_tensor<T>(1, n, d, 22, 1.5, round.input);
  const auto v = random_tensor<T>(1, n, dv, 23, 1.0, round.input);
  for (PolynomialFamily family : kFamilies) {
    AttentionOptions options;
    options.taylor_terms = 4;
    options.polynomial.family = family;
    auto basis = std::make_shared<const SymmetricBasis>(d, options.taylor_terms);
    SataState<T> state(basis, dv, policy, options);
    std::vector<T> y(n * dv), z(n), y_all(n * dv), z_all(n);
    for (std::size_t i = 0; i < n; ++i) state.step(q.row(0, i), k.row(0, i), v.row(0, i), &y[i * dv], &z[i]);
    for (std::size_t i = 0; i < n; ++i) state.query(q.row(0, i), &y_all[i * dv], &z_all[i]);
    options.mask = Mask::causal;
    const auto causal = taylor_quadratic_attention(q, k, v, policy, options);
    options.mask = Mask::none;
    const auto all = taylor_quadratic_attention(q, k, v, policy, options);
    EXPECT_LT(max_row_difference(y, causal.y.data, dv), tolerance) << polynomial_family_name(family);
    EXPECT_LT(max_row_difference(y_all, all.y.data, dv), tolerance) << polynomial_family_name(family);
  }
}

TEST(ReadoutPolynomial, Fp64DecodeEqualsItsPolynomialQuadraticOracle) {
  expect_decode_equals_oracle<double>("fp64", 1e-12);
}

TEST(ReadoutPolynomial, Mp256DecodeEqualsItsPolynomialQuadraticOracle) {
  expect_decode_equals_oracle<mp_t>("mp256", 1e-40);
}

// The positive variant's normalisers stay > 0 where Taylor's do not: logits
// of the scale sweep's largest scale (q, k ~ N(0, 4²), d_key = 8).
TEST(ReadoutPolynomial, PositiveVariantHasNoNormaliserAtOrBelowZeroAtScaleFour) {
  const PrecisionPolicy fp64 = precision_policy("fp64");
  const PolicyRounders<double> round(fp64);
  const std::size_t n = 64, d = 8;
  const auto q = random_tensor<double>(1, n, d, 31, 4.0, round.input);
  const auto k = random_tensor<double>(1, n, d, 32, 4.0, round.input);
  const auto v = random_tensor<double>(1, n, 4, 33, 1.0, round.input);
  std::size_t taylor_bad = 0;
  for (std::size_t P : {3, 4, 5, 6}) {
    for (Mask mask : {Mask::causal, Mask::none}) {
      AttentionOptions options;
      options.taylor_terms = P;
      options.mask = mask;
      options.chunk = 16;
      options.polynomial.family = PolynomialFamily::positive;
      for (double zi : sata_attention(q, k, v, fp64, options).z) EXPECT_GT(zi, 0.0) << P;
      options.polynomial.family = PolynomialFamily::taylor;
      for (double zi : sata_attention(q, k, v, fp64, options).z) taylor_bad += zi <= 0 ? 1 : 0;
    }
  }
  EXPECT_GT(taylor_bad, 0u);  // the inputs do reach Taylor's negative normalisers
}

}  // namespace
}  // namespace satalab
