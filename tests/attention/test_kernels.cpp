// The attention kernels against independent computations: SATA against the
// Taylor-quadratic oracle (the same mathematics evaluated a different way),
// Taylor-quadratic against exact softmax as P grows, and exact attention at
// fp64 against a multiprecision truth.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "satalab/attention/kernels.hpp"
#include "satalab/attention/sata_state.hpp"
#include "satalab/error.hpp"
#include "satalab/numeric/multiprecision.hpp"

namespace satalab {
namespace {

template <class T>
HeadTensor<T> random_tensor(std::size_t heads, std::size_t n, std::size_t d, double scale, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  HeadTensor<T> t(heads, n, d);
  for (auto& x : t.data) x = T(normal(rng));  // doubles convert exactly into double and mp_t
  return t;
}

// Largest normwise relative difference per row, over rows whose normaliser in
// the reference is at least min_normaliser in magnitude.
template <class T>
double max_row_relative_difference(const AttentionResult<T>& a, const AttentionResult<T>& reference,
                                   double min_normaliser) {
  using std::abs;
  using std::sqrt;
  double worst = 0;
  const std::size_t rows = reference.z.size(), d = reference.y.dim;
  for (std::size_t r = 0; r < rows; ++r) {
    if (abs(reference.z[r]) < T(min_normaliser)) continue;
    T diff = T(0), norm = T(0);
    for (std::size_t t = 0; t < d; ++t) {
      const T e = a.y.data[r * d + t] - reference.y.data[r * d + t];
      diff += e * e;
      norm += reference.y.data[r * d + t] * reference.y.data[r * d + t];
    }
    const T rel = sqrt(diff) / sqrt(norm);
    worst = std::max(worst, static_cast<double>(rel));
  }
  return worst;
}

struct Case {
  std::size_t heads, n, d_key, d_value, taylor_terms;
};

template <class T>
void expect_sata_matches_taylor_quadratic(const PrecisionPolicy& policy, double tolerance, const Case& c) {
  const auto q = random_tensor<T>(c.heads, c.n, c.d_key, 1.0, 1);
  const auto k = random_tensor<T>(c.heads, c.n, c.d_key, 1.0, 2);
  const auto v = random_tensor<T>(c.heads, c.n, c.d_value, 1.0, 3);
  for (Mask mask : {Mask::causal, Mask::none}) {
    AttentionOptions options;
    options.taylor_terms = c.taylor_terms;
    options.mask = mask;
    const auto oracle = taylor_quadratic_attention(q, k, v, policy, options);
    for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, c.n}) {
      options.chunk = chunk;
      const auto sata = sata_attention(q, k, v, policy, options);
      // Rows whose normaliser is tiny relative to the number of keys amplify any
      // difference; they are excluded here and counted by the metrics instead.
      const double diff = max_row_relative_difference(sata, oracle, 1e-3);
      EXPECT_LT(diff, tolerance) << "P=" << c.taylor_terms << " chunk=" << chunk
                                 << (mask == Mask::causal ? " causal" : " non-causal");
      if (mask == Mask::none) break;  // chunk only matters for causal
    }
  }
}

TEST(SataKernel, SataMatchesTaylorQuadraticInMultiprecision) {
  const PrecisionPolicy policy = precision_policy("mp256");
  MpPrecisionScope scope(policy.mp_bits);
  for (std::size_t p : {1, 2, 3, 4, 5}) {
    expect_sata_matches_taylor_quadratic<mp_t>(policy, 1e-40, {2, 20, 3, 2, p});
  }
}

TEST(SataKernel, SataMatchesTaylorQuadraticInFp64) {
  const PrecisionPolicy policy = precision_policy("fp64");
  for (std::size_t p : {1, 2, 3, 4, 5, 6}) expect_sata_matches_taylor_quadratic<double>(policy, 1e-12, {3, 50, 4, 3, p});
  expect_sata_matches_taylor_quadratic<double>(policy, 1e-12, {2, 64, 8, 8, 4});
}

TEST(SataKernel, EveryCoefficientPlacementMatchesTaylorQuadraticInFp64) {
  const PrecisionPolicy policy = precision_policy("fp64");
  const auto q = random_tensor<double>(2, 40, 4, 1.0, 11);
  const auto k = random_tensor<double>(2, 40, 4, 1.0, 12);
  const auto v = random_tensor<double>(2, 40, 3, 1.0, 13);
  AttentionOptions options;
  options.taylor_terms = 5;
  options.chunk = 7;
  const auto oracle = taylor_quadratic_attention(q, k, v, policy, options);
  for (const auto& name : placement_names()) {
    options.placement = placement_by_name(name);
    const auto sata = sata_attention(q, k, v, policy, options);
    EXPECT_LT(max_row_relative_difference(sata, oracle, 1e-3), 1e-12) << name;
  }
}

template <class T>
void expect_decode_continues_prefill(const PrecisionPolicy& policy, double tolerance) {
  const std::size_t n = 30, prefix = 11, d_key = 3, d_value = 2;
  const auto q = random_tensor<T>(1, n, d_key, 1.0, 21);
  const auto k = random_tensor<T>(1, n, d_key, 1.0, 22);
  const auto v = random_tensor<T>(1, n, d_value, 1.0, 23);
  AttentionOptions options;
  options.taylor_terms = 4;
  options.chunk = 5;
  const auto one_shot = sata_attention(q, k, v, policy, options);

  auto basis = std::make_shared<const SymmetricBasis>(d_key, options.taylor_terms);
  SataState<T> state(basis, d_value, policy, options);
  AttentionResult<T> stepped;
  stepped.y = HeadTensor<T>(1, n, d_value);
  stepped.z.assign(n, T(0));
  sata_causal_prefill(state, q.head(0), k.head(0), v.head(0), prefix, options.chunk, stepped.y.head(0),
                      stepped.z.data());
  ASSERT_EQ(state.tokens(), prefix);
  for (std::size_t t = prefix; t < n; ++t) {
    state.append(k.row(0, t), v.row(0, t));
    state.query(q.row(0, t), stepped.y.row(0, t), &stepped.z[t]);
  }
  EXPECT_EQ(state.tokens(), n);
  EXPECT_LT(max_row_relative_difference(stepped, one_shot, 1e-3), tolerance);
}

TEST(SataKernel, DecodeContinuationEqualsOneShotInFp64) {
  expect_decode_continues_prefill<double>(precision_policy("fp64"), 1e-12);
}

TEST(SataKernel, DecodeContinuationEqualsOneShotInMultiprecision) {
  const PrecisionPolicy policy = precision_policy("mp256");
  MpPrecisionScope scope(policy.mp_bits);
  expect_decode_continues_prefill<mp_t>(policy, 1e-40);
}

TEST(SataKernel, StateSizeIsTheClosedForm) {
  const PrecisionPolicy policy = precision_policy("fp32");
  auto basis = std::make_shared<const SymmetricBasis>(8, 4);
  SataState<float> state(basis, 8, policy, AttentionOptions{});
  EXPECT_EQ(state.state_elements(), 9u * 165u);  // (d_v+1)·C(8+3, 3)
}

TEST(TaylorQuadraticKernel, ConvergesToExactAsTermsGrowInMultiprecision) {
  const PrecisionPolicy policy = precision_policy("mp256");
  MpPrecisionScope scope(policy.mp_bits);
  const auto q = random_tensor<mp_t>(1, 16, 4, 1.0, 31);
  const auto k = random_tensor<mp_t>(1, 16, 4, 1.0, 32);
  const auto v = random_tensor<mp_t>(1, 16, 3, 1.0, 33);
  AttentionOptions options;
  const auto exact = exact_attention(q, k, v, policy, options);
  // Odd P (even degree P-1) keeps T_P > 0, so the error shrinks monotonically;
  // even P can make normalisers small or negative at these logits.
  double previous = HUGE_VAL;
  for (std::size_t p : {3, 5, 9, 17, 30}) {
    options.taylor_terms = p;
    const double diff = max_row_relative_difference(taylor_quadratic_attention(q, k, v, policy, options), exact, 0);
    EXPECT_LT(diff, previous) << "P=" << p;
    previous = diff;
  }
  EXPECT_LT(previous, 1e-14);
}

TEST(ExactKernel, Fp64AgreesWithMultiprecisionTruthPerRow) {
  const std::size_t heads = 2, n = 300, d_key = 16, d_value = 8;
  const auto q = random_tensor<double>(heads, n, d_key, 1.5, 41);
  const auto k = random_tensor<double>(heads, n, d_key, 1.5, 42);
  const auto v = random_tensor<double>(heads, n, d_value, 1.0, 43);
  for (Mask mask : {Mask::causal, Mask::none}) {
    AttentionOptions options;
    options.mask = mask;
    options.key_block = 32;  // several blocks, so the online rescaling is exercised
    const auto fp64_result = exact_attention(q, k, v, precision_policy("fp64"), options);
    const PrecisionPolicy mp = precision_policy("mp256");
    MpPrecisionScope scope(mp.mp_bits);
    HeadTensor<mp_t> qm(heads, n, d_key), km(heads, n, d_key), vm(heads, n, d_value);
    std::copy(q.data.begin(), q.data.end(), qm.data.begin());
    std::copy(k.data.begin(), k.data.end(), km.data.begin());
    std::copy(v.data.begin(), v.data.end(), vm.data.begin());
    const auto truth = exact_attention(qm, km, vm, mp, options);
    AttentionResult<mp_t> as_mp;
    as_mp.y = HeadTensor<mp_t>(heads, n, d_value);
    std::copy(fp64_result.y.data.begin(), fp64_result.y.data.end(), as_mp.y.data.begin());
    EXPECT_LT(max_row_relative_difference(as_mp, truth, 0), 1e-13);
  }
}

TEST(ExactKernel, BlockSizeDoesNotChangeResultBeyondRounding) {
  const auto q = random_tensor<double>(1, 200, 8, 3.0, 51);
  const auto k = random_tensor<double>(1, 200, 8, 3.0, 52);
  const auto v = random_tensor<double>(1, 200, 4, 1.0, 53);
  AttentionOptions one_block, small_blocks;
  one_block.key_block = 1000;
  small_blocks.key_block = 3;
  const auto a = exact_attention(q, k, v, precision_policy("fp64"), one_block);
  const auto b = exact_attention(q, k, v, precision_policy("fp64"), small_blocks);
  EXPECT_LT(max_row_relative_difference(b, a, 0), 1e-13);
}

TEST(AttentionShapes, MismatchedShapesAreRejected) {
  const auto q = random_tensor<double>(2, 10, 4, 1.0, 1);
  const auto k_short = random_tensor<double>(2, 9, 4, 1.0, 2);
  const auto k_wide = random_tensor<double>(2, 10, 5, 1.0, 2);
  const auto v = random_tensor<double>(2, 10, 3, 1.0, 3);
  const PrecisionPolicy policy = precision_policy("fp64");
  EXPECT_THROW(exact_attention(q, k_short, v, policy, {}), InvalidArgument);
  EXPECT_THROW(sata_attention(q, k_wide, v, policy, {}), InvalidArgument);
  AttentionOptions zero_terms;
  zero_terms.taylor_terms = 0;
  EXPECT_THROW(taylor_quadratic_attention(q, q, v, policy, zero_terms), InvalidArgument);
}

TEST(LowPrecision, Fp16Acc32SataStaysCloseToTaylorQuadraticAtFp64) {
  // Rounding error of SATA at fp16 storage with fp32 sums is of the order of
  // fp16 resolution (2^-11), far below 1 and far above fp64's.
  const auto q = random_tensor<float>(2, 64, 8, 1.0, 61);
  const auto k = random_tensor<float>(2, 64, 8, 1.0, 62);
  const auto v = random_tensor<float>(2, 64, 8, 1.0, 63);
  const PrecisionPolicy fp16acc = precision_policy("fp16-acc32");
  PolicyRounders<float> round(fp16acc);
  HeadTensor<float> qr = q, kr = k, vr = v;
  for (auto* t : {&qr, &kr, &vr}) for (auto& x : t->data) x = round.input(x);
  AttentionOptions options;
  const auto low = sata_attention(qr, kr, vr, fp16acc, options);
  const auto oracle = taylor_quadratic_attention(qr, kr, vr, precision_policy("fp32"), options);
  const double diff = max_row_relative_difference(low, oracle, 1e-3);
  EXPECT_LT(diff, 0.05);
  EXPECT_GT(diff, 1e-6);
}

}  // namespace
}  // namespace satalab
