// The decode step, SATA's (SataState::step, SataDecoder) and exact
// attention's over a KV cache (ExactDecoder), against independent
// computations: the Taylor-quadratic and exact oracles (fp64 and mp256, pair
// by pair), the same arithmetic written out feature by feature in this file,
// and the chunked prefill. Query t of a decode attends to tokens 0..t, itself
// included: row t of causal attention.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "satalab/attention/exact_decoder.hpp"
#include "satalab/attention/kernels.hpp"
#include "satalab/attention/sata_decoder.hpp"
#include "satalab/attention/sata_state.hpp"
#include "satalab/basis/feature_map.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/multiprecision.hpp"

namespace satalab {
namespace {

// Gaussian inputs rounded once into the policy's input format, in carrier T.
template <class T>
HeadTensor<T> random_tensor(std::size_t heads, std::size_t n, std::size_t d, unsigned seed, const Rounder<T>& input) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  HeadTensor<T> t(heads, n, d);
  for (auto& x : t.data) x = input(T(normal(rng)));
  return t;
}

template <class T, class U>
HeadTensor<U> convert(const HeadTensor<T>& in) {
  HeadTensor<U> out(in.heads, in.n_tokens, in.dim);
  for (std::size_t i = 0; i < in.data.size(); ++i) out.data[i] = U(static_cast<double>(in.data[i]));
  return out;
}

template <class T>
double to_double(const T& x) {
  if constexpr (std::is_same_v<T, mp_t>) {
    return x.template convert_to<double>();
  } else {
    return static_cast<double>(x);
  }
}

// Largest normwise relative difference of rows y[r] against ref[r], over rows
// whose reference normaliser is not tiny (a Taylor normaliser near 0 makes the
// row ill-conditioned, docs/architecture.md §1, question 6).
template <class T, class U>
double max_row_relative_difference(const std::vector<T>& y, const std::vector<U>& ref, const std::vector<U>& ref_z,
                                   std::size_t d_value) {
  double worst = 0;
  for (std::size_t r = 0; r < ref_z.size(); ++r) {
    if (std::abs(to_double(ref_z[r])) < 1e-3) continue;
    double diff = 0, norm = 0;
    for (std::size_t t = 0; t < d_value; ++t) {
      const double e = to_double(y[r * d_value + t]) - to_double(ref[r * d_value + t]);
      diff += e * e;
      norm += to_double(ref[r * d_value + t]) * to_double(ref[r * d_value + t]);
    }
    worst = std::max(worst, std::sqrt(diff / norm));
  }
  return worst;
}

// Bit patterns equal (NaN included, which fp8 features can produce).
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Decodes one head token by token with SataState::step.
template <class T>
std::pair<std::vector<T>, std::vector<T>> decode_sata(const HeadTensor<T>& q, const HeadTensor<T>& k,
                                                      const HeadTensor<T>& v, const PrecisionPolicy& policy,
                                                      const AttentionOptions& options) {
  auto basis = std::make_shared<const SymmetricBasis>(q.dim, options.taylor_terms);
  SataState<T> state(basis, v.dim, policy, options);
  std::vector<T> y(q.n_tokens * v.dim), z(q.n_tokens);
  for (std::size_t t = 0; t < q.n_tokens; ++t) state.step(q.row(0, t), k.row(0, t), v.row(0, t), &y[t * v.dim], &z[t]);
  EXPECT_EQ(state.tokens(), q.n_tokens);
  return {y, z};
}

struct DecodeShape {
  std::size_t n, d_key, d_value, taylor_terms;
};
// Widths d_value + 1 = 9, 17, 33, 65 have their own row kernels; 4 and 6 take the generic one.
const DecodeShape kDecodeShapes[] = {{120, 8, 8, 4}, {60, 6, 16, 3}, {50, 4, 32, 5}, {40, 3, 64, 4},
                                     {80, 5, 3, 4},  {30, 7, 5, 2},  {20, 2, 2, 1}};

TEST(SataDecode, Fp32StepMatchesTaylorQuadraticInMultiprecision) {
  const PrecisionPolicy policy = precision_policy("fp32");
  const PolicyRounders<float> round(policy);
  const PrecisionPolicy mp = precision_policy("mp256");
  for (const DecodeShape& s : kDecodeShapes) {
    const auto q = random_tensor<float>(1, s.n, s.d_key, 1, round.input);
    const auto k = random_tensor<float>(1, s.n, s.d_key, 2, round.input);
    const auto v = random_tensor<float>(1, s.n, s.d_value, 3, round.input);
    AttentionOptions options;
    options.taylor_terms = s.taylor_terms;
    const auto [y, z] = decode_sata(q, k, v, policy, options);
    MpPrecisionScope scope(mp.mp_bits);
    const auto oracle = taylor_quadratic_attention(convert<float, mp_t>(q), convert<float, mp_t>(k),
                                                   convert<float, mp_t>(v), mp, options);
    const double diff = max_row_relative_difference(y, oracle.y.data, oracle.z, s.d_value);
    EXPECT_LT(diff, 2e-4) << "d_key=" << s.d_key << " d_value=" << s.d_value << " P=" << s.taylor_terms;
    EXPECT_GT(diff, 1e-9) << "fp32 rounding should be visible";
  }
}

TEST(SataDecode, Fp64StepMatchesTaylorQuadraticInEveryPlacement) {
  const PrecisionPolicy policy = precision_policy("fp64");
  const PolicyRounders<double> round(policy);
  for (const DecodeShape& s : kDecodeShapes) {
    const auto q = random_tensor<double>(1, s.n, s.d_key, 4, round.input);
    const auto k = random_tensor<double>(1, s.n, s.d_key, 5, round.input);
    const auto v = random_tensor<double>(1, s.n, s.d_value, 6, round.input);
    for (const auto& placement : placement_names()) {
      AttentionOptions options;
      options.taylor_terms = s.taylor_terms;
      options.placement = placement_by_name(placement);
      const auto [y, z] = decode_sata(q, k, v, policy, options);
      const auto oracle = taylor_quadratic_attention(q, k, v, policy, options);
      EXPECT_LT(max_row_relative_difference(y, oracle.y.data, oracle.z, s.d_value), 1e-12)
          << "d_key=" << s.d_key << " P=" << s.taylor_terms << " " << placement;
    }
  }
}

// The same arithmetic as the step, written out per feature with the public
// pieces (monomial_features rounds every product as it goes): the row kernel
// and the degree-by-degree feature build must change nothing, bit for bit.
template <class T>
std::pair<std::vector<T>, std::vector<T>> decode_feature_by_feature(const HeadTensor<T>& q, const HeadTensor<T>& k,
                                                                    const HeadTensor<T>& v,
                                                                    const PrecisionPolicy& policy,
                                                                    const AttentionOptions& options) {
  const PolicyRounders<T> round(policy);
  const SymmetricBasis basis(q.dim, options.taylor_terms);
  const T c = round.compute(std::sqrt(T(static_cast<double>(q.dim))));
  const FeatureCoefficients<T> coef = feature_coefficients(basis, c, options.placement, round.compute);
  const std::size_t F = basis.total_size(), dv = v.dim, W = dv + 1;
  std::vector<T> state(F * W, T(0)), phi_k(F), phi_q(F), scaled(q.dim), y(q.n_tokens * dv), z(q.n_tokens);
  auto features = [&](const T* x, const std::vector<T>& coefficient, T* out) {
    if (coef.prescale_inputs) {
      for (std::size_t i = 0; i < q.dim; ++i) scaled[i] = round.compute(x[i] * coef.input_scale);
      x = scaled.data();
    }
    monomial_features(basis, x, out, round.compute);
    for (std::size_t r = 0; r < F; ++r) out[r] = round.compute(out[r] * coefficient[r]);
  };
  for (std::size_t t = 0; t < q.n_tokens; ++t) {
    features(k.row(0, t), coef.key, phi_k.data());
    features(q.row(0, t), coef.query, phi_q.data());
    std::vector<T> sums(W, T(0));
    for (std::size_t r = 0; r < F; ++r) {
      for (std::size_t c2 = 0; c2 < W; ++c2) {
        const T value = c2 < dv ? v.row(0, t)[c2] : T(1);
        state[r * W + c2] = round.accumulate(state[r * W + c2] + round.accumulate(phi_k[r] * value));
        sums[c2] = round.accumulate(sums[c2] + round.accumulate(phi_q[r] * state[r * W + c2]));
      }
    }
    for (std::size_t c2 = 0; c2 < dv; ++c2) y[t * dv + c2] = round.accumulate(sums[c2] / sums[dv]);
    z[t] = sums[dv];
  }
  return {y, z};
}

TEST(SataDecode, StepEqualsTheFeatureByFeatureArithmeticBitForBit) {
  for (const char* name : {"fp32", "fp16-acc32", "bf16-acc32", "e4m3-acc32", "fp16", "bf16"}) {
    const PrecisionPolicy policy = precision_policy(name);
    const PolicyRounders<float> round(policy);
    for (const DecodeShape& s : kDecodeShapes) {
      const auto q = random_tensor<float>(1, s.n, s.d_key, 7, round.input);
      const auto k = random_tensor<float>(1, s.n, s.d_key, 8, round.input);
      const auto v = random_tensor<float>(1, s.n, s.d_value, 9, round.input);
      for (const char* placement : {"paper", "prescaled", "symmetric"}) {
        AttentionOptions options;
        options.taylor_terms = s.taylor_terms;
        options.placement = placement_by_name(placement);
        const auto stepped = decode_sata(q, k, v, policy, options);
        const auto reference = decode_feature_by_feature(q, k, v, policy, options);
        EXPECT_TRUE(same_bits(stepped.first, reference.first)) << name << " d_key=" << s.d_key << " " << placement;
        EXPECT_TRUE(same_bits(stepped.second, reference.second)) << name << " d_key=" << s.d_key << " " << placement;
      }
    }
  }
  const PrecisionPolicy fp64 = precision_policy("fp64");
  const PolicyRounders<double> round(fp64);
  const auto q = random_tensor<double>(1, 50, 8, 10, round.input);
  const auto k = random_tensor<double>(1, 50, 8, 11, round.input);
  const auto v = random_tensor<double>(1, 50, 8, 12, round.input);
  const auto stepped = decode_sata(q, k, v, fp64, AttentionOptions{});
  const auto reference = decode_feature_by_feature(q, k, v, fp64, AttentionOptions{});
  EXPECT_TRUE(same_bits(stepped.first, reference.first));
}

TEST(SataDecode, StepEqualsAppendThenQuery) {
  for (const char* name : {"fp32", "fp16-acc32", "fp16"}) {
    const PrecisionPolicy policy = precision_policy(name);
    const PolicyRounders<float> round(policy);
    const auto q = random_tensor<float>(1, 60, 6, 13, round.input);
    const auto k = random_tensor<float>(1, 60, 6, 14, round.input);
    const auto v = random_tensor<float>(1, 60, 8, 15, round.input);
    AttentionOptions options;
    auto basis = std::make_shared<const SymmetricBasis>(6, options.taylor_terms);
    SataState<float> fused(basis, 8, policy, options), split(basis, 8, policy, options);
    EXPECT_EQ(fused.fast_path(), std::string(name) != "fp16") << name;
    std::vector<float> y1(8), y2(8);
    float z1 = 0, z2 = 0;
    for (std::size_t t = 0; t < 60; ++t) {
      fused.step(q.row(0, t), k.row(0, t), v.row(0, t), y1.data(), &z1);
      split.append(k.row(0, t), v.row(0, t));
      split.query(q.row(0, t), y2.data(), &z2);
      ASSERT_EQ(y1, y2) << name << " token " << t;
      ASSERT_EQ(z1, z2) << name << " token " << t;
    }
    EXPECT_EQ(fused.values(), split.values()) << name;
  }
}

TEST(SataDecode, StepMatchesTheChunkedPrefillUpToRounding) {
  for (const auto& [name, tolerance] : {std::pair{"fp64", 1e-12}, std::pair{"fp32", 2e-4}}) {
    const PrecisionPolicy policy = precision_policy(name);
    AttentionOptions options;
    options.taylor_terms = 4;
    options.chunk = 16;
    if (policy.carrier == Carrier::f64) {
      const PolicyRounders<double> round(policy);
      const auto q = random_tensor<double>(1, 100, 8, 16, round.input);
      const auto k = random_tensor<double>(1, 100, 8, 17, round.input);
      const auto v = random_tensor<double>(1, 100, 8, 18, round.input);
      const auto [y, z] = decode_sata(q, k, v, policy, options);
      const auto prefill = sata_attention(q, k, v, policy, options);
      EXPECT_LT(max_row_relative_difference(y, prefill.y.data, prefill.z, 8), tolerance) << name;
    } else {
      const PolicyRounders<float> round(policy);
      const auto q = random_tensor<float>(1, 100, 8, 16, round.input);
      const auto k = random_tensor<float>(1, 100, 8, 17, round.input);
      const auto v = random_tensor<float>(1, 100, 8, 18, round.input);
      const auto [y, z] = decode_sata(q, k, v, policy, options);
      const auto prefill = sata_attention(q, k, v, policy, options);
      EXPECT_LT(max_row_relative_difference(y, prefill.y.data, prefill.z, 8), tolerance) << name;
    }
  }
}

TEST(SataDecode, MultiprecisionStepMatchesTaylorQuadratic) {
  const PrecisionPolicy policy = precision_policy("mp256");
  MpPrecisionScope scope(policy.mp_bits);
  const PolicyRounders<mp_t> round(policy);
  const auto q = random_tensor<mp_t>(1, 25, 3, 19, round.input);
  const auto k = random_tensor<mp_t>(1, 25, 3, 20, round.input);
  const auto v = random_tensor<mp_t>(1, 25, 2, 21, round.input);
  AttentionOptions options;
  const auto [y, z] = decode_sata(q, k, v, policy, options);
  const auto oracle = taylor_quadratic_attention(q, k, v, policy, options);
  EXPECT_LT(max_row_relative_difference(y, oracle.y.data, oracle.z, 2), 1e-60);
}

// H heads: a prefill of `prefix` tokens, then steps; every head must equal the
// Taylor-quadratic oracle over all tokens and the result must not depend on
// the number of threads.
TEST(SataDecode, DecoderContinuesThePrefillWithHeadsInParallelForAnyThreadCount) {
  const PrecisionPolicy policy = precision_policy("fp64");
  const PolicyRounders<double> round(policy);
  const std::size_t heads = 3, n = 70, prefix = 40, dk = 5, dv = 4;
  const auto q = random_tensor<double>(heads, n, dk, 22, round.input);
  const auto k = random_tensor<double>(heads, n, dk, 23, round.input);
  const auto v = random_tensor<double>(heads, n, dv, 24, round.input);
  AttentionOptions options;
  options.taylor_terms = 4;
  options.chunk = 8;
  const auto oracle = taylor_quadratic_attention(q, k, v, policy, options);
  auto slice = [](const HeadTensor<double>& x, std::size_t begin, std::size_t count) {
    std::vector<double> out;
    for (std::size_t h = 0; h < x.heads; ++h) out.insert(out.end(), x.row(h, begin), x.row(h, begin) + count * x.dim);
    return out;
  };
  std::vector<std::vector<double>> results;
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    SataDecoder<double> decoder(heads, dk, dv, policy, options);
    std::vector<double> y_prefix(heads * prefix * dv), z_prefix(heads * prefix);
    const auto qp = slice(q, 0, prefix), kp = slice(k, 0, prefix), vp = slice(v, 0, prefix);
    decoder.prefill(qp.data(), kp.data(), vp.data(), prefix, y_prefix.data(), z_prefix.data());
    std::vector<double> all(heads * n * dv);
    for (std::size_t h = 0; h < heads; ++h) {
      std::copy(y_prefix.begin() + h * prefix * dv, y_prefix.begin() + (h + 1) * prefix * dv, all.begin() + h * n * dv);
    }
    for (std::size_t t = prefix; t < n; ++t) {
      const auto qt = slice(q, t, 1), kt = slice(k, t, 1), vt = slice(v, t, 1);
      std::vector<double> y(heads * dv), z(heads);
      decoder.step(qt.data(), kt.data(), vt.data(), y.data(), z.data());
      for (std::size_t h = 0; h < heads; ++h) std::copy(y.begin() + h * dv, y.begin() + (h + 1) * dv, all.begin() + (h * n + t) * dv);
    }
    EXPECT_EQ(decoder.tokens(), n);
    EXPECT_EQ(decoder.state_elements(), heads * (dv + 1) * feature_count(dk, 4));
    EXPECT_LT(max_row_relative_difference(all, oracle.y.data, oracle.z, dv), 1e-12) << threads << " threads";
    results.push_back(all);
  }
  omp_set_num_threads(saved);
  EXPECT_EQ(results[0], results[1]);
}

TEST(SataDecode, DecoderRefusesStatesBeyondTheMemoryLimitBeforeAllocating) {
  const std::uint64_t saved = memory_limit_bytes();
  set_memory_limit_bytes(1 << 20);
  AttentionOptions options;
  options.taylor_terms = 4;
  // 1,024 heads of d = 8, P = 4: 1,024 × 1,485 floats = 6 MB.
  EXPECT_THROW(SataDecoder<float>(1024, 8, 8, precision_policy("fp32"), options), ResourceLimit);
  set_memory_limit_bytes(saved);
  EXPECT_THROW(SataDecoder<float>(0, 8, 8, precision_policy("fp32"), options), InvalidArgument);
}

// Exact decode over a KV cache: the last row of causal exact attention.
template <class T>
std::pair<std::vector<T>, std::vector<T>> decode_exact(const HeadTensor<T>& q, const HeadTensor<T>& k,
                                                       const HeadTensor<T>& v, const PrecisionPolicy& policy,
                                                       const AttentionOptions& options) {
  const std::size_t heads = q.heads, n = q.n_tokens, dk = q.dim, dv = v.dim;
  ExactDecoder<T> decoder(heads, dk, dv, n, policy, options);
  std::vector<T> y(heads * n * dv), z(heads * n), qt(heads * dk), kt(heads * dk), vt(heads * dv), yt(heads * dv),
      zt(heads);
  for (std::size_t t = 0; t < n; ++t) {
    for (std::size_t h = 0; h < heads; ++h) {
      std::copy(q.row(h, t), q.row(h, t) + dk, qt.begin() + h * dk);
      std::copy(k.row(h, t), k.row(h, t) + dk, kt.begin() + h * dk);
      std::copy(v.row(h, t), v.row(h, t) + dv, vt.begin() + h * dv);
    }
    decoder.step(qt.data(), kt.data(), vt.data(), yt.data(), zt.data());
    for (std::size_t h = 0; h < heads; ++h) {
      std::copy(yt.begin() + h * dv, yt.begin() + (h + 1) * dv, y.begin() + (h * n + t) * dv);
      z[h * n + t] = zt[h];
    }
  }
  EXPECT_EQ(decoder.tokens(), n);
  EXPECT_EQ(decoder.cache_elements(), heads * n * (dk + dv));
  return {y, z};
}

TEST(ExactDecode, StepMatchesCausalExactAttentionAcrossKeyBlocks) {
  const PrecisionPolicy fp64 = precision_policy("fp64");
  const PolicyRounders<double> round(fp64);
  const auto q = random_tensor<double>(2, 90, 6, 25, round.input);
  const auto k = random_tensor<double>(2, 90, 6, 26, round.input);
  const auto v = random_tensor<double>(2, 90, 5, 27, round.input);
  for (std::size_t block : {std::size_t{1}, std::size_t{7}, std::size_t{256}}) {
    AttentionOptions options;
    options.key_block = block;
    const auto [y, z] = decode_exact(q, k, v, fp64, options);
    // Against the mp256 truth, computed pair by pair.
    const PrecisionPolicy mp = precision_policy("mp256");
    MpPrecisionScope scope(mp.mp_bits);
    const auto truth = exact_attention(convert<double, mp_t>(q), convert<double, mp_t>(k), convert<double, mp_t>(v),
                                       mp, options);
    EXPECT_LT(max_row_relative_difference(y, truth.y.data, truth.z, 5), 1e-13) << "block " << block;
  }
}

TEST(ExactDecode, Fp32AndFp16Acc32StayWithinTheirResolution) {
  for (const auto& [name, low, high] : {std::tuple{"fp32", 1e-9, 1e-5}, std::tuple{"fp16-acc32", 1e-6, 1e-2}}) {
    const PrecisionPolicy policy = precision_policy(name);
    const PolicyRounders<float> round(policy);
    const auto q = random_tensor<float>(1, 300, 8, 28, round.input);
    const auto k = random_tensor<float>(1, 300, 8, 29, round.input);
    const auto v = random_tensor<float>(1, 300, 8, 30, round.input);
    AttentionOptions options;
    options.key_block = 64;
    const auto [y, z] = decode_exact(q, k, v, policy, options);
    const auto truth = exact_attention(convert<float, double>(q), convert<float, double>(k),
                                       convert<float, double>(v), precision_policy("fp64"), options);
    const double diff = max_row_relative_difference(y, truth.y.data, truth.z, 8);
    EXPECT_LT(diff, high) << name;
    EXPECT_GT(diff, low) << name;
  }
}

TEST(ExactDecode, ScalarPolicyEqualsTheTokenByTokenExactKernelBitForBit) {
  // fp16 rounds its sums, so both run operation by operation in the same order.
  const PrecisionPolicy policy = precision_policy("fp16");
  const PolicyRounders<float> round(policy);
  const auto q = random_tensor<float>(2, 70, 4, 31, round.input);
  const auto k = random_tensor<float>(2, 70, 4, 32, round.input);
  const auto v = random_tensor<float>(2, 70, 3, 33, round.input);
  AttentionOptions options;
  options.key_block = 16;
  const auto [y, z] = decode_exact(q, k, v, policy, options);
  const auto reference = exact_attention(q, k, v, policy, options);
  EXPECT_EQ(y, reference.y.data);
  EXPECT_EQ(z, reference.z);
}

TEST(ExactDecode, RefusesTokensBeyondItsCapacityAndCachesBeyondTheMemoryLimit) {
  const PrecisionPolicy policy = precision_policy("fp32");
  ExactDecoder<float> decoder(1, 2, 2, 3, policy, AttentionOptions{});
  const std::vector<float> kv(8, 0.5f);
  decoder.append(kv.data(), kv.data(), 3);
  std::vector<float> y(2), z(1);
  EXPECT_THROW(decoder.step(kv.data(), kv.data(), kv.data(), y.data(), z.data()), InvalidArgument);
  const std::uint64_t saved = memory_limit_bytes();
  set_memory_limit_bytes(1 << 20);
  EXPECT_THROW(ExactDecoder<float>(1, 8, 8, 1 << 20, policy, AttentionOptions{}), ResourceLimit);
  set_memory_limit_bytes(saved);
}

}  // namespace
}  // namespace satalab
