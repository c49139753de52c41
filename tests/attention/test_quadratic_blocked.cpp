// The blocked (matrix-product) path of exact and Taylor-quadratic attention
// against the pair-by-pair path in multiprecision, across query tiles and key
// blocks that do not divide n, and its independence of the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "satalab/attention/kernels.hpp"
#include "satalab/error.hpp"
#include "satalab/numeric/multiprecision.hpp"

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

template <class T>
HeadTensor<mp_t> to_mp(const HeadTensor<T>& x) {
  HeadTensor<mp_t> out(x.heads, x.n_tokens, x.dim);
  for (std::size_t i = 0; i < x.data.size(); ++i) out.data[i] = mp_t(static_cast<double>(x.data[i]));
  return out;
}

// Largest normwise relative row difference over rows with |z_ref| >= 1e-3.
template <class T>
double max_row_relative_difference(const AttentionResult<T>& a, const AttentionResult<mp_t>& reference) {
  double worst = 0;
  const std::size_t rows = reference.z.size(), d = reference.y.dim;
  for (std::size_t r = 0; r < rows; ++r) {
    if (abs(reference.z[r]) < mp_t(1e-3)) continue;
    mp_t diff = 0, norm = 0;
    for (std::size_t t = 0; t < d; ++t) {
      const mp_t e = mp_t(static_cast<double>(a.y.data[r * d + t])) - reference.y.data[r * d + t];
      diff += e * e;
      norm += reference.y.data[r * d + t] * reference.y.data[r * d + t];
    }
    worst = std::max(worst, static_cast<double>(sqrt(diff / norm)));
  }
  return worst;
}

TEST(QuadraticBlocked, Fp64MatchesMultiprecisionPairByPair) {
  MpPrecisionScope scope(256);
  const PrecisionPolicy fp64 = precision_policy("fp64"), mp = precision_policy("mp256");
  // n = 150: three query tiles (64, 64, 22); key blocks of 48 split every tile.
  const auto q = random_tensor<double>(2, 150, 6, 1.5, 1);
  const auto k = random_tensor<double>(2, 150, 6, 1.5, 2);
  const auto v = random_tensor<double>(2, 150, 5, 1.0, 3);
  const auto qm = to_mp(q), km = to_mp(k), vm = to_mp(v);
  for (Mask mask : {Mask::causal, Mask::none}) {
    AttentionOptions options;
    options.mask = mask;
    options.key_block = 48;
    EXPECT_LT(max_row_relative_difference(exact_attention(q, k, v, fp64, options),
                                          exact_attention(qm, km, vm, mp, options)),
              1e-13)
        << "exact";
    for (std::size_t p : {1, 2, 4, 7}) {
      options.taylor_terms = p;
      EXPECT_LT(max_row_relative_difference(taylor_quadratic_attention(q, k, v, fp64, options),
                                            taylor_quadratic_attention(qm, km, vm, mp, options)),
                1e-12)
          << "taylor-quadratic P=" << p;
    }
  }
}

TEST(QuadraticBlocked, Fp16Acc32RoundsWeightsAndStaysNearTheTruth) {
  MpPrecisionScope scope(256);
  const PrecisionPolicy low = precision_policy("fp16-acc32"), mp = precision_policy("mp256");
  PolicyRounders<float> round(low);
  auto q = random_tensor<float>(1, 130, 8, 1.0, 4), k = random_tensor<float>(1, 130, 8, 1.0, 5),
       v = random_tensor<float>(1, 130, 8, 1.0, 6);
  for (auto* t : {&q, &k, &v}) round.input.apply(t->data.data(), t->data.size());
  AttentionOptions options;
  options.key_block = 40;
  const double diff =
      max_row_relative_difference(exact_attention(q, k, v, low, options), exact_attention(to_mp(q), to_mp(k), to_mp(v), mp, options));
  EXPECT_LT(diff, 1e-2);   // fp16 weights: ~2^-11 per weight
  EXPECT_GT(diff, 1e-6);   // and the rounding is really applied
}

TEST(QuadraticBlocked, ResultsAreBitIdenticalForOneAndTwoThreads) {
  const PrecisionPolicy policy = precision_policy("fp32");
  const auto q = random_tensor<float>(3, 200, 16, 1.0, 7), k = random_tensor<float>(3, 200, 16, 1.0, 8),
             v = random_tensor<float>(3, 200, 16, 1.0, 9);
  AttentionOptions options;
  options.key_block = 64;
  const int saved = omp_get_max_threads();
  for (bool exact : {true, false}) {
    omp_set_num_threads(1);
    const auto one = exact ? exact_attention(q, k, v, policy, options) : taylor_quadratic_attention(q, k, v, policy, options);
    omp_set_num_threads(2);
    const auto two = exact ? exact_attention(q, k, v, policy, options) : taylor_quadratic_attention(q, k, v, policy, options);
    EXPECT_EQ(one.y.data, two.y.data);
    EXPECT_EQ(one.z, two.z);
  }
  omp_set_num_threads(saved);
}

// The operation-by-operation path (multiprecision truth, policies that round
// sums) runs in blocks of query rows in parallel even for one head: the same
// values for 1 and 2 threads, causal and not, and equal to the blocked fp64
// path within fp64 resolution.
TEST(QuadraticScalarPath, OneHeadSplitIntoQueryBlocksGivesTheSameResultForOneAndTwoThreads) {
  MpPrecisionScope scope(128);
  const PrecisionPolicy mp = precision_policy("mp128"), fp64 = precision_policy("fp64");
  const auto q = random_tensor<double>(1, 70, 4, 1.0, 51), k = random_tensor<double>(1, 70, 4, 1.0, 52),
             v = random_tensor<double>(1, 70, 3, 1.0, 53);
  const auto qm = to_mp(q), km = to_mp(k), vm = to_mp(v);
  const int saved = omp_get_max_threads();
  for (Mask mask : {Mask::causal, Mask::none}) {
    for (bool exact : {true, false}) {
      AttentionOptions options;
      options.mask = mask;
      options.key_block = 16;
      auto run = [&](int threads) {
        omp_set_num_threads(threads);
        return exact ? exact_attention(qm, km, vm, mp, options) : taylor_quadratic_attention(qm, km, vm, mp, options);
      };
      const auto one = run(1), two = run(2);
      omp_set_num_threads(saved);
      ASSERT_EQ(one.z.size(), 70u);
      for (std::size_t i = 0; i < one.z.size(); ++i) EXPECT_TRUE(one.z[i] == two.z[i]) << "row " << i;
      for (std::size_t i = 0; i < one.y.data.size(); ++i) EXPECT_TRUE(one.y.data[i] == two.y.data[i]) << "entry " << i;
      const auto blocked = exact ? exact_attention(q, k, v, fp64, options) : taylor_quadratic_attention(q, k, v, fp64, options);
      EXPECT_LT(max_row_relative_difference(blocked, one), 1e-13) << (exact ? "exact" : "taylor-quadratic");
    }
  }
}

}  // namespace
}  // namespace satalab

namespace satalab {
namespace {

// A subset of query rows gives the rows of the full computation (same key
// blocks, same order of sums), on both paths, causal and not.
TEST(QueryRows, SubsetEqualsTheSameRowsOfTheFullComputation) {
  const std::vector<std::size_t> rows = {0, 5, 63, 64, 65, 100, 127, 128, 199};
  for (const char* name : {"fp64", "fp16"}) {  // blocked and scalar paths
    const PrecisionPolicy policy = precision_policy(name);
    for (Mask mask : {Mask::causal, Mask::none}) {
      for (bool exact : {true, false}) {
        auto run = [&](const AttentionOptions& o) {
          if (policy.carrier == Carrier::f64) {
            const auto q = random_tensor<double>(2, 200, 8, 1.0, 31), k = random_tensor<double>(2, 200, 8, 1.0, 32),
                       v = random_tensor<double>(2, 200, 4, 1.0, 33);
            auto r = exact ? exact_attention(q, k, v, policy, o) : taylor_quadratic_attention(q, k, v, policy, o);
            return std::pair{std::vector<double>(r.y.data.begin(), r.y.data.end()), std::vector<double>(r.z.begin(), r.z.end())};
          }
          PolicyRounders<float> round(policy);
          auto q = random_tensor<float>(2, 200, 8, 1.0, 31), k = random_tensor<float>(2, 200, 8, 1.0, 32),
               v = random_tensor<float>(2, 200, 4, 1.0, 33);
          for (auto* t : {&q, &k, &v}) round.input.apply(t->data.data(), t->data.size());
          auto r = exact ? exact_attention(q, k, v, policy, o) : taylor_quadratic_attention(q, k, v, policy, o);
          return std::pair{std::vector<double>(r.y.data.begin(), r.y.data.end()), std::vector<double>(r.z.begin(), r.z.end())};
        };
        AttentionOptions options;
        options.mask = mask;
        options.key_block = 48;
        const auto full = run(options);
        options.query_rows = rows;
        const auto part = run(options);
        ASSERT_EQ(part.second.size(), 2 * rows.size());
        for (std::size_t h = 0; h < 2; ++h) {
          for (std::size_t r = 0; r < rows.size(); ++r) {
            // Scalar path (fp16): the same operations, bit for bit. Blocked path
            // (fp64): Eigen picks its micro-kernel by the tile's row count, so a
            // row may differ in the last bits (the order along keys is the same).
            const double tol = policy.carrier == Carrier::f64 ? 1e-14 : 0.0;
            const double zf = full.second[h * 200 + rows[r]];
            EXPECT_LE(std::abs(part.second[h * rows.size() + r] - zf), tol * std::abs(zf)) << name << " row " << rows[r];
            for (std::size_t t = 0; t < 4; ++t) {
              const double yf = full.first[(h * 200 + rows[r]) * 4 + t];
              EXPECT_LE(std::abs(part.first[(h * rows.size() + r) * 4 + t] - yf), tol * std::abs(yf) + tol * 1e-3)
                  << name << " row " << rows[r];
            }
          }
        }
      }
    }
  }
}

TEST(QueryRows, InvalidRowsAreRejected) {
  const auto q = random_tensor<double>(1, 10, 2, 1.0, 1);
  AttentionOptions options;
  for (const auto& bad : {std::vector<std::size_t>{10}, std::vector<std::size_t>{3, 3}, std::vector<std::size_t>{4, 2}}) {
    options.query_rows = bad;
    EXPECT_THROW(exact_attention(q, q, q, precision_policy("fp64"), options), InvalidArgument);
  }
}

}  // namespace
}  // namespace satalab
