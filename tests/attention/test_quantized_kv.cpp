// KV-cache quantization (quantized_kv.hpp) against independent statements of
// each scheme: grids read off the format parameters (precision, emin, max) and
// the documented group layout, hand-counted bytes, the OCP/IEEE overflow
// rules, and exact attention over independently dequantized K and V.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "satalab/attention/compute.hpp"
#include "satalab/attention/kernels.hpp"
#include "satalab/attention/quantized_kv.hpp"
#include "satalab/error.hpp"
#include "satalab/numeric/format.hpp"

namespace satalab {
namespace {

constexpr double kCarrierSlack = 0x1p-52;  // relative error of one double division

// ---- independent grids -------------------------------------------------------

// Spacing of a floating-point format near y: 2^(max(floor(log2|y|), emin) - (p - 1)).
double grid_spacing(double y, int precision_bits, int emin) {
  int e = emin;
  if (y != 0) {
    int exponent = 0;
    std::frexp(y, &exponent);  // |y| = f·2^exponent, 0.5 <= f < 1
    e = std::max(exponent - 1, emin);
  }
  return std::ldexp(1.0, e - (precision_bits - 1));
}

// y is a value of a format with these parameters: a multiple of its spacing, not above max.
bool on_grid(double y, int precision_bits, int emin, double max_finite) {
  if (!std::isfinite(y) || std::fabs(y) > max_finite) return false;
  const double units = y / grid_spacing(y, precision_bits, emin);
  return units == std::trunc(units);
}
bool is_fp16(double y) { return on_grid(y, 11, -14, 65504.0); }
bool is_fp32(double y) { return on_grid(y, 24, -126, 3.4028234663852886e38); }

struct Shape {
  std::size_t heads, n, d;
};

HeadTensor<double> gaussian(Shape s, unsigned seed, double sigma = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, sigma);
  HeadTensor<double> t(s.heads, s.n, s.d);
  for (double& x : t.data) x = normal(rng);
  return t;
}

// Random data with the adversarial cases planted: per head, an all-zero
// channel and a constant channel of a value fp16 cannot hold (-0.1), then an
// all-zero token row, constant rows of 0.1 and of an offset 100.3, and a
// single large outlier.
HeadTensor<double> adversarial(Shape s, unsigned seed) {
  HeadTensor<double> t = gaussian(s, seed);
  for (std::size_t h = 0; h < s.heads; ++h) {
    for (std::size_t i = 0; i < s.n; ++i) {
      t.row(h, i)[0] = 0;
      if (s.d > 1) t.row(h, i)[1] = -0.1;
    }
    for (std::size_t c = 0; c < s.d; ++c) {
      t.row(h, 0)[c] = 0;
      t.row(h, 1)[c] = 0.1;
      t.row(h, 2)[c] = 100.3;
    }
    t.row(h, s.n / 2)[s.d - 1] = 1000.0 * (h % 2 ? -1 : 1);
  }
  return t;
}

// ---- scheme names ------------------------------------------------------------

std::string error_of(const std::string& name) {
  try {
    (void)kv_quant_scheme(name);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(KvQuantScheme, NamesParseToTheirKindFormatBitsGroupAndResidual) {
  struct Expected {
    const char* name;
    KvQuantKind kind;
    const char* format;
    CastScale scale;
    unsigned bits;
    std::size_t group, residual;
  };
  const Expected all[] = {
      {"none", KvQuantKind::none, "", CastScale::tensor, 0, 0, 0},
      {"fp16", KvQuantKind::float_cast, "fp16", CastScale::tensor, 0, 0, 0},
      {"bf16-head", KvQuantKind::float_cast, "bf16", CastScale::head, 0, 0, 0},
      {"e4m3", KvQuantKind::float_cast, "e4m3", CastScale::tensor, 0, 0, 0},
      {"e4m3sat-unscaled", KvQuantKind::float_cast, "e4m3sat", CastScale::unscaled, 0, 0, 0},
      {"e5m2-head-r7", KvQuantKind::float_cast, "e5m2", CastScale::head, 0, 0, 7},
      {"int8", KvQuantKind::int_per_token, "", CastScale::tensor, 8, 0, 0},
      {"int8-r16", KvQuantKind::int_per_token, "", CastScale::tensor, 8, 0, 16},
      {"int4-g32", KvQuantKind::int_grouped, "", CastScale::tensor, 4, 32, 0},
      {"int2-g32", KvQuantKind::int_grouped, "", CastScale::tensor, 2, 32, 0},
      {"int2-g128-r128", KvQuantKind::int_grouped, "", CastScale::tensor, 2, 128, 128},
  };
  for (const Expected& e : all) {
    SCOPED_TRACE(e.name);
    const KvQuantScheme s = kv_quant_scheme(e.name);
    EXPECT_EQ(s.name, e.name);
    EXPECT_EQ(s.kind, e.kind);
    if (e.kind == KvQuantKind::float_cast) {
      EXPECT_EQ(s.format.name, e.format);
      EXPECT_EQ(s.cast_scale, e.scale);
    }
    EXPECT_EQ(s.bits, e.bits);
    EXPECT_EQ(s.group, e.group);
    EXPECT_EQ(s.residual, e.residual);
  }
}

TEST(KvQuantScheme, BadNamesThrowOneLineNamingTheValueAndTheAllowedNames) {
  for (const char* bad :
       {"int3", "int4", "int4-g0", "int4-g", "int4-gx", "int4-g032", "int4-g32-r0", "int4-g32-x",
        "int8-g32", "fp16-head-unscaled", "none-r4", "fp8", "", "e4m3-r", "int2-g-5"}) {
    SCOPED_TRACE(bad);
    const std::string message = error_of(bad);
    EXPECT_NE(message, "(no error)");
    EXPECT_NE(message.find(std::string("'") + bad + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("allowed: none, fp16"), std::string::npos) << message;
    EXPECT_NE(message.find("int4-g<G>"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  EXPECT_NE(error_of("int4-g0").find("group size '0'"), std::string::npos);
  EXPECT_NE(error_of("int4").find("needs a group size"), std::string::npos);
}

// ---- bytes per token: hand counts ----------------------------------------------

std::uint64_t bytes(const char* scheme, const Format& unquantized, std::uint64_t heads,
                    std::uint64_t n, std::uint64_t d_key, std::uint64_t d_value) {
  return kv_cache_bytes(kv_quant_scheme(scheme), unquantized, heads, n, d_key, d_value).total();
}

TEST(KvCacheBytes, MatchHandCountsIncludingScalesZeroPointsAndResidual) {
  // One head, 1024 tokens, d_key = d_value = 16 (32 values per token).
  EXPECT_EQ(bytes("none", fp32(), 1, 1024, 16, 16), 1024u * 32 * 4);  // 131072
  EXPECT_EQ(bytes("none", fp16(), 1, 1024, 16, 16), 1024u * 32 * 2);
  EXPECT_EQ(bytes("fp16", fp32(), 1, 1024, 16, 16),
            1024u * 32 * 2 + 2 * 4);  // + an fp32 scale for K and for V
  EXPECT_EQ(bytes("bf16", fp32(), 1, 1024, 16, 16), 1024u * 32 * 2 + 2 * 4);
  EXPECT_EQ(bytes("e4m3", fp32(), 1, 1024, 16, 16), 1024u * 32 + 2 * 4);
  EXPECT_EQ(bytes("e5m2", fp32(), 1, 1024, 16, 16), 1024u * 32 + 2 * 4);
  EXPECT_EQ(bytes("e4m3-unscaled", fp32(), 1, 1024, 16, 16), 1024u * 32);
  EXPECT_EQ(bytes("e4m3-head", fp32(), 4, 1024, 16, 16), 4u * 1024 * 32 + 4 * 2 * 4);
  EXPECT_EQ(bytes("e4m3", fp32(), 4, 1024, 16, 16), 4u * 1024 * 32 + 2 * 4);
  // int8: 32 codes + an fp16 scale for the K row and one for the V row = 36 per token.
  EXPECT_EQ(bytes("int8", fp32(), 1, 1024, 16, 16), 1024u * 36);
  // int4-g32: K codes 1024·16/2, K groups 16 channels × 32 token groups × (scale + zero, 2 + 2);
  // V codes 1024·16/2, V groups 1024 tokens × 1 channel group (16 < 32) × 4. 22 bytes per token.
  EXPECT_EQ(bytes("int4-g32", fp32(), 1, 1024, 16, 16), 8192u + 16 * 32 * 4 + 8192 + 1024 * 4);
  EXPECT_EQ(bytes("int4-g32", fp32(), 1, 1024, 16, 16), 22u * 1024);
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(kv_quant_scheme("int4-g32"), fp32(), 1, 1024, 16, 16), 22.0);
  EXPECT_EQ(bytes("int2-g32", fp32(), 1, 1024, 16, 16),
            4096u + 2048 + 4096 + 4096);  // 14 per token
  // Residual 128 in fp32: 896 quantized tokens (28 key groups), 128 × 32 × 4 bytes unquantized.
  EXPECT_EQ(bytes("int4-g32-r128", fp32(), 1, 1024, 16, 16),
            7168u + 16 * 28 * 4 + 7168 + 896 * 4 + 128 * 32 * 4);
  EXPECT_EQ(bytes("int4-g32-r128", fp16(), 1, 1024, 16, 16),
            7168u + 16 * 28 * 4 + 7168 + 896 * 4 + 128 * 32 * 2);
  EXPECT_EQ(bytes("int8-r2000", fp32(), 1, 1024, 16, 16), 1024u * 32 * 4);  // all in the residual
  // A partial last group: 1000 tokens, d = 8: ceil(1000/32) = 32 key groups per channel.
  EXPECT_EQ(bytes("int4-g32", fp32(), 1, 1000, 8, 8), 4000u + 8 * 32 * 4 + 4000 + 1000 * 4);
  // Odd packing: 3 tokens × 3 channels × 4 bits = 4.5 bytes, padded to 5 per head and tensor;
  // groups of 4: 3 key groups (one per channel) and 3 value groups (one per token) per head.
  EXPECT_EQ(bytes("int4-g4", fp32(), 2, 3, 3, 3), 2u * (5 + 5) + 2 * 6 * 4);
  EXPECT_EQ(bytes("int2-g1", fp32(), 1, 4, 2, 3), 2u + 3 + (2 * 4 + 4 * 3) * 4);
}

// ---- float casts -----------------------------------------------------------------

struct CastCase {
  const char* name;
  int p, emin;
  double max;
};
const CastCase kCasts[] = {{"fp16", 11, -14, 65504.0},
                           {"bf16", 8, -126, 3.3895313892515355e38},
                           {"e4m3", 4, -6, 448.0},
                           {"e4m3sat", 4, -6, 448.0},
                           {"e5m2", 3, -14, 57344.0}};

// Every element on the scaled grid, within half its spacing, and the largest
// magnitude of each scale's range at exactly ±max.
void expect_cast_within_half_a_step(const HeadTensor<double>& x, const CastCase& f,
                                    const std::string& scheme_name) {
  SCOPED_TRACE(scheme_name);
  const KvQuantScheme scheme = kv_quant_scheme(scheme_name);
  for (KvRole role : {KvRole::key, KvRole::value}) {
    const QuantizedTensor q = quantize_dequantize(x, role, scheme);
    ASSERT_EQ(q.n_quantized, x.n_tokens);
    ASSERT_EQ(q.scales.size(), scheme.cast_scale == CastScale::head ? x.heads : 1u);
    for (std::size_t h = 0; h < x.heads; ++h) {
      const double s = q.scales[scheme.cast_scale == CastScale::head ? h : 0];
      double amax = 0;
      const std::size_t from = scheme.cast_scale == CastScale::head ? h : 0;
      const std::size_t to = scheme.cast_scale == CastScale::head ? h + 1 : x.heads;
      for (std::size_t g = from; g < to; ++g) {
        for (std::size_t i = 0; i < x.n_tokens * x.dim; ++i)
          amax = std::max(amax, std::fabs(x.head(g)[i]));
      }
      if (amax == 0) {
        EXPECT_EQ(s, 0.0);
      } else {
        // s: the fp32 value at or just above absmax / max.
        EXPECT_TRUE(is_fp32(s)) << s;
        EXPECT_GE(s, amax / f.max);
        EXPECT_LE(s, amax / f.max * (1 + 0x1p-23) + std::ldexp(1.0, -149)) << amax;
      }
      for (std::size_t i = 0; i < x.n_tokens * x.dim; ++i) {
        const double in = x.head(h)[i], out = q.values.head(h)[i];
        if (s == 0) {
          EXPECT_EQ(out, 0.0);
          continue;
        }
        const double code = out / s;  // exact: out = code·s
        ASSERT_TRUE(on_grid(code, f.p, f.emin, f.max))
            << in << " -> " << out << " (code " << code << ")";
        const double half_step = s * grid_spacing(in / s, f.p, f.emin) / 2;
        ASSERT_LE(std::fabs(out - in), half_step + kCarrierSlack * std::fabs(in))
            << in << " -> " << out;
        if (std::fabs(in) == amax) {
          EXPECT_EQ(std::fabs(code), f.max) << in;  // the absmax maps to the format's max
        }
      }
    }
  }
}

TEST(KvQuantCast, EveryElementIsWithinHalfAStepOfItsScaledGridOnRandomAndAdversarialInputs) {
  const Shape shape{3, 40, 6};
  std::vector<HeadTensor<double>> inputs = {gaussian(shape, 1), adversarial(shape, 2),
                                            gaussian(shape, 3, 1e-3)};
  {  // Heads of very different magnitude, one all zero: per-head scales differ from the tensor's.
    HeadTensor<double> t = gaussian(shape, 4);
    for (std::size_t i = 0; i < shape.n * shape.d; ++i) {
      t.head(0)[i] *= 1e-4;
      t.head(2)[i] = 0;
    }
    inputs.push_back(t);
  }
  for (const CastCase& f : kCasts) {
    for (const auto& x : inputs) {
      expect_cast_within_half_a_step(x, f, f.name);
      expect_cast_within_half_a_step(x, f, std::string(f.name) + "-head");
    }
  }
}

TEST(KvQuantCast, AllZeroTensorKeepsZerosWithScaleZero) {
  HeadTensor<double> zeros(2, 5, 3);
  for (const CastCase& f : kCasts) {
    const QuantizedTensor q = quantize_dequantize(zeros, KvRole::key, kv_quant_scheme(f.name));
    EXPECT_EQ(q.scales, std::vector<double>{0.0});
    for (double v : q.values.data) EXPECT_EQ(v, 0.0);
  }
}

// Unscaled casts follow the format record's overflow rule: e4m3 (OCP "fn") has
// no infinity and gives NaN, e4m3sat clamps to ±448, e5m2 and fp16 give ±inf.
// Values in the top binade round to nearest even first (e4m3: 464 is the tie
// between 448 = 1.110b·2^8 and the NaN pattern's 480 = 1.111b·2^8, and goes to
// the even 448; e5m2: 61440 is the tie between 57344 = 1.11b·2^15 and 2^16, and
// goes to the even 2^16, which overflows).
TEST(KvQuantCast, UnscaledCastsSaturateOrGiveNanOrInfAsTheFormatRecordSays) {
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    const char* scheme;
    double in, out;  // out NaN: expect NaN
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Case cases[] = {
      {"e4m3-unscaled", 448, 448},
      {"e4m3-unscaled", 464, 448},
      {"e4m3-unscaled", 464.5, nan},
      {"e4m3-unscaled", -1000, nan},
      {"e4m3-unscaled", 0x1p-10, 0},
      {"e4m3-unscaled", 0x1.8p-10, 0x1p-9},
      {"e4m3sat-unscaled", 464.5, 448},
      {"e4m3sat-unscaled", -1e30, -448},
      {"e4m3sat-unscaled", 448, 448},
      {"e5m2-unscaled", 57344, 57344},
      {"e5m2-unscaled", 61439, 57344},
      {"e5m2-unscaled", 61440, inf},
      {"e5m2-unscaled", -1e6, -inf},
      {"fp16-unscaled", 65519, 65504},
      {"fp16-unscaled", 65520, inf},
      {"bf16-unscaled", -1e39, -inf},
      {"fp16-unscaled", 1.0 + 0x1p-11, 1.0},
      {"fp16-unscaled", 1.0 + 0x1p-11 + 0x1p-40, 1.0 + 0x1p-10},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.scheme) + " " + std::to_string(c.in));
    HeadTensor<double> x(1, 1, 1);
    x.data[0] = c.in;
    const QuantizedTensor q = quantize_dequantize(x, KvRole::value, kv_quant_scheme(c.scheme));
    EXPECT_EQ(q.scales, std::vector<double>{1.0});
    if (std::isnan(c.out)) {
      EXPECT_TRUE(std::isnan(q.values.data[0])) << q.values.data[0];
    } else {
      EXPECT_EQ(q.values.data[0], c.out);
    }
  }
  // Scaled, the same inputs never overflow: the absmax maps to exactly ±max.
  HeadTensor<double> x(1, 1, 4);
  x.data = {464.5, -1000, 61440, 1e30};
  for (const CastCase& f : kCasts) {
    const QuantizedTensor q = quantize_dequantize(x, KvRole::key, kv_quant_scheme(f.name));
    for (double v : q.values.data) EXPECT_TRUE(std::isfinite(v)) << f.name;
    EXPECT_EQ(q.values.data[3] / q.scales[0], f.max) << f.name;
  }
}

// ---- int8 symmetric per token ----------------------------------------------------

TEST(KvQuantInt8, EveryElementIsWithinHalfAStepOfItsTokensSymmetricGrid) {
  const Shape shape{2, 30, 7};
  for (const auto& x : {gaussian(shape, 5), adversarial(shape, 6), gaussian(shape, 7, 1e-6)}) {
    for (KvRole role : {KvRole::key, KvRole::value}) {
      const QuantizedTensor q = quantize_dequantize(x, role, kv_quant_scheme("int8"));
      ASSERT_EQ(q.scales.size(), shape.heads * shape.n);
      EXPECT_TRUE(q.zero_points.empty());
      for (std::size_t h = 0; h < shape.heads; ++h) {
        for (std::size_t t = 0; t < shape.n; ++t) {
          const double s = q.scales[h * shape.n + t];
          double amax = 0;
          for (std::size_t c = 0; c < shape.d; ++c)
            amax = std::max(amax, std::fabs(x.row(h, t)[c]));
          EXPECT_TRUE(is_fp16(s)) << s;
          EXPECT_GE(s, amax / 127);
          EXPECT_LE(s, amax / 127 * (1 + 0x1p-10) + 0x1p-24);
          for (std::size_t c = 0; c < shape.d; ++c) {
            const double in = x.row(h, t)[c], out = q.values.row(h, t)[c];
            if (s == 0) {
              EXPECT_EQ(amax, 0.0);
              EXPECT_EQ(out, 0.0);
              continue;
            }
            const double code = out / s;
            ASSERT_EQ(code, std::trunc(code)) << in;
            ASSERT_LE(std::fabs(code), 127.0);
            ASSERT_LE(std::fabs(out - in), s / 2 + kCarrierSlack * std::fabs(in))
                << in << " -> " << out;
          }
        }
      }
    }
  }
}

// ---- int4 / int2 asymmetric, KIVI arrangement ---------------------------------------

// The group (scale/zero-point index) of element (h, t, c), as quantized_kv.hpp
// documents it: keys per channel along tokens, values per token along channels.
std::size_t group_index(KvRole role, std::size_t h, std::size_t t, std::size_t c,
                        std::size_t n_quantized, std::size_t d, std::size_t g) {
  if (role == KvRole::key) return (h * d + c) * ((n_quantized + g - 1) / g) + t / g;
  return (h * n_quantized + t) * ((d + g - 1) / g) + c / g;
}

void expect_grouped_within_half_a_step(const HeadTensor<double>& x, const std::string& name) {
  SCOPED_TRACE(name);
  const KvQuantScheme scheme = kv_quant_scheme(name);
  const double levels = std::ldexp(1.0, static_cast<int>(scheme.bits)) - 1;
  for (KvRole role : {KvRole::key, KvRole::value}) {
    SCOPED_TRACE(role == KvRole::key ? "keys" : "values");
    const QuantizedTensor q = quantize_dequantize(x, role, scheme);
    const std::size_t n_q = x.n_tokens - std::min(scheme.residual, x.n_tokens);
    ASSERT_EQ(q.n_quantized, n_q);
    const std::size_t groups = role == KvRole::key
                                   ? x.heads * x.dim * ((n_q + scheme.group - 1) / scheme.group)
                                   : x.heads * n_q * ((x.dim + scheme.group - 1) / scheme.group);
    ASSERT_EQ(q.scales.size(), groups);
    ASSERT_EQ(q.zero_points.size(), groups);
    // Minimum and maximum of every group, from the documented arrangement.
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> lo(groups, inf), hi(groups, -inf);
    for (std::size_t h = 0; h < x.heads; ++h) {
      for (std::size_t t = 0; t < n_q; ++t) {
        for (std::size_t c = 0; c < x.dim; ++c) {
          const std::size_t k = group_index(role, h, t, c, n_q, x.dim, scheme.group);
          lo[k] = std::min(lo[k], x.row(h, t)[c]);
          hi[k] = std::max(hi[k], x.row(h, t)[c]);
        }
      }
    }
    for (std::size_t k = 0; k < groups; ++k) {
      const double s = q.scales[k], z = q.zero_points[k];
      ASSERT_TRUE(is_fp16(s) && s >= 0) << s;
      ASSERT_TRUE(is_fp16(z)) << z;
      EXPECT_LE(z, lo[k]);  // the grid z + code·s, code = 0..levels, covers the group
      EXPECT_GE(z + levels * s, hi[k] - kCarrierSlack * std::fabs(hi[k]));
      // ... and is no coarser than fp16 storage forces.
      EXPECT_LE(s,
                (hi[k] - lo[k] + grid_spacing(lo[k], 11, -14)) / levels * (1 + 0x1p-10) + 0x1p-24)
          << k;
    }
    for (std::size_t h = 0; h < x.heads; ++h) {
      for (std::size_t t = 0; t < x.n_tokens; ++t) {
        for (std::size_t c = 0; c < x.dim; ++c) {
          const double in = x.row(h, t)[c], out = q.values.row(h, t)[c];
          if (t >= n_q) {  // the residual: unquantized
            ASSERT_EQ(out, in);
            continue;
          }
          const std::size_t k = group_index(role, h, t, c, n_q, x.dim, scheme.group);
          const double s = q.scales[k], z = q.zero_points[k];
          if (s == 0) {
            ASSERT_EQ(out, z);
            ASSERT_EQ(in, z);
            continue;
          }
          const double code = (out - z) / s;
          ASSERT_EQ(code, std::trunc(code)) << in << " -> " << out;
          ASSERT_GE(code, 0.0);
          ASSERT_LE(code, levels);
          ASSERT_LE(std::fabs(out - in), s / 2 + kCarrierSlack * std::fabs(in))
              << in << " -> " << out;
        }
      }
    }
  }
}

TEST(KvQuantGrouped, EveryElementIsWithinHalfAStepOfItsGroupsGridInTheKiviArrangement) {
  // n and d not multiples of the group size: last groups are partial.
  const Shape shape{2, 45, 10};
  HeadTensor<double> outlier_channels = gaussian(shape, 8);
  for (std::size_t h = 0; h < shape.heads; ++h) {
    for (std::size_t t = 0; t < shape.n; ++t)
      outlier_channels.row(h, t)[3] = 50.0 + outlier_channels.row(h, t)[3];
  }
  for (const auto& x :
       {gaussian(shape, 9), adversarial(shape, 10), outlier_channels, gaussian(shape, 11, 1e-5)}) {
    for (const char* name : {"int4-g32", "int2-g32", "int4-g4", "int2-g3", "int4-g1", "int4-g100",
                             "int4-g8-r5", "int2-g32-r44", "int4-g4-r45", "int2-g2-r1000"}) {
      expect_grouped_within_half_a_step(x, name);
    }
  }
}

TEST(KvQuantGrouped, ConstantAndZeroGroupsAreExactWhenFp16HoldsThem) {
  HeadTensor<double> x(1, 8, 4);
  for (std::size_t t = 0; t < 8; ++t) {
    for (std::size_t c = 0; c < 4; ++c)
      x.row(0, t)[c] = c == 0 ? 0.0 : (c == 1 ? 0.375 : (c == 2 ? -2.0 : 65504.0));
  }
  // Keys: each channel is one constant group of 8 tokens.
  const QuantizedTensor q = quantize_dequantize(x, KvRole::key, kv_quant_scheme("int2-g8"));
  EXPECT_EQ(q.values.data, x.data);
  EXPECT_EQ(q.scales, (std::vector<double>{0, 0, 0, 0}));
  EXPECT_EQ(q.zero_points, (std::vector<double>{0, 0.375, -2.0, 65504.0}));
}

TEST(KvQuantGrouped, KeysBeyondTheFp16RangeOfScalesAreRefusedNamingTheScheme) {
  HeadTensor<double> x(1, 2, 2);
  x.data = {1, 2, 3, 1e7};  // int8: scale 1e7/127 > 65504; int4: (1e7 - 2)/15 > 65504
  for (const char* name : {"int4-g32", "int8"}) {
    try {
      (void)quantize_dequantize(x, KvRole::key, kv_quant_scheme(name));
      ADD_FAILURE() << name << " did not throw";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("fp16"), std::string::npos) << e.what();
    }
  }
}

// ---- the cache in the carrier, and exact-kvquant ----------------------------------

TEST(KvQuantCache, DequantizedValuesAreRoundedOnceIntoThePolicysInputFormat) {
  const PrecisionPolicy policy = precision_policy("fp16-acc32");
  const HeadTensor<double> x = gaussian({1, 64, 8}, 12, 3.0);
  HeadTensor<float> stored(1, 64, 8);
  for (std::size_t i = 0; i < x.data.size(); ++i)
    stored.data[i] = static_cast<float>(round_to(x.data[i], fp16()));
  HeadTensor<double> stored_double(1, 64, 8);
  for (std::size_t i = 0; i < x.data.size(); ++i) stored_double.data[i] = stored.data[i];
  for (const char* name : {"int4-g32", "e4m3", "int8"}) {
    const KvQuantScheme scheme = kv_quant_scheme(name);
    const DequantizedCache<float> cache = dequantized_cache(stored, KvRole::key, scheme, policy);
    const QuantizedTensor exact = quantize_dequantize(stored_double, KvRole::key, scheme);
    for (std::size_t i = 0; i < x.data.size(); ++i) {
      const double v = cache.values.data[i], want = exact.values.data[i];
      ASSERT_TRUE(is_fp16(v)) << name << " " << v;
      ASSERT_LE(std::fabs(v - want), grid_spacing(want, 11, -14) / 2) << name;
    }
    EXPECT_EQ(cache.cast_scales.empty(), scheme.kind != KvQuantKind::float_cast) << name;
  }
}

QkvArrays gaussian_qkv(std::size_t heads, std::size_t n, std::size_t d, unsigned seed) {
  QkvArrays qkv;
  HeadArrays* arrays[] = {&qkv.q, &qkv.k, &qkv.v};
  for (std::size_t a = 0; a < 3; ++a) {
    const HeadTensor<double> t = gaussian({heads, n, d}, seed + static_cast<unsigned>(a));
    *arrays[a] = HeadArrays{heads, n, d, t.data};
  }
  return qkv;
}

TEST(ExactKvQuant, NoneEqualsExactAttentionBitForBitAtEveryCarrier) {
  const QkvArrays qkv = gaussian_qkv(2, 50, 6, 20);
  for (const char* precision : {"fp32", "fp16-acc32", "e4m3-acc32", "fp64", "mp80"}) {
    SCOPED_TRACE(precision);
    const PrecisionPolicy policy = precision_policy(precision);
    AttentionOptions options;
    const AttentionOutput exact = compute_attention(Method::exact, qkv, policy, options);
    options.kv_quant = kv_quant_scheme("none");
    const AttentionOutput none = compute_attention(Method::exact_kvquant, qkv, policy, options);
    EXPECT_EQ(none.y.data, exact.y.data);
    EXPECT_EQ(none.z, exact.z);
  }
}

// exact-kvquant = exact attention over K quantized as keys and V as values
// (the element-wise tests above check quantize_dequantize itself): the wiring
// of roles, residual and input rounding, at fp64 where that rounding is the
// identity.
TEST(ExactKvQuant, EqualsExactAttentionOverKeysQuantizedAsKeysAndValuesAsValues) {
  const QkvArrays qkv = gaussian_qkv(2, 70, 8, 30);
  const PrecisionPolicy policy = precision_policy("fp64");
  for (const char* name : {"int4-g32", "int2-g8-r10", "e4m3-head", "int8"}) {
    SCOPED_TRACE(name);
    AttentionOptions options;
    options.kv_quant = kv_quant_scheme(name);
    const AttentionOutput quantized =
        compute_attention(Method::exact_kvquant, qkv, policy, options);
    QkvArrays dequantized = qkv;
    HeadTensor<double> k(2, 70, 8), v(2, 70, 8);
    k.data = qkv.k.data;
    v.data = qkv.v.data;
    dequantized.k.data = quantize_dequantize(k, KvRole::key, options.kv_quant).values.data;
    dequantized.v.data = quantize_dequantize(v, KvRole::value, options.kv_quant).values.data;
    EXPECT_NE(dequantized.k.data, qkv.k.data);
    const AttentionOutput reference =
        compute_attention(Method::exact, dequantized, policy, options);
    EXPECT_EQ(quantized.y.data, reference.y.data);
    EXPECT_EQ(quantized.kv_scales_key.size(), std::string(name) == "e4m3-head" ? 2u : 0u);
  }
}

double median_relative_error(const std::vector<double>& y, const std::vector<double>& truth) {
  std::vector<double> rel;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (truth[i] != 0) rel.push_back(std::fabs(y[i] - truth[i]) / std::fabs(truth[i]));
  }
  std::nth_element(rel.begin(), rel.begin() + rel.size() / 2, rel.end());
  return rel[rel.size() / 2];
}

TEST(ExactKvQuant, MedianRelativeErrorGrowsAsTheCacheHoldsFewerBits) {
  const QkvArrays qkv = gaussian_qkv(1, 512, 16, 40);
  const PrecisionPolicy policy = precision_policy("fp64");
  AttentionOptions options;
  const AttentionOutput truth = compute_attention(Method::exact, qkv, policy, options);
  double previous = 0;
  for (const char* name : {"fp16", "int8", "e4m3", "int4-g32", "int2-g32"}) {
    options.kv_quant = kv_quant_scheme(name);
    const double error = median_relative_error(
        compute_attention(Method::exact_kvquant, qkv, policy, options).y.data, truth.y.data);
    EXPECT_GT(error, previous) << name;
    previous = error;
  }
}

TEST(SequenceMemory, ExactIsTheKvCacheAndSataIsItsStateInTheAccumulateFormat) {
  AttentionOptions options;
  options.taylor_terms = 2;  // state (d_value + 1)·C(d_key + 1, 1) = 5·5 = 25 elements at d = 4
  EXPECT_EQ(
      sequence_memory_bytes(Method::sata, 3, 1000, 4, 4, precision_policy("fp16-acc32"), options),
      3u * 25 * 4);
  EXPECT_EQ(sequence_memory_bytes(Method::sata, 1, 1000, 4, 4, precision_policy("fp16"), options),
            25u * 2);
  EXPECT_EQ(
      sequence_memory_bytes(Method::exact, 2, 100, 4, 4, precision_policy("fp16-acc32"), options),
      2u * 100 * 8 * 2);
  EXPECT_EQ(sequence_memory_bytes(Method::taylor_quadratic, 1, 100, 4, 4, precision_policy("fp64"),
                                  options),
            100u * 8 * 8);
  options.kv_quant = kv_quant_scheme("int8");
  EXPECT_EQ(
      sequence_memory_bytes(Method::exact_kvquant, 1, 100, 4, 4, precision_policy("fp32"), options),
      100u * (8 + 2 * 2));
  EXPECT_EQ(sequence_memory_bytes(Method::exact, 1, 100, 4, 4, precision_policy("fp32"), options),
            100u * 8 * 4);
}

}  // namespace
}  // namespace satalab
