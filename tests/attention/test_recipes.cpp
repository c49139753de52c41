// Kernel recipes (attention/recipe.hpp) against a direct re-implementation of
// each recipe's documented rounding steps: a scalar loop per query row over
// keys in tiles, written from the list in the header (formats hard-coded
// here per recipe name, not read from the library's table), at tiny sizes
// with several tiles and quantisation blocks. Products of the few stored
// values are exact in double here, so the two must agree bit for bit.
#include <gtest/gtest.h>

#include <boost/random/mersenne_twister.hpp>
#include <boost/random/uniform_int_distribution.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "satalab/attention/compute.hpp"
#include "satalab/attention/recipe.hpp"
#include "satalab/error.hpp"
#include "satalab/experiment/point.hpp"
#include "satalab/numeric/format.hpp"
#include "satalab/numeric/rounding.hpp"

namespace {

using namespace satalab;

double f32(double x) { return static_cast<double>(static_cast<float>(x)); }

QkvArrays inputs(std::size_t heads, std::size_t n, std::size_t d, std::size_t dv, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.5);
  QkvArrays in;
  in.q = HeadArrays(heads, n, d);
  in.k = HeadArrays(heads, n, d);
  in.v = HeadArrays(heads, n, dv);
  for (auto* a : {&in.q, &in.k, &in.v}) {
    for (double& x : a->data) x = normal(rng);
  }
  in.k.data[5] = 9.0;  // an outlier: block scales differ
  in.q.data[2] = -7.5;
  return in;
}

enum class Store { cast, e4m3_block, e4m3_head, int8_block };

struct Reference {
  Store qs, ks, vs;
  Format cast;  // fp64: no cast before quantisation
  bool hadamard = false, smooth_k = false, materialised = false;
  Format score, p, out;
  int offset = 0;
  Format acc = fp32();
};

Reference reference_for(const std::string& name) {
  using S = Store;
  if (name == "flash2-bf16") return {S::cast, S::cast, S::cast, bf16(), false, false, false, fp32(), bf16(), bf16()};
  if (name == "flash2-fp16") return {S::cast, S::cast, S::cast, fp16(), false, false, false, fp32(), fp16(), fp16()};
  if (name == "flash2-bf16-acc16") {
    return {S::cast, S::cast, S::cast, bf16(), false, false, false, bf16(), bf16(), bf16(), 0, bf16()};
  }
  if (name == "sdpa-math-bf16") return {S::cast, S::cast, S::cast, bf16(), false, false, true, bf16(), bf16(), bf16()};
  if (name == "sdpa-math-fp16") return {S::cast, S::cast, S::cast, fp16(), false, false, true, fp16(), fp16(), fp16()};
  if (name == "sdpa-math-fp8") {
    return {S::e4m3_head, S::e4m3_head, S::e4m3_head, fp64(), false, false, true, fp16(), fp16(), fp16()};
  }
  if (name == "flash3-fp8") {
    return {S::e4m3_block, S::e4m3_block, S::e4m3_block, fp64(), false, false, false, fp32(), e4m3(), bf16(), 8};
  }
  if (name == "flash3-fp8-hadamard") {
    return {S::e4m3_block, S::e4m3_block, S::e4m3_block, fp64(), true, false, false, fp32(), e4m3(), bf16(), 8};
  }
  return {S::int8_block, S::int8_block, S::cast, fp16(), false, true, false, fp32(), fp16(), fp16()};  // sage-int8
}

// x (one head's [n, d] in place) stored; returns the per-token scales.
std::vector<double> store(double* x, std::size_t n, std::size_t d, Store how, const Format& cast, std::size_t block) {
  for (std::size_t e = 0; e < n * d; ++e) x[e] = round_to(x[e], cast);
  std::vector<double> scale(n, 1.0);
  if (how == Store::cast) return scale;
  if (how == Store::e4m3_head) block = n;
  const double limit = how == Store::int8_block ? 127.0 : 448.0;
  for (std::size_t b0 = 0; b0 < n; b0 += block) {
    const std::size_t b1 = std::min(n, b0 + block);
    double amax = 0;
    for (std::size_t e = b0 * d; e < b1 * d; ++e) amax = std::max(amax, std::fabs(x[e]));
    const double s = f32(amax / limit);
    for (std::size_t i = b0; i < b1; ++i) {
      scale[i] = s;
      for (std::size_t t = 0; t < d; ++t) {
        const double q = f32(x[i * d + t] / s);
        x[i * d + t] = how == Store::int8_block ? std::clamp(std::round(q), -127.0, 127.0)
                                                : round_to(q, e4m3_saturating());
      }
    }
  }
  return scale;
}

// The recipe's output, row by row from its steps.
std::vector<double> reference(const QkvArrays& in, const std::string& name, std::size_t br, std::size_t bc,
                              bool causal, std::uint64_t seed) {
  const Reference r = reference_for(name);
  const std::size_t H = in.q.heads, n = in.q.n_tokens, d = in.q.dim, dv = in.v.dim;
  const double c = std::sqrt(static_cast<double>(d));
  const float c2 = static_cast<float>(1.0 / (c * std::log(2.0)));
  std::vector<double> y(H * n * dv);
  // The Hadamard signs: mt19937_64 of the seed xor the recipe's tag, as recipe.cpp documents.
  std::vector<double> signs(d, 1.0);
  if (r.hadamard) {
    boost::random::mt19937_64 rng(seed ^ 0x4861646d61726431ULL);
    boost::random::uniform_int_distribution<int> coin(0, 1);
    for (double& s : signs) s = coin(rng) ? 1.0 : -1.0;
  }
  for (std::size_t h = 0; h < H; ++h) {
    std::vector<double> q(in.q.head(h), in.q.head(h) + n * d), k(in.k.head(h), in.k.head(h) + n * d),
        v(in.v.head(h), in.v.head(h) + n * dv);
    if (r.hadamard) {  // x ← x·(H·D)ᵀ/√d with H[t][u] = (-1)^popcount(t & u)
      for (std::vector<double>* x : {&q, &k}) {
        std::vector<double> out(n * d, 0.0);
        for (std::size_t i = 0; i < n; ++i) {
          for (std::size_t t = 0; t < d; ++t) {
            double sum = 0;
            for (std::size_t u = 0; u < d; ++u) {
              const double sign = (__builtin_popcountll(t & u) % 2) ? -1.0 : 1.0;
              sum += sign * signs[u] * (*x)[i * d + u];
            }
            out[i * d + t] = sum / std::sqrt(static_cast<double>(d));
          }
        }
        *x = out;
      }
    }
    if (r.smooth_k) {
      for (double& x : k) x = round_to(x, r.cast);
      for (std::size_t t = 0; t < d; ++t) {
        double sum = 0;
        for (std::size_t i = 0; i < n; ++i) sum += k[i * d + t];
        const double mean = round_to(sum / static_cast<double>(n), r.cast);
        for (std::size_t i = 0; i < n; ++i) k[i * d + t] = round_to(k[i * d + t] - mean, r.cast);
      }
    }
    const std::vector<double> sq = store(q.data(), n, d, r.qs, r.cast, br);
    const std::vector<double> sk = store(k.data(), n, d, r.ks, r.cast, bc);
    const std::vector<double> sv = store(v.data(), n, dv, r.vs, r.cast, bc);
    const bool scaled_qk = r.qs != Store::cast, scaled_v = r.vs != Store::cast;
    const auto score = [&](std::size_t i, std::size_t j) {
      double dot = 0;
      for (std::size_t t = 0; t < d; ++t) dot += q[i * d + t] * k[j * d + t];
      if (scaled_qk) dot = f32(f32(dot) * f32(sq[i] * sk[j]));
      return round_to(dot, r.score);
    };
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t end = causal ? i + 1 : n;
      double* out = y.data() + (h * n + i) * dv;
      if (r.materialised) {
        const double scale = round_to(1.0 / c, r.score);
        std::vector<double> s(end);
        for (std::size_t j = 0; j < end; ++j) s[j] = round_to(f32(score(i, j) * scale), r.score);
        const double m = *std::max_element(s.begin(), s.end());
        std::vector<float> e(end);
        float sum = 0;
        for (std::size_t j = 0; j < end; ++j) {
          e[j] = static_cast<float>(std::exp(static_cast<double>(static_cast<float>(s[j] - m))));
          sum += e[j];
        }
        for (std::size_t t = 0; t < dv; ++t) {
          double acc = 0;
          for (std::size_t j = 0; j < end; ++j) acc += round_to(static_cast<double>(e[j] / sum), r.p) * v[j * dv + t];
          if (scaled_v) acc = f32(f32(acc) * sv[0]);
          out[t] = round_to(acc, r.out);
        }
        continue;
      }
      double m = -std::numeric_limits<double>::infinity();
      float l = 0;
      std::vector<double> acc(dv, 0.0);
      for (std::size_t j0 = 0; j0 < end; j0 += bc) {
        const std::size_t j1 = std::min(end, j0 + bc);
        double block_max = -std::numeric_limits<double>::infinity();
        for (std::size_t j = j0; j < j1; ++j) block_max = std::max(block_max, score(i, j));
        if (block_max > m) {
          if (m != -std::numeric_limits<double>::infinity()) {
            const double f = f32(std::exp2(static_cast<double>(static_cast<float>(m - block_max) * c2)));
            for (double& a : acc) a = round_to(f32(a * f), r.acc);
            l = static_cast<float>(round_to(f32(l * f), r.acc));
          }
          m = block_max;
        }
        const float mc = static_cast<float>(m) * c2 - static_cast<float>(r.offset);
        std::vector<double> p(j1 - j0);
        float tile_sum = 0;  // a bf16 accumulator takes the tile's fp32 sum once
        for (std::size_t j = j0; j < j1; ++j) {
          const float x = std::fma(static_cast<float>(score(i, j)), c2, -mc);
          const float pj = static_cast<float>(std::exp2(static_cast<double>(x)));
          if (r.acc == fp32()) {
            l += pj;
          } else {
            tile_sum += pj;
          }
          p[j - j0] = round_to(static_cast<double>(pj), r.p);
        }
        if (r.acc != fp32()) l = static_cast<float>(round_to(f32(static_cast<double>(l) + tile_sum), r.acc));
        for (std::size_t t = 0; t < dv; ++t) {
          double tile = 0;
          for (std::size_t j = j0; j < j1; ++j) tile += p[j - j0] * v[j * dv + t];
          double product = f32(tile);
          if (scaled_v) product = f32(product * sv[j0]);
          acc[t] = round_to(f32(acc[t] + product), r.acc);
        }
      }
      const double inv = f32(1.0 / l);
      for (std::size_t t = 0; t < dv; ++t) out[t] = round_to(f32(acc[t] * inv), r.out);
    }
  }
  return y;
}

AttentionOutput run_recipe(const QkvArrays& in, const std::string& name, std::size_t br, std::size_t bc, bool causal,
                           std::uint64_t seed, std::vector<std::size_t> rows = {}) {
  AttentionOptions options;
  options.mask = causal ? Mask::causal : Mask::none;
  options.recipe = kernel_recipe(name);
  options.recipe.tile_rows = br;
  options.recipe.tile_cols = bc;
  options.recipe.seed = seed;
  options.query_rows = std::move(rows);
  return compute_attention(Method::exact, in, precision_policy("fp32"), options);
}

class RecipeAgainstSteps : public ::testing::TestWithParam<std::string> {};

TEST_P(RecipeAgainstSteps, EqualsTheDirectReimplementationOfItsSteps) {
  const std::string name = GetParam();
  const QkvArrays in = inputs(2, 11, 4, 3, 7);
  for (const bool causal : {true, false}) {
    // Several tiles and blocks (4 x 3), and tiles larger than the sequence (one tile, one block).
    for (const auto& [br, bc] : {std::pair<std::size_t, std::size_t>{4, 3}, {64, 128}}) {
      const std::vector<double> want = reference(in, name, br, bc, causal, 5);
      const AttentionOutput got = run_recipe(in, name, br, bc, causal, 5);
      ASSERT_EQ(got.y.data.size(), want.size());
      for (std::size_t e = 0; e < want.size(); ++e) {
        ASSERT_EQ(got.y.data[e], want[e]) << name << " causal=" << causal << " tiles " << br << "x" << bc
                                          << " element " << e;
      }
    }
  }
  // A subset of query rows gives those rows of the full output (per-row block scales kept).
  const AttentionOutput full = run_recipe(in, name, 4, 3, true, 5);
  const AttentionOutput some = run_recipe(in, name, 4, 3, true, 5, {1, 6, 10});
  for (std::size_t h = 0; h < 2; ++h) {
    for (std::size_t r = 0; r < 3; ++r) {
      const std::size_t i = std::vector<std::size_t>{1, 6, 10}[r];
      for (std::size_t t = 0; t < 3; ++t) {
        EXPECT_EQ(some.y.data[(h * 3 + r) * 3 + t], full.y.data[(h * 11 + i) * 3 + t]);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Recipes, RecipeAgainstSteps,
                         ::testing::Values("flash2-bf16", "flash2-fp16", "flash2-bf16-acc16", "sdpa-math-bf16", "sdpa-math-fp16",
                                           "sdpa-math-fp8", "flash3-fp8", "flash3-fp8-hadamard", "sage-int8"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST(Recipes, TheSmoothedKeysLeaveSoftmaxUnchanged) {
  // Subtracting a constant key from every key shifts each row's scores by one
  // constant: in float64 (no rounding anywhere) the output is the same.
  const QkvArrays in = inputs(1, 9, 4, 3, 3);
  QkvArrays shifted = in;
  for (std::size_t i = 0; i < 9; ++i) {
    for (std::size_t t = 0; t < 4; ++t) shifted.k.row(0, i)[t] -= 0.5 * static_cast<double>(t + 1);
  }
  AttentionOptions options;
  const AttentionOutput a = compute_attention(Method::exact, in, precision_policy("fp64"), options);
  const AttentionOutput b = compute_attention(Method::exact, shifted, precision_policy("fp64"), options);
  for (std::size_t e = 0; e < a.y.data.size(); ++e) EXPECT_NEAR(a.y.data[e], b.y.data[e], 1e-14);
}

TEST(Recipes, BadInputIsRefusedNamingTheValue) {
  EXPECT_THROW(kernel_recipe("flash4"), InvalidArgument);
  AttentionOptions options;
  options.recipe = kernel_recipe("flash2-bf16");
  EXPECT_THROW(validate_method_options(Method::sata, options, precision_policy("fp32")), InvalidArgument);
  EXPECT_THROW(validate_method_options(Method::exact, options, precision_policy("bf16-acc32")), InvalidArgument);
  options.recipe.tile_cols = 0;
  EXPECT_THROW(validate_method_options(Method::exact, options, precision_policy("fp32")), InvalidArgument);
  EXPECT_THROW(check_recipe_shape(kernel_recipe("flash3-fp8-hadamard"), 24), InvalidArgument);
  EXPECT_NO_THROW(check_recipe_shape(kernel_recipe("flash3-fp8-hadamard"), 64));
  const QkvArrays in = inputs(1, 5, 4, 3, 1);
  EXPECT_THROW(run_recipe(in, "flash2-bf16", 4, 0, true, 1), InvalidArgument);
}

TEST(Recipes, CacheBytesCountCodesAndScales) {
  KernelRecipe r = kernel_recipe("flash2-bf16");
  EXPECT_EQ(recipe_kv_cache_bytes(r, 2, 100, 16, 8), 2u * 100u * (16 + 8) * 2);
  r = kernel_recipe("flash3-fp8");  // 8-bit codes, one fp32 scale per 64 keys for K and V
  EXPECT_EQ(recipe_kv_cache_bytes(r, 1, 100, 16, 8), 100u * 24 + 2 * 2 * 4);
  r = kernel_recipe("sage-int8");  // int8 K with block scales and the fp32 mean, fp16 V
  EXPECT_EQ(recipe_kv_cache_bytes(r, 1, 100, 16, 8), 100u * 16 + 2 * 4 + 16 * 4 + 100u * 8 * 2);
}

}  // namespace
