// The KV-cache schemes of issue 18 (quantized_kv.hpp: -prerope, -o, -s, -rq)
// against independent statements: the int4 min/max grid written out here with
// fp16 directed rounding read off fp16's parameters, the workload's own rope
// modifier, a token-by-token decoder that quantizes whole key groups only, and
// hand-counted bytes. Tiny inputs; the whole file runs in well under a second.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "satalab/attention/compute.hpp"
#include "satalab/attention/kernels.hpp"
#include "satalab/attention/quantized_kv.hpp"
#include "satalab/error.hpp"
#include "satalab/numeric/format.hpp"
#include "satalab/workload/modifiers.hpp"

namespace satalab {
namespace {

// ---- fp16 directed rounding and the int<b> group grid, written out ----------------

// Spacing of fp16 (11 significant bits, emin -14) at |y|'s binade.
double fp16_spacing(double y) {
  int e = -14;
  if (y != 0) {
    int exponent = 0;
    std::frexp(y, &exponent);
    e = std::max(exponent - 1, -14);
  }
  return std::ldexp(1.0, e - 10);
}
double fp16_up(double y) {
  if (y <= 0) return -std::floor(-y / fp16_spacing(y)) * fp16_spacing(y);
  return std::ceil(y / fp16_spacing(y)) * fp16_spacing(y);
}
double fp16_down(double y) { return -fp16_up(-y); }

// One asymmetric group: zero = fp16 value <= min, scale = fp16 value >= (max - zero)/levels.
void int_group(std::vector<double*> xs, unsigned bits) {
  if (xs.empty()) return;
  const double levels = std::ldexp(1.0, static_cast<int>(bits)) - 1;
  double lo = *xs[0], hi = *xs[0];
  for (double* x : xs) lo = std::min(lo, *x), hi = std::max(hi, *x);
  const double zero = fp16_down(lo), scale = fp16_up((hi - zero) / levels);
  for (double* x : xs) {
    *x = scale == 0 ? zero : zero + std::clamp(std::nearbyint((*x - zero) / scale), 0.0, levels) * scale;
  }
}

HeadTensor<double> gaussian(std::size_t heads, std::size_t n, std::size_t d, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  HeadTensor<double> t(heads, n, d);
  for (double& x : t.data) x = normal(rng);
  return t;
}

// Keys of int<bits>-g<G> in the KIVI arrangement over tokens [from, to) of
// each head: per channel, groups of G tokens starting at `from`; entries with
// keep[...] != 0 are left out and unchanged.
HeadTensor<double> reference_keys(HeadTensor<double> k, std::size_t from, std::size_t to, std::size_t g,
                                  unsigned bits, const std::vector<unsigned char>& keep = {}) {
  for (std::size_t h = 0; h < k.heads; ++h)
    for (std::size_t c = 0; c < k.dim; ++c)
      for (std::size_t t0 = from; t0 < to; t0 += g) {
        std::vector<double*> xs;
        for (std::size_t t = t0; t < std::min(to, t0 + g); ++t)
          if (keep.empty() || !keep[(h * k.n_tokens + t) * k.dim + c]) xs.push_back(k.row(h, t) + c);
        int_group(xs, bits);
      }
  return k;
}

std::string error_of(const std::string& name) {
  try {
    (void)kv_quant_scheme(name);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(KvSchemes, SuffixesParseInOrderAndOldNamesKeepTheirMeaning) {
  const KvQuantScheme a = kv_quant_scheme("int4-g32-prerope-o0.02-s4-rq128");
  EXPECT_EQ(a.kind, KvQuantKind::int_grouped);
  EXPECT_EQ(a.group, 32u);
  EXPECT_TRUE(a.pre_rope);
  EXPECT_EQ(a.outlier_fraction, 0.02);
  EXPECT_EQ(a.sink_tokens, 4u);
  EXPECT_EQ(a.residual, 128u);
  EXPECT_TRUE(a.residual_per_query);
  EXPECT_EQ(kv_quant_scheme("int8-o").outlier_fraction, 0.01);
  const KvQuantScheme b = kv_quant_scheme("e4m3-head-s1");
  EXPECT_EQ(b.cast_scale, CastScale::head);
  EXPECT_EQ(b.sink_tokens, 1u);
  for (const char* old : {"int4-g32-r128", "e5m2-unscaled", "int8", "fp16-head-r4"}) {
    const KvQuantScheme s = kv_quant_scheme(old);
    EXPECT_FALSE(s.pre_rope || s.residual_per_query || s.sink_tokens || s.outlier_fraction) << old;
  }
}

TEST(KvSchemes, BadSuffixesThrowOneLineNamingTheValue) {
  for (const char* bad : {"int4-g32-o1.5", "int4-g32-o0", "int4-g32-o1", "int8-onan", "int8-o0.01x"}) {
    const std::string e = error_of(bad);
    EXPECT_NE(e.find("outlier fraction"), std::string::npos) << bad << ": " << e;
    EXPECT_NE(e.find("(0, 1)"), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos);
  }
  EXPECT_NE(error_of("e4m3-unscaled-o0.01").find("-unscaled has none"), std::string::npos);
  EXPECT_NE(error_of("int8-s0").find("sink tokens '0'"), std::string::npos);
  EXPECT_NE(error_of("int8-rq0").find("residual '0'"), std::string::npos);
  // Out of order, repeated, or on none: unknown.
  for (const char* bad : {"int8-r4-s2", "int8-s2-prerope", "none-s1", "int8-rq4-r4", "int8-prerope-prerope"})
    EXPECT_NE(error_of(bad).find("unknown kv_quant"), std::string::npos) << bad;
}

// Dense-and-sparse: the ceil(f·N) largest magnitudes per head stay exact, the
// rest are int4 groups whose min/max ignore them.
TEST(KvSchemes, OutliersAreTheLargestFractionKeptExactlyAndLeftOutOfTheGroups) {
  HeadTensor<double> k = gaussian(2, 24, 4, 7);
  k.row(0, 5)[1] = 40.0;   // would stretch its group's grid 10x
  k.row(1, 17)[3] = -30.0;
  const KvQuantScheme scheme = kv_quant_scheme("int4-g8-o0.05");
  const QuantizedTensor q = quantize_dequantize(k, KvRole::key, scheme);
  const std::size_t per_head = 24 * 4, kept = 5;  // ceil(0.05 · 96) = 5
  std::vector<unsigned char> keep(k.data.size(), 0);
  for (std::size_t h = 0; h < 2; ++h) {
    std::vector<std::size_t> order(per_head);
    for (std::size_t i = 0; i < per_head; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return std::fabs(k.head(h)[a]) > std::fabs(k.head(h)[b]);
    });
    for (std::size_t i = 0; i < kept; ++i) keep[h * per_head + order[i]] = 1;
  }
  EXPECT_EQ(q.outlier, keep);
  EXPECT_EQ(q.values.data, reference_keys(k, 0, 24, 8, 4, keep).data);
  EXPECT_EQ(q.values.row(0, 5)[1], 40.0);
  // Without -o the outlier's group is coarser: the scheme changes something.
  EXPECT_NE(quantize_dequantize(k, KvRole::key, kv_quant_scheme("int4-g8")).values.data, q.values.data);
  // Values (per token along channels) and int8 honour the mask as well: kept entries unchanged.
  for (const char* name : {"int4-g2-o0.05", "int8-o0.05", "e4m3-o0.05"}) {
    const QuantizedTensor v = quantize_dequantize(k, KvRole::value, kv_quant_scheme(name));
    std::size_t unchanged = 0;
    for (std::size_t i = 0; i < k.data.size(); ++i) {
      if (v.outlier[i]) {
        EXPECT_EQ(v.values.data[i], k.data[i]) << name;
      }
      unchanged += v.outlier[i];
    }
    EXPECT_EQ(unchanged, 2 * kept) << name;
  }
}

// Sinks: the first S tokens in 16 bits (fp16 at an fp32 policy), groups start after them.
TEST(KvSchemes, SinkTokensStayIn16BitsAndKeyGroupsStartAfterThem) {
  const HeadTensor<double> k = gaussian(1, 19, 3, 11);
  HeadTensor<float> kf(1, 19, 3);
  for (std::size_t i = 0; i < k.data.size(); ++i) kf.data[i] = static_cast<float>(k.data[i]);
  HeadTensor<double> k32(1, 19, 3);
  for (std::size_t i = 0; i < k.data.size(); ++i) k32.data[i] = kf.data[i];
  const PrecisionPolicy policy = precision_policy("fp32");
  const DequantizedCache<float> cache = dequantized_cache(kf, KvRole::key, kv_quant_scheme("int4-g4-s3"), policy);
  const HeadTensor<double> want = reference_keys(k32, 3, 19, 4, 4);
  for (std::size_t t = 0; t < 19; ++t)
    for (std::size_t c = 0; c < 3; ++c) {
      const double x = k32.row(0, t)[c];
      // fp16 nearest: x rounded on fp16's grid at x (|x| < 8 here, no overflow).
      const double sink = std::nearbyint(x / fp16_spacing(x)) * fp16_spacing(x);
      EXPECT_EQ(static_cast<double>(cache.values.row(0, t)[c]), t < 3 ? sink : static_cast<float>(want.row(0, t)[c]))
          << t << "," << c;
    }
  EXPECT_EQ(kv_sink_format(fp32()).name, "fp16");
  EXPECT_EQ(kv_sink_format(bf16()).name, "bf16");
}

// Pre-RoPE keys: quantize the keys the workload had before its rope modifier
// rotated them, then rotate. The rope here is the workload's own modifier.
TEST(KvSchemes, PreRopeKeysAreTheRotatedQuantizedPreRotationKeys) {
  const std::size_t n = 40, d = 6;
  const HeadTensor<double> pre = gaussian(1, n, d, 13);
  QkvArrays qkv{HeadArrays{1, n, d, pre.data}, HeadArrays{1, n, d, pre.data}, HeadArrays{1, n, d, pre.data}};
  WorkloadModifier rope;
  rope.kind = ModifierKind::rope;
  rope.rope_theta = 100.0;  // fast angles at this n
  apply_modifiers(qkv, {rope}, 1, 1.0, std::sqrt(double(d)));
  HeadTensor<double> post(1, n, d);
  post.data = qkv.k.data;
  const PrecisionPolicy fp64_policy = precision_policy("fp64");
  const KvQuantScheme scheme = kv_quant_scheme("int4-g8-prerope");
  const DequantizedCache<double> got = dequantized_cache(post, KvRole::key, scheme, fp64_policy, 100.0);
  // rope(quantize(pre)) via the modifier again.
  const HeadTensor<double> quantized_pre = reference_keys(pre, 0, n, 8, 4);
  QkvArrays again{HeadArrays{1, n, d, quantized_pre.data}, HeadArrays{1, n, d, quantized_pre.data},
                  HeadArrays{1, n, d, quantized_pre.data}};
  apply_modifiers(again, {rope}, 1, 1.0, std::sqrt(double(d)));
  double worst = 0;
  for (std::size_t i = 0; i < post.data.size(); ++i) worst = std::max(worst, std::fabs(got.values.data[i] - again.k.data[i]));
  EXPECT_LT(worst, 1e-13);
  // Quantizing after RoPE is a different cache.
  const DequantizedCache<double> after =
      dequantized_cache(post, KvRole::key, kv_quant_scheme("int4-g8"), fp64_policy);
  EXPECT_EQ(after.values.data, reference_keys(post, 0, n, 8, 4).data);
  EXPECT_GT(std::fabs(after.values.data[5 * d] - got.values.data[5 * d]), 1e-6);
  // Without the workload's theta: one line naming the scheme.
  try {
    (void)dequantized_cache(post, KvRole::key, scheme, fp64_policy);
    ADD_FAILURE() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("int4-g8-prerope"), std::string::npos);
  }
}

// KIVI's residual per query, against a decoder written here that receives the
// tokens one at a time: it keeps new keys and values in full precision,
// quantizes a value once it is R tokens old and the keys only as a whole
// group of G tokens per channel once all G are R tokens old. Every key group it
// forms holds G tokens (the KIVI implementation bug forms groups of one token
// when tokens arrive one at a time). Query i's output must be exact attention
// over that decoder's cache after token i.
TEST(KvSchemes, ResidualPerQueryEqualsATokenByTokenDecoderWhoseKeyGroupsNeverDegenerate) {
  const std::size_t heads = 2, n = 23, d = 4, g = 4, R = 3, S = 1;
  const HeadTensor<double> q = gaussian(heads, n, d, 21), k = gaussian(heads, n, d, 22), v = gaussian(heads, n, d, 23);
  QkvArrays qkv{HeadArrays{heads, n, d, q.data}, HeadArrays{heads, n, d, k.data}, HeadArrays{heads, n, d, v.data}};
  const PrecisionPolicy policy = precision_policy("fp64");
  AttentionOptions options;
  options.kv_quant = kv_quant_scheme("int4-g4-s1-rq3");
  const AttentionOutput got = compute_attention(Method::exact_kvquant, qkv, policy, options);

  HeadTensor<double> cache_k = k, cache_v = v;  // the decoder's cache (rows < arrived are meaningful)
  std::size_t keys_done = S, values_done = S;   // sinks: fp16 (the input is fp64)
  for (std::size_t h = 0; h < heads; ++h)
    for (std::size_t c = 0; c < d; ++c) {
      double& kk = cache_k.row(h, 0)[c];
      double& vv = cache_v.row(h, 0)[c];
      kk = std::nearbyint(kk / fp16_spacing(kk)) * fp16_spacing(kk);
      vv = std::nearbyint(vv / fp16_spacing(vv)) * fp16_spacing(vv);
    }
  std::vector<std::size_t> key_group_sizes;
  AttentionOptions one;
  for (std::size_t i = 0; i < n; ++i) {  // token i arrives, then query i reads the cache
    while (i + 1 >= values_done + R + 1) {  // value values_done is R tokens old
      for (std::size_t h = 0; h < heads; ++h) {
        std::vector<double*> xs;
        for (std::size_t c0 = 0; c0 < d; c0 += g) {
          xs.clear();
          for (std::size_t c = c0; c < std::min(d, c0 + g); ++c) xs.push_back(cache_v.row(h, values_done) + c);
          int_group(xs, 4);
        }
      }
      ++values_done;
    }
    while (i + 1 >= keys_done + g + R) {  // a whole key group is R tokens old
      for (std::size_t h = 0; h < heads; ++h)
        for (std::size_t c = 0; c < d; ++c) {
          std::vector<double*> xs;
          for (std::size_t t = keys_done; t < keys_done + g; ++t) xs.push_back(cache_k.row(h, t) + c);
          int_group(xs, 4);
        }
      key_group_sizes.push_back(g);
      keys_done += g;
    }
    EXPECT_EQ(kv_quantized_prefix(options.kv_quant, KvRole::key, i, n), keys_done) << i;
    EXPECT_EQ(kv_quantized_prefix(options.kv_quant, KvRole::value, i, n), values_done) << i;
    one.query_rows = {i};
    const AttentionResult<double> want = exact_attention(q, cache_k, cache_v, policy, one);
    for (std::size_t h = 0; h < heads; ++h)
      for (std::size_t c = 0; c < d; ++c) EXPECT_EQ(got.y.data[(h * n + i) * d + c], want.y.row(h, 0)[c]) << i;
  }
  // (23 - 1 - 3) / 4 = 4 whole groups; no group of one token.
  EXPECT_EQ(key_group_sizes, std::vector<std::size_t>(4, g));
  // The last query does not read a key group of 1-3 tokens: token 17 .. 19 stay full.
  EXPECT_EQ(got.y.data.size(), heads * n * d);
  // A sequence-level residual differs (early queries see no full-precision keys).
  options.kv_quant = kv_quant_scheme("int4-g4-s1-r3");
  EXPECT_NE(compute_attention(Method::exact_kvquant, qkv, policy, options).y.data, got.y.data);
  // A subset of rows gives the same rows.
  options.kv_quant = kv_quant_scheme("int4-g4-s1-rq3");
  options.query_rows = {2, 9, 22};
  const AttentionOutput some = compute_attention(Method::exact_kvquant, qkv, policy, options);
  for (std::size_t h = 0; h < heads; ++h)
    for (std::size_t r = 0; r < 3; ++r)
      for (std::size_t c = 0; c < d; ++c)
        EXPECT_EQ(some.y.data[(h * 3 + r) * d + c], got.y.data[(h * n + options.query_rows[r]) * d + c]);
  // Not without the causal mask.
  options.mask = Mask::none;
  EXPECT_THROW(compute_attention(Method::exact_kvquant, qkv, policy, options), InvalidArgument);
}

// Bytes, counted by hand: heads 2, n 20, d_key 4, d_value 2, fp32 input (4 bytes).
TEST(KvSchemes, BytesCountSinksOutliersAndThePerQueryResidualByHand) {
  const Format& f32 = fp32();
  // int4-g4-s2-rq5: sinks 2 tokens fp16: 2·2·6·2 = 48. Values quantized 20-2-5 = 13 tokens,
  // keys (13 / 4) · 4 = 12. Full: keys 20-2-12 = 6, values 5: 2·(6·4 + 5·2)·4 = 272.
  // Codes: 2·(ceil(12·4·4/8) + ceil(13·2·4/8)) = 2·(24 + 13) = 74.
  // Scales: 2·(4·ceil(12/4) + 13·ceil(2/4))·4 = 2·(12 + 13)·4 = 200.
  KvCacheBytes b = kv_cache_bytes(kv_quant_scheme("int4-g4-s2-rq5"), f32, 2, 20, 4, 2);
  EXPECT_EQ(b.sink_bytes, 48u);
  EXPECT_EQ(b.unquantized_bytes, 272u);
  EXPECT_EQ(b.code_bytes, 74u);
  EXPECT_EQ(b.scale_bytes, 200u);
  EXPECT_EQ(b.outlier_bytes, 0u);
  // int8-o0.1: N_K = 20·4 = 80 -> 8, N_V = 40 -> 4 per head; each 4 + 4 bytes: 2·12·8 = 192.
  b = kv_cache_bytes(kv_quant_scheme("int8-o0.1"), f32, 2, 20, 4, 2);
  EXPECT_EQ(b.outlier_bytes, 192u);
  EXPECT_EQ(b.code_bytes, 2u * 20 * 6);
  EXPECT_EQ(b.scale_bytes, 2u * 40 * 2);
  // -r and -rq agree for per-token schemes.
  EXPECT_EQ(kv_cache_bytes(kv_quant_scheme("int8-r5"), f32, 2, 20, 4, 2).total(),
            kv_cache_bytes(kv_quant_scheme("int8-rq5"), f32, 2, 20, 4, 2).total());
}

}  // namespace satalab
