// The feature map Φ over the symmetric basis and the coefficient placements
// (docs/architecture.md §2), checked in 256-bit MPFR against closed forms:
//   Σ_{t of degree p} w(t) q^t k^t = (q·k)^p / p!,  w(t) = 1/Π c_j!,
//   Σ_f a_q[f] Φ_f(q') a_k[f] Φ_f(k') = Σ_{p<P} (q·k/c)^p / p!.
// Tuples and weights come from a brute-force enumeration in this file, not
// from the basis under test (whose order is checked in test_symmetric_basis).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "satalab/basis/feature_map.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/error.hpp"
#include "satalab/numeric/format.hpp"
#include "satalab/numeric/multiprecision.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {
namespace {

using Tuple = std::vector<std::uint32_t>;

void enumerate(std::size_t d, std::size_t p, Tuple& prefix, std::vector<Tuple>& out) {
  if (prefix.size() == p) {
    out.push_back(prefix);
    return;
  }
  for (std::uint32_t j = prefix.empty() ? 0 : prefix.back(); j < d; ++j) {
    prefix.push_back(j);
    enumerate(d, p, prefix, out);
    prefix.pop_back();
  }
}
// All non-decreasing tuples of degrees 0..P-1, concatenated, each degree in lexicographic order.
std::vector<Tuple> all_tuples(std::size_t d, std::size_t taylor_terms) {
  std::vector<Tuple> out;
  for (std::size_t p = 0; p < taylor_terms; ++p) {
    Tuple prefix;
    enumerate(d, p, prefix, out);
  }
  return out;
}

std::uint64_t factorial(std::uint64_t n) {
  std::uint64_t f = 1;
  for (std::uint64_t i = 2; i <= n; ++i) f *= i;
  return f;
}
std::uint64_t count_factorials_of(const Tuple& t) {
  std::map<std::uint32_t, std::uint64_t> counts;
  for (std::uint32_t i : t) ++counts[i];
  std::uint64_t product = 1;
  for (const auto& [index, count] : counts) product *= factorial(count);
  return product;
}

mp_t mp_power(const mp_t& x, std::size_t p) {
  mp_t r = 1;
  for (std::size_t i = 0; i < p; ++i) r *= x;
  return r;
}
mp_t mp_abs(const mp_t& x) { return x < 0 ? mp_t(-x) : x; }
mp_t relative_error(const mp_t& got, const mp_t& expected) { return mp_abs(got - expected) / mp_abs(expected); }

const mp_t& mp_tolerance() {
  static const mp_t tolerance("1e-60");
  return tolerance;
}

std::vector<double> random_vector(std::mt19937_64& rng, std::size_t d, bool positive) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.25, 1.5);
  std::vector<double> x(d);
  for (double& v : x) v = positive ? uniform(rng) : normal(rng);
  return x;
}

template <class T>
std::vector<T> convert(const std::vector<double>& x) {
  return std::vector<T>(x.begin(), x.end());
}

// With 256 bits every rounding is ~1e-77 relative. A draw with q·k nearly
// orthogonal would turn that into a large relative error of the cancelling
// sum; keep |q·k| >= |q||k|/20 so relative 1e-60 is a meaningful bound
// (the feature sum then loses at most 20^p in relative accuracy).
bool well_conditioned(const std::vector<double>& q, const std::vector<double>& k) {
  double dot = 0, qq = 0, kk = 0;
  for (std::size_t i = 0; i < q.size(); ++i) {
    dot += q[i] * k[i];
    qq += q[i] * q[i];
    kk += k[i] * k[i];
  }
  return std::abs(dot) >= std::sqrt(qq * kk) / 20;
}

struct DegreeCase {
  std::size_t d, p;
};
const std::vector<DegreeCase>& degree_cases() {
  static const std::vector<DegreeCase> cases = {{1, 8}, {2, 8}, {3, 8}, {4, 6}, {5, 5}, {8, 4}, {16, 3}};
  return cases;
}

// ---------------------------------------------------------------------------
// monomial_features

TEST(FeatureMap, MonomialFeaturesEqualProductsOfTheirTupleEntriesInMultiprecision) {
  const MpPrecisionScope scope(256);
  const Format format = mp_format(256);
  const Rounder<mp_t> round(format, Carrier::mp);
  ASSERT_FALSE(round.active());
  std::mt19937_64 rng(11);
  for (const auto& [d, P] : std::vector<DegreeCase>{{1, 9}, {3, 7}, {5, 5}, {16, 4}}) {
    const SymmetricBasis basis(d, P);
    const std::vector<Tuple> tuples = all_tuples(d, P);
    ASSERT_EQ(basis.total_size(), tuples.size());
    const std::vector<mp_t> x = convert<mp_t>(random_vector(rng, d, false));
    std::vector<mp_t> phi(basis.total_size());
    monomial_features(basis, x.data(), phi.data(), round);
    for (std::size_t f = 0; f < tuples.size(); ++f) {
      mp_t expected = 1;
      for (std::uint32_t i : tuples[f]) expected *= x[i];
      if (tuples[f].empty()) {
        ASSERT_EQ(phi[f], mp_t(1));
      } else {
        ASSERT_LE(relative_error(phi[f], expected), mp_t("1e-70")) << "d=" << d << " feature " << f;
      }
    }
  }
}

TEST(FeatureMap, WeightedFeatureSumEqualsPowerOfDotProductInMultiprecision) {
  const MpPrecisionScope scope(256);
  const Format format = mp_format(256);
  const Rounder<mp_t> round(format, Carrier::mp);
  ASSERT_FALSE(round.active());
  std::mt19937_64 rng(2026);
  for (const auto& [d, p] : degree_cases()) {
    const SymmetricBasis basis(d, p + 1);
    const std::vector<Tuple> tuples = all_tuples(d, p + 1);
    int trials = 0;
    for (int attempt = 0; attempt < 200 && trials < 6; ++attempt) {
      const std::vector<double> qd = random_vector(rng, d, false), kd = random_vector(rng, d, false);
      if (!well_conditioned(qd, kd)) continue;
      ++trials;
      const std::vector<mp_t> q = convert<mp_t>(qd), k = convert<mp_t>(kd);
      std::vector<mp_t> phi_q(basis.total_size()), phi_k(basis.total_size());
      monomial_features(basis, q.data(), phi_q.data(), round);
      monomial_features(basis, k.data(), phi_k.data(), round);
      mp_t sum = 0;
      for (std::size_t f = basis.offset(p); f < basis.offset(p + 1); ++f) {
        const mp_t weight = mp_t(1) / mp_t(static_cast<unsigned long long>(count_factorials_of(tuples[f])));
        sum += weight * phi_q[f] * phi_k[f];
      }
      mp_t dot = 0;
      for (std::size_t i = 0; i < d; ++i) dot += q[i] * k[i];
      const mp_t expected = mp_power(dot, p) / mp_t(static_cast<unsigned long long>(factorial(p)));
      EXPECT_LE(relative_error(sum, expected), mp_tolerance()) << "d=" << d << " p=" << p << " trial " << trials;
    }
    EXPECT_EQ(trials, 6) << "too few well-conditioned draws for d=" << d;
  }
}

// float and double carriers with no rounding beyond the carrier's own: the
// features are computed in T, the weighted sum is accumulated in 256 bits by
// the test, so the measured error is that of the feature map alone (p-1
// roundings per side). Normalised by Σ_t w |q^t k^t|, the natural scale of the
// sum's rounding error whatever the signs.
template <class T>
class FeatureMapCarrier : public ::testing::Test {};
using Carriers = ::testing::Types<float, double>;
TYPED_TEST_SUITE(FeatureMapCarrier, Carriers);

TYPED_TEST(FeatureMapCarrier, WeightedFeatureSumMatchesPowerOfDotProductToRoundoff) {
  using T = TypeParam;
  const MpPrecisionScope scope(256);
  const bool is_float = std::is_same_v<T, float>;
  const Format& format = is_float ? fp32() : fp64();
  const Rounder<T> round(format, is_float ? Carrier::f32 : Carrier::f64);
  ASSERT_FALSE(round.active());
  const mp_t tolerance = is_float ? mp_t("1e-5") : mp_t("1e-13");
  std::mt19937_64 rng(7);
  for (const auto& [d, p] : degree_cases()) {
    const SymmetricBasis basis(d, p + 1);
    const std::vector<Tuple> tuples = all_tuples(d, p + 1);
    for (int trial = 0; trial < 10; ++trial) {
      const std::vector<T> q = convert<T>(random_vector(rng, d, trial % 2 == 0));
      const std::vector<T> k = convert<T>(random_vector(rng, d, trial % 2 == 0));
      std::vector<T> phi_q(basis.total_size()), phi_k(basis.total_size());
      monomial_features(basis, q.data(), phi_q.data(), round);
      monomial_features(basis, k.data(), phi_k.data(), round);
      mp_t sum = 0, scale = 0;
      for (std::size_t f = basis.offset(p); f < basis.offset(p + 1); ++f) {
        const mp_t weight = mp_t(1) / mp_t(static_cast<unsigned long long>(count_factorials_of(tuples[f])));
        const mp_t term = weight * mp_t(phi_q[f]) * mp_t(phi_k[f]);
        sum += term;
        scale += mp_abs(term);
      }
      mp_t dot = 0;  // of the T inputs, exactly
      for (std::size_t i = 0; i < d; ++i) dot += mp_t(q[i]) * mp_t(k[i]);
      const mp_t expected = mp_power(dot, p) / mp_t(static_cast<unsigned long long>(factorial(p)));
      ASSERT_GT(scale, 0);
      EXPECT_LE(mp_abs(sum - expected) / scale, tolerance) << "d=" << d << " p=" << p << " trial " << trial;
    }
  }
}

// ---------------------------------------------------------------------------
// Coefficient placements

const std::vector<CoefficientPlacement>& all_placements() {
  static const std::vector<CoefficientPlacement> placements = {
      CoefficientPlacement::paper, CoefficientPlacement::symmetric, CoefficientPlacement::query,
      CoefficientPlacement::key, CoefficientPlacement::prescaled};
  return placements;
}

struct BasisCase {
  std::size_t d, taylor_terms;
};
const std::vector<BasisCase>& placement_cases() {
  static const std::vector<BasisCase> cases = {{1, 9}, {2, 8}, {3, 7}, {4, 6}, {8, 5}, {16, 4}, {64, 3}};
  return cases;
}

TEST(FeatureCoefficients, ProductOfQueryAndKeyCoefficientsEqualsWeightOverCPowerForEveryPlacement) {
  const MpPrecisionScope scope(256);
  const Format format = mp_format(256);
  const Rounder<mp_t> round(format, Carrier::mp);
  for (const auto& [d, P] : placement_cases()) {
    const SymmetricBasis basis(d, P);
    const std::vector<Tuple> tuples = all_tuples(d, P);
    const mp_t c = sqrt(mp_t(static_cast<unsigned long long>(d)));
    for (CoefficientPlacement placement : all_placements()) {
      const FeatureCoefficients<mp_t> coefficients = feature_coefficients(basis, c, placement, round);
      ASSERT_EQ(coefficients.query.size(), basis.total_size());
      ASSERT_EQ(coefficients.key.size(), basis.total_size());
      const bool prescaled = placement == CoefficientPlacement::prescaled;
      EXPECT_EQ(coefficients.prescale_inputs, prescaled);
      if (prescaled) {
        EXPECT_LE(relative_error(coefficients.input_scale, mp_t(1) / sqrt(c)), mp_tolerance());
      } else {
        EXPECT_EQ(coefficients.input_scale, mp_t(1));
      }
      for (std::size_t f = 0; f < tuples.size(); ++f) {
        const std::size_t p = tuples[f].size();
        mp_t product = coefficients.query[f] * coefficients.key[f];
        if (prescaled) product *= mp_power(coefficients.input_scale, 2 * p);
        const mp_t expected =
            mp_t(1) / (mp_t(static_cast<unsigned long long>(count_factorials_of(tuples[f]))) * mp_power(c, p));
        ASSERT_LE(relative_error(product, expected), mp_tolerance())
            << placement_name(placement) << " d=" << d << " feature " << f;
      }
    }
  }
}

TEST(FeatureCoefficients, EachPlacementPutsTheCoefficientOnTheNamedSide) {
  const MpPrecisionScope scope(256);
  const Format format = mp_format(256);
  const Rounder<mp_t> round(format, Carrier::mp);
  const std::size_t d = 4, P = 6;
  const SymmetricBasis basis(d, P);
  const std::vector<Tuple> tuples = all_tuples(d, P);
  const mp_t c = sqrt(mp_t(4));  // = 2
  auto all_ones = [](const std::vector<mp_t>& v) {
    return std::all_of(v.begin(), v.end(), [](const mp_t& x) { return x == 1; });
  };
  for (CoefficientPlacement placement : all_placements()) {
    const auto coefficients = feature_coefficients(basis, c, placement, round);
    // The flags are promises the kernels rely on to skip multiplies.
    if (coefficients.query_is_one) {
      EXPECT_TRUE(all_ones(coefficients.query)) << placement_name(placement);
    }
    if (coefficients.key_is_one) {
      EXPECT_TRUE(all_ones(coefficients.key)) << placement_name(placement);
    }
    for (std::size_t f = 0; f < tuples.size(); ++f) {
      const std::size_t p = tuples[f].size();
      const std::uint64_t cfp = count_factorials_of(tuples[f]);
      const mp_t c_power = mp_power(c, p);
      const mp_t weight = mp_t(1) / mp_t(static_cast<unsigned long long>(cfp));
      switch (placement) {
        case CoefficientPlacement::paper:
          // Queries: the multinomial count p!/Π c_j!, an integer. Keys: 1/(p! c^p).
          EXPECT_EQ(coefficients.query[f], mp_t(static_cast<unsigned long long>(factorial(p) / cfp)));
          EXPECT_LE(relative_error(coefficients.key[f],
                                   mp_t(1) / (mp_t(static_cast<unsigned long long>(factorial(p))) * c_power)),
                    mp_tolerance());
          break;
        case CoefficientPlacement::symmetric:
          EXPECT_EQ(coefficients.query[f], coefficients.key[f]);
          EXPECT_LE(relative_error(coefficients.query[f], sqrt(weight / c_power)), mp_tolerance());
          break;
        case CoefficientPlacement::query:
          EXPECT_TRUE(coefficients.key_is_one);
          EXPECT_LE(relative_error(coefficients.query[f], weight / c_power), mp_tolerance());
          break;
        case CoefficientPlacement::key:
          EXPECT_TRUE(coefficients.query_is_one);
          EXPECT_LE(relative_error(coefficients.key[f], weight / c_power), mp_tolerance());
          break;
        case CoefficientPlacement::prescaled:
          EXPECT_TRUE(coefficients.key_is_one);
          EXPECT_LE(relative_error(coefficients.query[f], weight), mp_tolerance());
          break;
      }
    }
  }
}

TEST(FeatureCoefficients, WeightedFeaturesSumToTruncatedExponentialOfScaledScoreForEveryPlacement) {
  const MpPrecisionScope scope(256);
  const Format format = mp_format(256);
  const Rounder<mp_t> round(format, Carrier::mp);
  std::mt19937_64 rng(99);
  for (const auto& [d, P] : placement_cases()) {
    const SymmetricBasis basis(d, P);
    const mp_t c = sqrt(mp_t(static_cast<unsigned long long>(d)));
    for (int trial = 0; trial < 4; ++trial) {
      const std::vector<double> qd = random_vector(rng, d, trial % 2 == 0);
      const std::vector<double> kd = random_vector(rng, d, trial % 2 == 0);
      const std::vector<mp_t> q = convert<mp_t>(qd), k = convert<mp_t>(kd);
      // Reference: T_P(s) = Σ_{p<P} s^p/p! with s = q·k/c, and its scale
      // Σ_{p<P} |s|_abs^p/p! with |s|_abs = Σ|q_i k_i|/c, the magnitude of the
      // largest intermediate (equal to T_P(s) for positive data).
      mp_t dot = 0, abs_dot = 0;
      for (std::size_t i = 0; i < d; ++i) {
        dot += q[i] * k[i];
        abs_dot += mp_abs(q[i] * k[i]);
      }
      const mp_t s = dot / c, s_abs = abs_dot / c;
      mp_t expected = 0, scale = 0;
      for (std::size_t p = 0; p < P; ++p) {
        const mp_t p_factorial = mp_t(static_cast<unsigned long long>(factorial(p)));
        expected += mp_power(s, p) / p_factorial;
        scale += mp_power(s_abs, p) / p_factorial;
      }
      for (CoefficientPlacement placement : all_placements()) {
        const auto coefficients = feature_coefficients(basis, c, placement, round);
        std::vector<mp_t> qs = q, ks = k;
        if (coefficients.prescale_inputs) {
          for (mp_t& x : qs) x *= coefficients.input_scale;
          for (mp_t& x : ks) x *= coefficients.input_scale;
        }
        std::vector<mp_t> phi_q(basis.total_size()), phi_k(basis.total_size());
        monomial_features(basis, qs.data(), phi_q.data(), round);
        monomial_features(basis, ks.data(), phi_k.data(), round);
        mp_t sum = 0;
        for (std::size_t f = 0; f < basis.total_size(); ++f)
          sum += (coefficients.query[f] * phi_q[f]) * (coefficients.key[f] * phi_k[f]);
        EXPECT_LE(mp_abs(sum - expected) / scale, mp_tolerance())
            << placement_name(placement) << " d=" << d << " P=" << P << " trial " << trial;
        if (trial % 2 == 0) {  // positive data: a plain relative error
          EXPECT_LE(relative_error(sum, expected), mp_tolerance()) << placement_name(placement);
        }
      }
    }
  }
}

// In float and double carriers every coefficient is the exact one up to a few
// rounding errors of the carrier (c = sqrt(d) rounded, its powers, p!, the division).
template <class T>
class FeatureCoefficientsCarrier : public ::testing::Test {};
TYPED_TEST_SUITE(FeatureCoefficientsCarrier, Carriers);

TYPED_TEST(FeatureCoefficientsCarrier, CoefficientsAgreeWithMultiprecisionToAFewUlpsPerDegree) {
  using T = TypeParam;
  const MpPrecisionScope scope(256);
  const bool is_float = std::is_same_v<T, float>;
  const Format& format = is_float ? fp32() : fp64();
  const Rounder<T> round(format, is_float ? Carrier::f32 : Carrier::f64);
  const mp_t unit_roundoff = mp_t(static_cast<double>(std::numeric_limits<T>::epsilon())) / 2;
  for (const auto& [d, P] : std::vector<BasisCase>{{3, 21}, {8, 9}, {64, 4}}) {
    const SymmetricBasis basis(d, P);
    const std::vector<Tuple> tuples = all_tuples(d, P);
    const mp_t c_exact = sqrt(mp_t(static_cast<unsigned long long>(d)));
    const T c = static_cast<T>(std::sqrt(static_cast<double>(d)));
    for (CoefficientPlacement placement : all_placements()) {
      const auto coefficients = feature_coefficients(basis, c, placement, round);
      for (std::size_t f = 0; f < tuples.size(); ++f) {
        const std::size_t p = tuples[f].size();
        mp_t product = mp_t(coefficients.query[f]) * mp_t(coefficients.key[f]);
        if (coefficients.prescale_inputs) product *= mp_power(mp_t(coefficients.input_scale), 2 * p);
        const mp_t expected = mp_t(1) / (mp_t(static_cast<unsigned long long>(count_factorials_of(tuples[f]))) *
                                         mp_power(c_exact, p));
        const mp_t bound = unit_roundoff * (4 * static_cast<double>(p) + 8);
        ASSERT_LE(relative_error(product, expected), bound)
            << placement_name(placement) << " d=" << d << " feature " << f << " p=" << p;
      }
    }
  }
}

// The multinomial counts p!/Π c_j! of the paper placement are integers: they
// must come out as the integer correctly rounded into the carrier (exact when
// representable), even where p! itself is not representable (p >= 14 in float).
TYPED_TEST(FeatureCoefficientsCarrier, PaperPlacementQueryIsTheCorrectlyRoundedMultinomialCount) {
  using T = TypeParam;
  const bool is_float = std::is_same_v<T, float>;
  const Format& format = is_float ? fp32() : fp64();
  const Rounder<T> round(format, is_float ? Carrier::f32 : Carrier::f64);
  for (const auto& [d, P] : std::vector<BasisCase>{{1, 21}, {3, 21}, {6, 16}}) {
    const SymmetricBasis basis(d, P);
    const std::vector<Tuple> tuples = all_tuples(d, P);
    const auto coefficients = feature_coefficients(basis, static_cast<T>(std::sqrt(double(d))),
                                                   CoefficientPlacement::paper, round);
    for (std::size_t f = 0; f < tuples.size(); ++f) {
      const std::uint64_t count = factorial(tuples[f].size()) / count_factorials_of(tuples[f]);
      // uint64 -> float/double conversion rounds to nearest (IEEE 754).
      ASSERT_EQ(coefficients.query[f], static_cast<T>(count)) << "d=" << d << " feature " << f << " count " << count;
    }
  }
}

// ---------------------------------------------------------------------------
// Names

TEST(CoefficientPlacementNames, NamesRoundTripAndBogusIsRejectedListingTheValidNames) {
  const std::vector<std::string> expected = {"paper", "symmetric", "query", "key", "prescaled"};
  EXPECT_EQ(placement_names(), expected);
  for (const std::string& name : expected) EXPECT_EQ(placement_name(placement_by_name(name)), name);
  for (CoefficientPlacement placement : all_placements())
    EXPECT_EQ(placement_by_name(placement_name(placement)), placement);
  try {
    placement_by_name("bogus");
    ADD_FAILURE() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("bogus"), std::string::npos) << message;
    for (const std::string& name : expected) EXPECT_NE(message.find(name), std::string::npos) << message;
  }
  EXPECT_THROW(placement_by_name(""), InvalidArgument);
  EXPECT_THROW(placement_by_name("Paper"), InvalidArgument);
}

}  // namespace
}  // namespace satalab
