// SATA's blocked (matrix-product) path against independent computations:
// the Taylor-quadratic oracle evaluated pair by pair, on states large enough
// to span many feature blocks and partitions; its results must not depend on
// the number of threads; a prefill on it must continue token by token.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "satalab/attention/kernels.hpp"
#include "satalab/attention/sata_state.hpp"
#include "satalab/basis/feature_map.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {
namespace {

template <class T>
HeadTensor<T> random_tensor(std::size_t heads, std::size_t n, std::size_t d, double scale, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  HeadTensor<T> t(heads, n, d);
  for (auto& x : t.data) x = T(normal(rng));
  return t;
}

// Largest normwise relative row difference over rows with |z_ref| >= 1e-3.
template <class T, class U>
double max_row_relative_difference(const AttentionResult<T>& a, const AttentionResult<U>& reference) {
  double worst = 0;
  const std::size_t rows = reference.z.size(), d = reference.y.dim;
  for (std::size_t r = 0; r < rows; ++r) {
    if (std::abs(static_cast<double>(reference.z[r])) < 1e-3) continue;
    double diff = 0, norm = 0;
    for (std::size_t t = 0; t < d; ++t) {
      const double ref = reference.y.data[r * d + t];
      const double e = static_cast<double>(a.y.data[r * d + t]) - ref;
      diff += e * e;
      norm += ref * ref;
    }
    worst = std::max(worst, std::sqrt(diff / norm));
  }
  return worst;
}

struct Shape {
  std::size_t heads, n, d_key, d_value, taylor_terms;
};

// d_key 24, P 5: 20,475 features over ~10 blocks of degree 4 built from their
// parents; d_key 12, d_value 64, P 5: 1,820 features in blocks of ~500 rows;
// P 1 and 2: the degenerate plans (degree 0 only; degree 1 from the root).
const Shape kShapes[] = {{1, 90, 24, 4, 5}, {2, 70, 12, 64, 5}, {3, 40, 5, 3, 1}, {2, 40, 5, 3, 2}, {1, 64, 8, 8, 4}};

TEST(SataBlocked, Fp64MatchesTaylorQuadraticAcrossBlocksChunksAndPlacements) {
  const PrecisionPolicy policy = precision_policy("fp64");
  for (const Shape& s : kShapes) {
    const auto q = random_tensor<double>(s.heads, s.n, s.d_key, 1.0, 1);
    const auto k = random_tensor<double>(s.heads, s.n, s.d_key, 1.0, 2);
    const auto v = random_tensor<double>(s.heads, s.n, s.d_value, 1.0, 3);
    for (const auto& placement : placement_names()) {
      for (Mask mask : {Mask::causal, Mask::none}) {
        AttentionOptions options;
        options.taylor_terms = s.taylor_terms;
        options.mask = mask;
        options.placement = placement_by_name(placement);
        const auto oracle = taylor_quadratic_attention(q, k, v, policy, options);
        for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{64}, s.n}) {
          options.chunk = chunk;
          const auto sata = sata_attention(q, k, v, policy, options);
          EXPECT_LT(max_row_relative_difference(sata, oracle), 1e-12)
              << "d_key=" << s.d_key << " P=" << s.taylor_terms << " placement=" << placement << " chunk=" << chunk
              << (mask == Mask::causal ? " causal" : " non-causal");
        }
      }
    }
  }
}

TEST(SataBlocked, Fp32AndFp16Acc32StayWithinTheirResolutionOfTheFp64Oracle) {
  const Shape s{1, 90, 24, 4, 5};
  const auto q = random_tensor<double>(s.heads, s.n, s.d_key, 1.0, 4);
  const auto k = random_tensor<double>(s.heads, s.n, s.d_key, 1.0, 5);
  const auto v = random_tensor<double>(s.heads, s.n, s.d_value, 1.0, 6);
  AttentionOptions options;
  options.taylor_terms = s.taylor_terms;
  options.chunk = 16;
  for (const auto& [name, low, high] : {std::tuple{"fp32", 1e-9, 1e-4}, std::tuple{"fp16-acc32", 1e-6, 0.05}}) {
    const PrecisionPolicy policy = precision_policy(name);
    PolicyRounders<float> round(policy);
    HeadTensor<float> qf(s.heads, s.n, s.d_key), kf(s.heads, s.n, s.d_key), vf(s.heads, s.n, s.d_value);
    HeadTensor<double> qd = q, kd = k, vd = v;
    for (std::size_t i = 0; i < q.data.size(); ++i) qd.data[i] = qf.data[i] = round.input(static_cast<float>(q.data[i]));
    for (std::size_t i = 0; i < k.data.size(); ++i) kd.data[i] = kf.data[i] = round.input(static_cast<float>(k.data[i]));
    for (std::size_t i = 0; i < v.data.size(); ++i) vd.data[i] = vf.data[i] = round.input(static_cast<float>(v.data[i]));
    const auto oracle = taylor_quadratic_attention(qd, kd, vd, precision_policy("fp64"), options);
    const double diff = max_row_relative_difference(sata_attention(qf, kf, vf, policy, options), oracle);
    EXPECT_LT(diff, high) << name;
    EXPECT_GT(diff, low) << name;  // the rounding is really there
  }
}

// The features the blocked path builds (vectorised over tokens, a degree or a
// block rounded at once) are the values of the scalar feature map, which
// rounds each product as it goes: after a fp16-acc32 prefill every state entry
// equals the sum of the scalar features' products, computed here in double,
// up to the order of fp32 sums (n = 20 terms: below 20·2^-24 of the sum of
// magnitudes), while one fp16 feature rounded differently would move an entry
// by about 2^-11 of one of its 20 terms. Head sizes below and above the
// full-product limit (16), every placement (prescaled rounds the inputs).
TEST(SataBlocked, Fp16Acc32StateHoldsTheSumsOfTheScalarFeatureMap) {
  const PrecisionPolicy policy = precision_policy("fp16-acc32");
  const PolicyRounders<float> round(policy);
  const std::size_t n = 20, dv = 3, P = 4;
  for (std::size_t d : {std::size_t{8}, std::size_t{12}, std::size_t{40}}) {
    for (const std::string& placement : placement_names()) {
      AttentionOptions options;
      options.taylor_terms = P;
      options.placement = placement_by_name(placement);
      auto q = random_tensor<float>(1, n, d, 1.0, 41), k = random_tensor<float>(1, n, d, 1.0, 42),
           v = random_tensor<float>(1, n, dv, 1.0, 43);
      for (auto* t : {&q, &k, &v}) round.input.apply(t->data.data(), t->data.size());
      auto basis = std::make_shared<const SymmetricBasis>(d, P);
      SataState<float> state(basis, dv, policy, options);
      std::vector<float> y(n * dv), z(n);
      sata_causal_prefill(state, q.head(0), k.head(0), v.head(0), n, 8, y.data(), z.data());

      const FeatureCoefficients<float>& coef = state.coefficients();
      const std::size_t F = basis->total_size(), W = dv + 1;
      std::vector<double> sum(F * W, 0.0), magnitude(F * W, 0.0);
      std::vector<float> x(d), phi(F);
      for (std::size_t j = 0; j < n; ++j) {
        for (std::size_t i = 0; i < d; ++i) {
          x[i] = coef.prescale_inputs ? round.compute(k.row(0, j)[i] * coef.input_scale) : k.row(0, j)[i];
        }
        monomial_features(*basis, x.data(), phi.data(), round.compute);
        if (!coef.key_is_one) {
          for (std::size_t f = 0; f < F; ++f) phi[f] = round.compute(phi[f] * coef.key[f]);
        }
        for (std::size_t f = 0; f < F; ++f) {
          for (std::size_t c = 0; c <= dv; ++c) {
            const double term = static_cast<double>(phi[f]) * (c < dv ? static_cast<double>(v.row(0, j)[c]) : 1.0);
            sum[f * W + c] += term;
            magnitude[f * W + c] += std::abs(term);
          }
        }
      }
      const std::vector<float>& S = state.values();
      ASSERT_EQ(S.size(), F * W);
      int failures = 0;
      for (std::size_t e = 0; e < F * W && failures < 5; ++e) {
        const double error = std::abs(static_cast<double>(S[e]) - sum[e]);
        if (error > 2e-6 * magnitude[e] + 1e-30) {
          ++failures;
          ADD_FAILURE() << "d = " << d << ", " << placement << ": state entry " << e << " (feature " << e / W
                        << ") is " << S[e] << ", the scalar features give " << sum[e] << " (sum of |terms| "
                        << magnitude[e] << ")";
        }
      }
    }
  }
}

TEST(SataBlocked, ResultsAreBitIdenticalForOneAndTwoThreads) {
  const PrecisionPolicy policy = precision_policy("fp32");
  for (std::size_t heads : {std::size_t{1}, std::size_t{3}}) {
    const auto q = random_tensor<float>(heads, 100, 24, 1.0, 7);
    const auto k = random_tensor<float>(heads, 100, 24, 1.0, 8);
    const auto v = random_tensor<float>(heads, 100, 4, 1.0, 9);
    AttentionOptions options;
    options.taylor_terms = 5;
    options.chunk = 32;
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const auto one = sata_attention(q, k, v, policy, options);
    omp_set_num_threads(2);
    const auto two = sata_attention(q, k, v, policy, options);
    omp_set_num_threads(saved);
    EXPECT_EQ(one.y.data, two.y.data) << heads << " heads";
    EXPECT_EQ(one.z, two.z) << heads << " heads";
  }
}

TEST(SataBlocked, TokenByTokenDecodeContinuesABlockedPrefill) {
  // The decode step (token by token) after a blocked prefill equals the
  // one-shot causal run, which is itself checked against the oracle above.
  const PrecisionPolicy policy = precision_policy("fp64");
  const std::size_t n = 60, prefix = 37, d_key = 10, d_value = 3;
  const auto q = random_tensor<double>(1, n, d_key, 1.0, 21);
  const auto k = random_tensor<double>(1, n, d_key, 1.0, 22);
  const auto v = random_tensor<double>(1, n, d_value, 1.0, 23);
  AttentionOptions options;
  options.taylor_terms = 5;
  options.chunk = 8;
  const auto oracle = taylor_quadratic_attention(q, k, v, policy, options);
  auto basis = std::make_shared<const SymmetricBasis>(d_key, options.taylor_terms);
  SataState<double> state(basis, d_value, policy, options);
  AttentionResult<double> stepped;
  stepped.y = HeadTensor<double>(1, n, d_value);
  stepped.z.assign(n, 0.0);
  sata_causal_prefill(state, q.head(0), k.head(0), v.head(0), prefix, options.chunk, stepped.y.head(0),
                      stepped.z.data());
  ASSERT_EQ(state.tokens(), prefix);
  for (std::size_t t = prefix; t < n; ++t) {
    state.append(k.row(0, t), v.row(0, t));
    state.query(q.row(0, t), stepped.y.row(0, t), &stepped.z[t]);
  }
  EXPECT_LT(max_row_relative_difference(stepped, oracle), 1e-12);
}

}  // namespace
}  // namespace satalab
