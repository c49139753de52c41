// Correct rounding (nearest, ties to even, one step) into every low-precision
// format, checked against an INDEPENDENT model of each format: a decoder from
// bit pattern to value written from the format's encoding (sign, exponent
// field, mantissa field, bias), and an oracle that finds the nearest value by
// binary search in the sorted enumeration of all patterns. Nothing here uses
// the rounding routine to build its expectations.
#include <gtest/gtest.h>
#include <mpfr.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "satalab/numeric/format.hpp"
#include "satalab/numeric/multiprecision.hpp"
#include "satalab/numeric/rounding.hpp"

namespace satalab {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------
// The encodings, written from the standards (IEEE 754 binary16, bfloat16, OCP
// OFP8 E4M3 "fn" and E5M2), not from format.cpp.
struct Encoding {
  std::string name;
  const Format& (*format)();
  int exp_bits;
  int man_bits;
  int bias;
  // true: exponent field all ones is inf (mantissa 0) or NaN (IEEE style).
  // false: only S.1...1.1...1 is NaN, all other patterns are finite (OCP "fn").
  bool ieee_specials;
  int total_bits() const { return 1 + exp_bits + man_bits; }
};

void PrintTo(const Encoding& e, std::ostream* os) { *os << e.name; }

const std::vector<Encoding>& encodings() {
  static const std::vector<Encoding> all = {
      {"fp16", &fp16, 5, 10, 15, true},        {"bf16", &bf16, 8, 7, 127, true},
      {"e4m3", &e4m3, 4, 3, 7, false},         {"e4m3sat", &e4m3_saturating, 4, 3, 7, false},
      {"e5m2", &e5m2, 5, 2, 15, true},
  };
  return all;
}

struct Decoded {
  std::uint32_t bits = 0;
  double value = 0;  // NaN for NaN patterns, ±inf for infinities
  bool nan = false;
  bool inf = false;
};

Decoded decode(const Encoding& e, std::uint32_t bits) {
  const std::uint32_t exp_all_ones = (1u << e.exp_bits) - 1;
  const std::uint32_t man_all_ones = (1u << e.man_bits) - 1;
  const bool negative = ((bits >> (e.exp_bits + e.man_bits)) & 1u) != 0;
  const std::uint32_t exp_field = (bits >> e.man_bits) & exp_all_ones;
  const std::uint32_t man_field = bits & man_all_ones;
  Decoded d;
  d.bits = bits;
  if (exp_field == exp_all_ones && (e.ieee_specials || man_field == man_all_ones)) {
    if (e.ieee_specials && man_field == 0) {
      d.inf = true;
      d.value = negative ? -kInf : kInf;
    } else {
      d.nan = true;
      d.value = kNaN;
    }
    return d;
  }
  double magnitude;
  if (exp_field == 0) {  // subnormal (or zero): 0.m · 2^(1-bias)
    magnitude = std::ldexp(static_cast<double>(man_field), 1 - e.bias - e.man_bits);
  } else {  // normal: 1.m · 2^(exp-bias)
    magnitude = std::ldexp(static_cast<double>((1u << e.man_bits) | man_field),
                           static_cast<int>(exp_field) - e.bias - e.man_bits);
  }
  d.value = negative ? -magnitude : magnitude;
  return d;
}

// The sorted distinct non-negative finite values, with their patterns, plus
// the "would-be" next grid point above the largest finite value.
struct Table {
  std::vector<double> values;       // ascending, values[0] == +0
  std::vector<bool> even;           // last mantissa bit of the pattern is 0
  double beyond = 0;                // max_finite + ulp (not a finite value of the format)
  bool beyond_even = false;         // parity the pattern after max_finite would have
  std::uint32_t max_bits = 0;
};

Table make_table(const Encoding& e) {
  std::vector<Decoded> positive;
  const std::uint32_t count = 1u << e.total_bits();
  for (std::uint32_t bits = 0; bits < count; ++bits) {
    const Decoded d = decode(e, bits);
    if (d.nan || d.inf || std::signbit(d.value)) continue;
    positive.push_back(d);
  }
  std::sort(positive.begin(), positive.end(),
            [](const Decoded& a, const Decoded& b) { return a.value < b.value; });
  Table t;
  for (const Decoded& d : positive) {
    if (!t.values.empty() && t.values.back() == d.value) continue;
    t.values.push_back(d.value);
    t.even.push_back((d.bits & 1u) == 0);
  }
  const std::size_t n = t.values.size();
  t.max_bits = positive.back().bits;
  t.beyond = t.values[n - 1] + (t.values[n - 1] - t.values[n - 2]);
  t.beyond_even = (t.max_bits & 1u) != 0;  // the pattern max_bits + 1 flips the last bit
  return t;
}

// Built once for all encodings, so references stay valid.
const Table& table_for(const Encoding& e) {
  static const std::vector<Table> tables = [] {
    std::vector<Table> all;
    for (const Encoding& enc : encodings()) all.push_back(make_table(enc));
    return all;
  }();
  for (std::size_t i = 0; i < tables.size(); ++i) {
    if (encodings()[i].name == e.name) return tables[i];
  }
  throw std::logic_error("no table for " + e.name);
}

// What a value past the range becomes, by the format's rule (not by the code).
double overflow_result(const Format& f, double x) {
  switch (f.overflow) {
    case OverflowRule::infinity: return std::copysign(kInf, x);
    case OverflowRule::nan: return kNaN;
    case OverflowRule::saturate: return std::copysign(f.max_finite, x);
  }
  return kNaN;
}

// The enumeration oracle: nearest table value, ties to the even pattern, with
// the would-be value past max_finite taking part in the tie decision.
double oracle(const Table& t, const Format& f, double x) {
  if (std::isnan(x)) return kNaN;
  const double ax = std::fabs(x);
  if (std::isinf(x) || ax >= t.beyond) return overflow_result(f, x);
  const auto it = std::upper_bound(t.values.begin(), t.values.end(), ax);
  const std::size_t i = static_cast<std::size_t>(it - t.values.begin()) - 1;  // values[i] <= ax
  const double a = t.values[i];
  if (a == ax) return std::copysign(a, x);
  const bool b_is_beyond = i + 1 == t.values.size();
  const double b = b_is_beyond ? t.beyond : t.values[i + 1];
  const bool b_even = b_is_beyond ? t.beyond_even : t.even[i + 1];
  const double m = (a + b) / 2;  // exact: a, b have few bits
  bool up;
  if (ax < m) {
    up = false;
  } else if (ax > m) {
    up = true;
  } else {
    up = b_even;
  }
  if (!up) return std::copysign(a, x);
  return b_is_beyond ? overflow_result(f, x) : std::copysign(b, x);
}

// Same value including the sign of zero, or both NaN.
bool same(double got, double want) {
  if (std::isnan(want)) return std::isnan(got);
  return got == want && std::signbit(got) == std::signbit(want);
}
bool same_mp(const mp_t& got, double want) {
  mpfr_srcptr g = got.backend().data();
  if (std::isnan(want)) return mpfr_nan_p(g) != 0;
  if (mpfr_nan_p(g)) return false;
  return mpfr_cmp_d(g, want) == 0 && (mpfr_signbit(g) != 0) == std::signbit(want);
}
std::string show(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g (%a)", x, x);
  return buf;
}
std::string show_mp(const mp_t& x) { return x.str(0, std::ios_base::scientific); }

mp_t next_above(mp_t x) {
  mpfr_nextabove(x.backend().data());
  return x;
}
mp_t next_below(mp_t x) {
  mpfr_nextbelow(x.backend().data());
  return x;
}

class RoundingEnumeration : public ::testing::TestWithParam<Encoding> {};

std::string encoding_name(const ::testing::TestParamInfo<Encoding>& info) { return info.param.name; }

// ---------------------------------------------------------------------------
// 1. Every pattern: the format parameters agree with the encoding, every finite
// value is a fixed point for all three carriers, NaN patterns are NaN.

TEST_P(RoundingEnumeration, FormatParametersMatchEncoding) {
  const Encoding& e = GetParam();
  const Format& f = e.format();
  const Table& t = table_for(e);
  EXPECT_EQ(f.name, e.name);
  EXPECT_EQ(f.precision_bits, e.man_bits + 1);
  EXPECT_EQ(f.emin, 1 - e.bias);
  EXPECT_TRUE(f.subnormals);
  EXPECT_EQ(f.min_exponent(), 1 - e.bias - e.man_bits);
  EXPECT_EQ(t.values[1], std::ldexp(1.0, f.min_exponent()));  // smallest subnormal
  const int top_exp_field = static_cast<int>((t.max_bits >> e.man_bits) & ((1u << e.exp_bits) - 1));
  EXPECT_EQ(f.emax, top_exp_field - e.bias);
  EXPECT_EQ(f.max_finite, t.values.back()) << "largest finite by enumeration is " << show(t.values.back());
  EXPECT_DOUBLE_EQ(f.unit_roundoff(), std::ldexp(1.0, -(e.man_bits + 1)));
}

TEST(RoundingEnumerationTable, KnownLargestFiniteValues) {
  // Guards the decoder itself against the published maxima.
  const auto& all = encodings();
  EXPECT_EQ(table_for(all[0]).values.back(), 65504.0);
  EXPECT_EQ(table_for(all[1]).values.back(), std::ldexp(255.0, 120));  // 0x7F7F
  EXPECT_EQ(table_for(all[2]).values.back(), 448.0);
  EXPECT_EQ(table_for(all[3]).values.back(), 448.0);
  EXPECT_EQ(table_for(all[4]).values.back(), 57344.0);
  EXPECT_EQ(table_for(all[2]).beyond, 480.0);
  EXPECT_FALSE(table_for(all[2]).beyond_even);  // S.1111.111 would be odd
  EXPECT_EQ(table_for(all[0]).beyond, 65536.0);
  EXPECT_TRUE(table_for(all[0]).beyond_even);
  // Smallest subnormals: 2^-24, 2^-133, 2^-9, 2^-9, 2^-16.
  EXPECT_EQ(table_for(all[0]).values[1], std::ldexp(1.0, -24));
  EXPECT_EQ(table_for(all[1]).values[1], std::ldexp(1.0, -133));
  EXPECT_EQ(table_for(all[2]).values[1], std::ldexp(1.0, -9));
  EXPECT_EQ(table_for(all[4]).values[1], std::ldexp(1.0, -16));
}

TEST_P(RoundingEnumeration, AllBitPatternsAreFixedPoints) {
  const Encoding& e = GetParam();
  const Format& f = e.format();
  MpPrecisionScope scope(256);
  const std::uint32_t count = 1u << e.total_bits();
  std::uint32_t nan_patterns = 0, inf_patterns = 0, failures = 0;
  for (std::uint32_t bits = 0; bits < count && failures < 10; ++bits) {
    const Decoded d = decode(e, bits);
    if (d.nan) {
      ++nan_patterns;
      continue;
    }
    if (d.inf) {
      ++inf_patterns;
      continue;
    }
    const double x = d.value;
    const double rd = round_to(x, f);
    const float rf = round_to(static_cast<float>(x), f);
    const mp_t rm = round_to(mp_t(x), f);
    const bool ok = same(rd, x) && same(static_cast<double>(rf), x) && same_mp(rm, x);
    if (!ok) ++failures;
    EXPECT_TRUE(ok) << e.name << " pattern 0x" << std::hex << bits << std::dec << " value " << show(x)
                    << ": double -> " << show(rd) << ", float -> " << show(rf) << ", mp -> " << show_mp(rm);
  }
  // NaN patterns: IEEE style 2·(2^M - 1); OCP fn exactly two (S.1111.111).
  const std::uint32_t expected_nans = e.ieee_specials ? 2u * ((1u << e.man_bits) - 1) : 2u;
  EXPECT_EQ(nan_patterns, expected_nans);
  EXPECT_EQ(inf_patterns, e.ieee_specials ? 2u : 0u);
}

TEST_P(RoundingEnumeration, NanAndInfinityInputsFollowTheRule) {
  const Format& f = GetParam().format();
  MpPrecisionScope scope(256);
  EXPECT_TRUE(std::isnan(round_to(kNaN, f)));
  EXPECT_TRUE(std::isnan(round_to(std::numeric_limits<float>::quiet_NaN(), f)));
  EXPECT_TRUE(same_mp(round_to(mp_t(kNaN), f), kNaN));
  for (double sign : {1.0, -1.0}) {
    const double in = sign * kInf;
    const double want = overflow_result(f, in);  // inf, NaN or ±max_finite
    EXPECT_TRUE(same(round_to(in, f), want)) << show(in) << " -> " << show(round_to(in, f));
    EXPECT_TRUE(same(static_cast<double>(round_to(static_cast<float>(in), f)), want));
    EXPECT_TRUE(same_mp(round_to(mp_t(in), f), want)) << show_mp(round_to(mp_t(in), f));
  }
}

// ---------------------------------------------------------------------------
// 2. Midpoints between neighbours go to the even pattern; one step off the
// midpoint goes to the nearer neighbour. Both signs, all three carriers.

TEST_P(RoundingEnumeration, MidpointsTieToEvenAndNeighboursOfMidpointsRoundToNearest) {
  const Encoding& e = GetParam();
  const Format& f = e.format();
  const Table& t = table_for(e);
  MpPrecisionScope scope(256);
  int failures = 0;
  for (std::size_t i = 0; i + 1 < t.values.size() && failures < 10; ++i) {
    const double a = t.values[i], b = t.values[i + 1];
    const double m = (a + b) / 2;
    ASSERT_TRUE(a < m && m < b && m - a == b - m) << "midpoint not exact in double";
    ASSERT_NE(t.even[i], t.even[i + 1]) << "neighbours must differ in their last bit";
    const double tie = t.even[i] ? a : b;
    const float mf = static_cast<float>(m);
    ASSERT_EQ(static_cast<double>(mf), m) << "midpoint not exact in float";
    mp_t mm = mp_t(a) + mp_t(b);
    mm /= 2;
    ASSERT_TRUE(mm == m);
    for (double s : {1.0, -1.0}) {
      struct Case {
        const char* what;
        double want;
        double got_d;
        double got_f;
        mp_t got_m;
      };
      const double sm = s * m;
      const float smf = static_cast<float>(s) * mf;
      const mp_t smm = s > 0 ? mm : mp_t(-mm);
      const Case cases[] = {
          {"midpoint", s * tie, round_to(sm, f), round_to(smf, f), round_to(smm, f)},
          {"above midpoint", s > 0 ? s * b : s * a, round_to(std::nextafter(sm, kInf), f),
           round_to(std::nextafter(smf, std::numeric_limits<float>::infinity()), f),
           round_to(next_above(smm), f)},
          {"below midpoint", s > 0 ? s * a : s * b, round_to(std::nextafter(sm, -kInf), f),
           round_to(std::nextafter(smf, -std::numeric_limits<float>::infinity()), f),
           round_to(next_below(smm), f)},
      };
      for (const Case& c : cases) {
        const bool ok = same(c.got_d, c.want) && same(static_cast<double>(c.got_f), c.want) &&
                        same_mp(c.got_m, c.want);
        if (!ok) ++failures;
        EXPECT_TRUE(ok) << e.name << " " << c.what << " of " << show(s * a) << " and " << show(s * b)
                        << ": want " << show(c.want) << ", double " << show(c.got_d) << ", float "
                        << show(c.got_f) << ", mp " << show_mp(c.got_m);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// 3. Past the largest finite value: the overflow rule of each format.

TEST_P(RoundingEnumeration, OverflowFollowsTheFormatRule) {
  const Encoding& e = GetParam();
  const Format& f = e.format();
  const Table& t = table_for(e);
  MpPrecisionScope scope(256);
  const double max = t.values.back();
  const double mid = (max + t.beyond) / 2;  // the tie between max and the would-be next value
  // What each input must give (for positive inputs; negatives mirror).
  double at_mid, above_mid;
  switch (f.overflow) {
    case OverflowRule::infinity:  // the would-be value 2^(emax+1) is even: the tie overflows
      ASSERT_TRUE(t.beyond_even);
      at_mid = kInf;
      above_mid = kInf;
      break;
    case OverflowRule::nan:  // e4m3: 448 = 1.110b·2^8 is even, 464 goes to 448; past it NaN
      ASSERT_FALSE(t.beyond_even);
      ASSERT_EQ(mid, 464.0);
      at_mid = max;
      above_mid = kNaN;
      break;
    case OverflowRule::saturate:
    default:
      at_mid = max;
      above_mid = max;
      break;
  }
  struct Probe {
    double x;
    double want;
  };
  const std::vector<Probe> probes = {
      {max, max},
      {std::nextafter(max, kInf), max},
      {std::nextafter(mid, -kInf), max},
      {mid, at_mid},
      {std::nextafter(mid, kInf), above_mid},
      {t.beyond, above_mid},
      {2 * max, above_mid},
      {std::ldexp(max, 20), above_mid},
      {kInf, f.overflow == OverflowRule::nan ? kNaN : (f.overflow == OverflowRule::saturate ? max : kInf)},
  };
  for (const Probe& p : probes) {
    for (double s : {1.0, -1.0}) {
      const double x = s * p.x;
      const double want = std::isnan(p.want) ? kNaN : s * p.want;
      EXPECT_TRUE(same(round_to(x, f), want)) << e.name << " double " << show(x) << " -> "
                                              << show(round_to(x, f)) << ", want " << show(want);
      EXPECT_TRUE(same_mp(round_to(mp_t(x), f), want))
          << e.name << " mp " << show(x) << " -> " << show_mp(round_to(mp_t(x), f));
      // float carrier: probes that are floats (all but the far ones fit; inf is a float too)
      if (std::fabs(x) <= FLT_MAX || std::isinf(x)) {
        const float xf = static_cast<float>(x);
        if (static_cast<double>(xf) == x) {
          EXPECT_TRUE(same(static_cast<double>(round_to(xf, f)), want))
              << e.name << " float " << show(x) << " -> " << show(round_to(xf, f));
        }
      }
    }
  }
  // float carrier: the tie and its float neighbours (mid is exact in float for every format here).
  const float mid_f = static_cast<float>(mid);
  ASSERT_EQ(static_cast<double>(mid_f), mid);
  const float finf = std::numeric_limits<float>::infinity();
  for (float s : {1.0f, -1.0f}) {
    const struct {
      float x;
      double want;
    } float_probes[] = {{s * mid_f, at_mid},
                        {std::nextafter(s * mid_f, s * finf), above_mid},
                        {std::nextafter(s * mid_f, 0.0f), max}};
    for (const auto& p : float_probes) {
      const double want = std::isnan(p.want) ? kNaN : s * p.want;
      EXPECT_TRUE(same(static_cast<double>(round_to(p.x, f)), want))
          << e.name << " float " << show(p.x) << " -> " << show(round_to(p.x, f)) << ", want " << show(want);
    }
  }
  // mp: just above the tie by far less than a double can resolve.
  mp_t just_above = mp_t(mid) + mp_t(std::ldexp(mid, -200));
  ASSERT_TRUE(static_cast<double>(just_above) == mid);
  EXPECT_TRUE(same_mp(round_to(just_above, f), above_mid)) << show_mp(round_to(just_above, f));
  mp_t just_below = mp_t(mid) - mp_t(std::ldexp(mid, -200));
  EXPECT_TRUE(same_mp(round_to(just_below, f), max)) << show_mp(round_to(just_below, f));
  // Largest float, and largest double, are far past every format here.
  EXPECT_TRUE(same(static_cast<double>(round_to(FLT_MAX, f)), oracle(t, f, FLT_MAX)));
  EXPECT_TRUE(same(static_cast<double>(round_to(-FLT_MAX, f)), oracle(t, f, -FLT_MAX)));
  EXPECT_TRUE(same(round_to(DBL_MAX, f), above_mid));
}

// ---------------------------------------------------------------------------
// 4. Random doubles over the whole exponent range and beyond, against the
// enumeration oracle.

TEST_P(RoundingEnumeration, RandomDoublesMatchEnumerationOracle) {
  const Encoding& e = GetParam();
  const Format& f = e.format();
  const Table& t = table_for(e);
  MpPrecisionScope scope(256);
  std::mt19937_64 rng(20240611u + static_cast<unsigned>(e.total_bits() * 131 + e.bias));
  const int lo_exp = f.min_exponent() - 4;
  const int hi_exp = static_cast<int>(std::ilogb(t.beyond)) + 4;
  std::uniform_int_distribution<int> exponent(lo_exp, hi_exp);
  std::uniform_int_distribution<std::uint64_t> mantissa(0, (std::uint64_t{1} << 52) - 1);
  std::uniform_int_distribution<std::size_t> index(0, t.values.size() - 1);
  std::uniform_int_distribution<int> kind(0, 9), small(1, 4);
  constexpr int kSamples = 1000000;
  int failures = 0, float_checked = 0, mp_checked = 0;
  for (int n = 0; n < kSamples && failures < 10; ++n) {
    double x;
    const int k = kind(rng);
    if (k < 8) {  // uniform significand in a random binade
      x = std::ldexp(1.0 + std::ldexp(static_cast<double>(mantissa(rng)), -52), exponent(rng));
    } else {  // exact midpoints and grid values, and a few doubles next to them
      const std::size_t i = index(rng);
      const double a = t.values[i];
      const double b = i + 1 < t.values.size() ? t.values[i + 1] : t.beyond;
      x = k == 8 ? (a + b) / 2 : a;
      const int steps = small(rng) - 2;  // -1 .. 2
      for (int s = 0; s < std::abs(steps); ++s) x = std::nextafter(x, steps > 0 ? kInf : 0.0);
    }
    if (rng() & 1) x = -x;
    const double want = oracle(t, f, x);
    const double got = round_to(x, f);
    bool ok = same(got, want);
    std::string detail = "double -> " + show(got);
    if (std::fabs(x) <= FLT_MAX) {
      const float xf = static_cast<float>(x);
      const double want_f = oracle(t, f, static_cast<double>(xf));
      const double got_f = static_cast<double>(round_to(xf, f));
      ++float_checked;
      if (!same(got_f, want_f)) {
        ok = false;
        detail += ", float " + show(static_cast<double>(xf)) + " -> " + show(got_f) + " want " + show(want_f);
      }
    }
    if (n % 8 == 0) {
      const mp_t got_m = round_to(mp_t(x), f);
      ++mp_checked;
      if (!same_mp(got_m, want)) {
        ok = false;
        detail += ", mp -> " + show_mp(got_m);
      }
    }
    if (!ok) ++failures;
    EXPECT_TRUE(ok) << e.name << " x = " << show(x) << " want " << show(want) << ": " << detail;
  }
  EXPECT_GT(float_checked, kSamples / 2);
  EXPECT_GT(mp_checked, kSamples / 10);
}

// The vectorised array routine against the same oracle: random floats in
// every binade around the format's range, grid values, midpoints and their
// float neighbours, float subnormals, zeros, infinities and NaN, in tiles
// that mix fast and slow elements; in place and out of place.
TEST_P(RoundingEnumeration, FloatArraysMatchEnumerationOracle) {
  const Encoding& e = GetParam();
  const Format& f = e.format();
  const Table& t = table_for(e);
  std::mt19937_64 rng(777u + static_cast<unsigned>(e.total_bits() * 31 + e.bias));
  const int lo_exp = std::max(f.min_exponent() - 4, -149);
  const int hi_exp = std::min(static_cast<int>(std::ilogb(t.beyond)) + 4, 127);
  std::uniform_int_distribution<int> exponent(lo_exp, hi_exp), kind(0, 11), small(1, 4);
  std::uniform_int_distribution<std::uint32_t> mantissa(0, (1u << 23) - 1);
  std::uniform_int_distribution<std::size_t> index(0, t.values.size() - 1);
  constexpr std::size_t kSamples = 300000;
  std::vector<float> in(kSamples);
  for (auto& x : in) {
    const int k = kind(rng);
    if (k < 8) {
      x = std::ldexp(1.0f + std::ldexp(static_cast<float>(mantissa(rng)), -23), exponent(rng));
    } else if (k < 10) {
      const std::size_t i = index(rng);
      const double a = t.values[i];
      const double b = i + 1 < t.values.size() ? t.values[i + 1] : t.beyond;
      x = static_cast<float>(k == 8 ? (a + b) / 2 : a);
      const int steps = small(rng) - 2;
      for (int s = 0; s < std::abs(steps); ++s) x = std::nextafter(x, steps > 0 ? INFINITY : 0.0f);
    } else {
      const float specials[] = {0.0f, std::numeric_limits<float>::denorm_min(), 1e-40f, FLT_MIN, INFINITY, NAN,
                                FLT_MAX};
      x = specials[rng() % 7];
    }
    if (rng() & 1) x = -x;
  }
  std::vector<float> out(kSamples), in_place = in;
  round_to(in.data(), out.data(), kSamples, f);
  round_to(in_place.data(), in_place.data(), kSamples, f);
  int failures = 0;
  for (std::size_t i = 0; i < kSamples && failures < 10; ++i) {
    const double want = oracle(t, f, static_cast<double>(in[i]));
    const bool ok = same(static_cast<double>(out[i]), want) && same(static_cast<double>(in_place[i]), want);
    if (!ok) ++failures;
    EXPECT_TRUE(ok) << e.name << " x = " << show(static_cast<double>(in[i])) << " want " << show(want) << " got "
                    << show(static_cast<double>(out[i])) << " / in place " << show(static_cast<double>(in_place[i]));
  }
}

// Doubles rounded into a format stored in a float carrier (the kernels'
// exponentials, computed in double): against the same oracle. The inputs
// include doubles within a few double ulps of the format's midpoints, which a
// float cannot hold (a rounding through float would land on the tie), double
// subnormals, values past float's range, zeros, infinities and NaN.
TEST_P(RoundingEnumeration, DoubleArraysIntoFloatCarrierMatchEnumerationOracle) {
  const Encoding& e = GetParam();
  const Format& f = e.format();
  const Table& t = table_for(e);
  std::mt19937_64 rng(991u + static_cast<unsigned>(e.total_bits() * 17 + e.bias));
  const int lo_exp = f.min_exponent() - 6;
  const int hi_exp = static_cast<int>(std::ilogb(t.beyond)) + 4;
  std::uniform_int_distribution<int> exponent(lo_exp, hi_exp), kind(0, 11), shift(25, 52);
  std::uniform_int_distribution<std::uint64_t> mantissa(0, (std::uint64_t{1} << 52) - 1);
  std::uniform_int_distribution<std::size_t> index(0, t.values.size() - 1);
  constexpr std::size_t kSamples = 300000;
  std::vector<double> in(kSamples);
  for (auto& x : in) {
    const int k = kind(rng);
    if (k < 6) {
      x = std::ldexp(1.0 + std::ldexp(static_cast<double>(mantissa(rng)), -52), exponent(rng));
    } else if (k < 10) {
      const std::size_t i = index(rng);
      const double a = t.values[i];
      const double b = i + 1 < t.values.size() ? t.values[i + 1] : t.beyond;
      const double m = (a + b) / 2;
      const double offset = std::ldexp(m, -shift(rng));
      x = k == 6 ? m : k == 7 ? m + offset : k == 8 ? m - offset : std::nextafter(m, (rng() & 1) ? kInf : 0.0);
    } else {
      const double specials[] = {0.0, 4.9e-324, 1e-310, 1e-46, 1.5e-45, DBL_MIN, 1e39, DBL_MAX, kInf, kNaN};
      x = specials[rng() % 10];
    }
    if (rng() & 1) x = -x;
  }
  std::vector<float> out(kSamples);
  round_to(in.data(), out.data(), kSamples, f);
  int failures = 0;
  for (std::size_t i = 0; i < kSamples && failures < 10; ++i) {
    const double want = oracle(t, f, in[i]);
    const bool ok = same(static_cast<double>(out[i]), want);
    if (!ok) ++failures;
    EXPECT_TRUE(ok) << e.name << " x = " << show(in[i]) << " want " << show(want) << " got "
                    << show(static_cast<double>(out[i]));
  }
}

// Short arrays (every length up to two tiles and a bit, so that every
// padding of the last vector and of the last tile occurs) at unaligned
// offsets, with the elements around the array left untouched.
TEST_P(RoundingEnumeration, ShortArraysOfEveryLengthMatchEnumerationOracle) {
  const Encoding& e = GetParam();
  const Format& f = e.format();
  const Table& t = table_for(e);
  std::mt19937_64 rng(4242u + static_cast<unsigned>(e.total_bits()));
  std::uniform_int_distribution<std::size_t> index(0, t.values.size() - 1);
  std::uniform_real_distribution<double> fraction(0.0, 1.0);
  for (std::size_t n = 0; n <= 530; n += n < 70 ? 1 : 23) {
    std::vector<float> buffer(n + 5, 7.0f), in(n);
    for (auto& x : in) {
      const std::size_t i = index(rng);
      const double b = i + 1 < t.values.size() ? t.values[i + 1] : t.beyond;
      x = static_cast<float>(t.values[i] + fraction(rng) * (b - t.values[i]));
      if (rng() & 1) x = -x;
    }
    round_to(in.data(), buffer.data() + 3, n, f);
    for (std::size_t i = 0; i < n; ++i) {
      const double want = oracle(t, f, static_cast<double>(in[i]));
      ASSERT_TRUE(same(static_cast<double>(buffer[3 + i]), want))
          << e.name << " n = " << n << " i = " << i << " x = " << show(static_cast<double>(in[i]));
    }
    for (std::size_t i : {std::size_t{0}, std::size_t{1}, std::size_t{2}, n + 3, n + 4}) {
      ASSERT_EQ(buffer[i], 7.0f) << e.name << " n = " << n << ": element " << i << " outside the array was written";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, RoundingEnumeration, ::testing::ValuesIn(encodings()), encoding_name);

// ---------------------------------------------------------------------------
// 5. fp32 from double: the hardware conversion is one correctly rounded step.

TEST(RoundingFp32, DoubleToFp32MatchesHardwareConversion) {
  std::mt19937_64 rng(7u);
  std::uniform_int_distribution<int> exponent(-156, 128);
  std::uniform_int_distribution<std::uint64_t> mantissa(0, (std::uint64_t{1} << 52) - 1);
  std::uniform_int_distribution<int> kind(0, 9);
  std::uniform_int_distribution<std::uint32_t> float_bits(0, 0x7f7fffffu);
  // Past FLT_MAX the cast is undefined; IEEE says: below FLT_MAX + ulp/2 -> FLT_MAX, else inf.
  const double overflow_tie = std::ldexp(1.0, 128) - std::ldexp(1.0, 103);
  int failures = 0, subnormal_range = 0;
  for (int n = 0; n < 1000000 && failures < 10; ++n) {
    double x;
    if (kind(rng) < 8) {
      x = std::ldexp(1.0 + std::ldexp(static_cast<double>(mantissa(rng)), -52), exponent(rng));
    } else {  // midpoints between neighbouring floats (incl. subnormals), exactly
      float lo;
      const std::uint32_t bits = float_bits(rng);
      std::memcpy(&lo, &bits, sizeof lo);
      const float hi = std::nextafter(lo, std::numeric_limits<float>::infinity());
      const double hi_d = std::isinf(hi) ? std::ldexp(1.0, 128) : static_cast<double>(hi);
      x = (static_cast<double>(lo) + hi_d) / 2;
    }
    if (rng() & 1) x = -x;
    double want;
    if (std::fabs(x) > FLT_MAX) {
      want = std::fabs(x) >= overflow_tie ? std::copysign(kInf, x) : std::copysign(FLT_MAX, x);
    } else {
      want = static_cast<double>(static_cast<float>(x));
    }
    if (std::fabs(x) < FLT_MIN) ++subnormal_range;
    const double got = round_to(x, fp32());
    if (!same(got, want)) ++failures;
    EXPECT_TRUE(same(got, want)) << "x = " << show(x) << " -> " << show(got) << ", want " << show(want);
  }
  EXPECT_GT(subnormal_range, 10000);
  EXPECT_TRUE(same(round_to(overflow_tie, fp32()), kInf));
  EXPECT_TRUE(same(round_to(std::nextafter(overflow_tie, 0.0), fp32()), FLT_MAX));
  EXPECT_TRUE(same(round_to(-overflow_tie, fp32()), -kInf));
}

TEST(RoundingFp32, DoubleArraysIntoFp32AreTheHardwareConversion) {
  std::mt19937_64 rng(5u);
  std::uniform_int_distribution<std::uint64_t> bits;
  std::vector<double> in(100000);
  for (auto& x : in) {
    const std::uint64_t b = bits(rng);
    std::memcpy(&x, &b, sizeof x);
  }
  std::vector<float> out(in.size());
  round_to(in.data(), out.data(), in.size(), fp32());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const float want = static_cast<float>(in[i]);
    ASSERT_TRUE(same(static_cast<double>(out[i]), static_cast<double>(want))) << show(in[i]);
  }
}

TEST(RoundingFp32, FloatCarrierIsIdentityForFp32AndFp64) {
  for (float x : {0.0f, -0.0f, 1.0f, FLT_MIN, FLT_TRUE_MIN, FLT_MAX, -3.14159f}) {
    EXPECT_EQ(round_to(x, fp32()), x);
    EXPECT_EQ(round_to(x, fp64()), x);
  }
  for (double x : {0.1, DBL_TRUE_MIN, DBL_MAX, -1e300}) EXPECT_EQ(round_to(x, fp64()), x);
}

// ---------------------------------------------------------------------------
// 6. One rounding, not two.

TEST(RoundingNoDoubleRounding, MpJustAboveFp16TieRoundsUpWhereDoubleWouldTieToEven) {
  MpPrecisionScope scope(256);
  // 1 and 1 + 2^-10 are neighbours in fp16; 1 has the even last bit.
  const double a = 1.0, b = 1.0 + std::ldexp(1.0, -10), m = 1.0 + std::ldexp(1.0, -11);
  const mp_t x = mp_t(m) + mp_t(std::ldexp(1.0, -200));
  ASSERT_TRUE(x > mp_t(m));                         // the perturbation survived in 256 bits
  ASSERT_EQ(static_cast<double>(x), m);             // in double it is the tie...
  ASSERT_EQ(round_to(static_cast<double>(x), fp16()), a);  // ...which goes to the even one
  EXPECT_TRUE(same_mp(round_to(x, fp16()), b)) << show_mp(round_to(x, fp16()));
  const mp_t y = mp_t(m) - mp_t(std::ldexp(1.0, -200));
  EXPECT_TRUE(same_mp(round_to(y, fp16()), a)) << show_mp(round_to(y, fp16()));
}

TEST_P(RoundingEnumeration, MpPerturbedMidpointsRoundAwayFromTheTie) {
  // Every midpoint m, perturbed by ±2^-200 in 256 bits: double would see the
  // tie and go to the even neighbour; the direct rounding must not.
  const Encoding& e = GetParam();
  const Format& f = e.format();
  const Table& t = table_for(e);
  MpPrecisionScope scope(256);
  const mp_t eps = mp_t(std::ldexp(1.0, -200));
  int failures = 0;
  for (std::size_t i = 0; i + 1 < t.values.size() && failures < 10; ++i) {
    const double a = t.values[i], b = t.values[i + 1], m = (a + b) / 2;
    const mp_t up = mp_t(m) + eps * mp_t(m), down = mp_t(m) - eps * mp_t(m);
    ASSERT_EQ(static_cast<double>(up), m);
    ASSERT_EQ(static_cast<double>(down), m);
    const bool ok = same_mp(round_to(up, f), b) && same_mp(round_to(down, f), a) &&
                    same_mp(round_to(mp_t(-up), f), -b) && same_mp(round_to(mp_t(-down), f), -a);
    if (!ok) ++failures;
    EXPECT_TRUE(ok) << e.name << " around " << show(m) << ": up -> " << show_mp(round_to(up, f))
                    << ", down -> " << show_mp(round_to(down, f));
  }
}

TEST(RoundingNoDoubleRounding, DoubleViaFp32ToFp16DiffersAndDirectIsNearest) {
  const Encoding& e = encodings()[0];
  ASSERT_EQ(e.name, "fp16");
  const Table& t = table_for(e);
  // Search doubles near fp16 midpoints for inputs where double -> fp32 -> fp16
  // and double -> fp16 disagree.
  std::mt19937_64 rng(11u);
  std::uniform_int_distribution<int> shift(25, 52);
  int found = 0;
  double example = 0;
  for (std::size_t i = 0; i + 1 < t.values.size(); ++i) {
    const double m = (t.values[i] + t.values[i + 1]) / 2;
    for (double x : {std::nextafter(m, kInf), std::nextafter(m, -kInf), m + std::ldexp(m, -shift(rng)),
                     m - std::ldexp(m, -shift(rng))}) {
      const double twice = round_to(round_to(x, fp32()), fp16());
      const double once = round_to(x, fp16());
      if (twice == once) continue;
      ++found;
      if (found == 1) example = x;
      const double nearest = oracle(t, fp16(), x);
      EXPECT_TRUE(same(once, nearest)) << "x = " << show(x) << ": direct " << show(once) << ", nearest "
                                       << show(nearest);
      EXPECT_FALSE(same(twice, nearest));
    }
  }
  ASSERT_GT(found, 0) << "no double-rounding case found";
  // The example, spelled out: via fp32 it lands on the fp16 tie.
  const double via32 = round_to(example, fp32());
  const auto it = std::lower_bound(t.values.begin(), t.values.end(), std::fabs(via32));
  ASSERT_TRUE(it != t.values.end() && it != t.values.begin());
  EXPECT_EQ(std::fabs(via32), (*(it - 1) + *it) / 2) << show(example) << " via fp32 " << show(via32);
}

// ---------------------------------------------------------------------------
// Formats outside the enumerated set.

TEST(RoundingCustomFormat, NoSubnormalsFlushesBelowEminTiesToZeroForAllCarriers) {
  Format f = fp16();
  f.name = "fp16-nosub";
  f.subnormals = false;
  MpPrecisionScope scope(256);
  const double tiny = std::ldexp(1.0, -14);
  struct Probe {
    double x, want;
  };
  const Probe probes[] = {
      {std::ldexp(1.0, -30), 0.0},
      {std::ldexp(1.0, -15), 0.0},  // tie between 0 and 2^-14: 0 is even
      {std::nextafter(std::ldexp(1.0, -15), 1.0), tiny},
      {std::ldexp(1.5, -15), tiny},
      {std::nextafter(tiny, 0.0), tiny},
      {tiny, tiny},
      {std::ldexp(1.0, -15) + std::ldexp(1.0, -38), tiny},  // just above the tie, exact in float too
      {tiny + std::ldexp(1.0, -25), tiny},  // spacing above 2^-14 is 2^-24: a tie, 2^-14 is even
      {tiny + std::ldexp(3.0, -25), tiny + std::ldexp(1.0, -23)},  // tie between odd and even
      {tiny + std::ldexp(1.0, -24), tiny + std::ldexp(1.0, -24)},  // representable
  };
  for (const Probe& p : probes) {
    for (double s : {1.0, -1.0}) {
      const double x = s * p.x, want = s * p.want;
      EXPECT_TRUE(same(round_to(x, f), want)) << show(x) << " double -> " << show(round_to(x, f));
      if (static_cast<double>(static_cast<float>(x)) == x) {
        EXPECT_TRUE(same(static_cast<double>(round_to(static_cast<float>(x), f)), want))
            << show(x) << " float -> " << show(round_to(static_cast<float>(x), f));
      }
      EXPECT_TRUE(same_mp(round_to(mp_t(x), f), want)) << show(x) << " mp -> " << show_mp(round_to(mp_t(x), f));
    }
  }
}

TEST(RoundingMultiprecision, MpFormatMatchesMpfrRoundingOfRandomValues) {
  // An mp<bits> target rounds like MPFR's own correctly rounded precision change.
  MpPrecisionScope scope(512);
  std::mt19937_64 rng(3u);
  std::uniform_int_distribution<std::uint64_t> word;
  for (unsigned bits : {24u, 53u, 100u, 256u}) {
    const Format f = mp_format(bits);
    for (int n = 0; n < 2000; ++n) {
      mp_t x = 0;
      for (int w = 0; w < 8; ++w) x = x * mp_t(std::ldexp(1.0, 64)) + mp_t(static_cast<double>(word(rng) >> 11));
      mpfr_mul_2si(x.backend().data(), x.backend().data(), static_cast<long>(word(rng) % 4000) - 2000 - 424,
                   MPFR_RNDN);
      if (n % 2) x = -x;
      if (n % 97 == 0) {  // an exact tie at `bits`: a value with bits+1 significant bits ending in 1
        mpfr_prec_round(x.backend().data(), bits + 1, MPFR_RNDN);
        mpfr_nextabove(x.backend().data());
      }
      mp_t want = x;
      mpfr_prec_round(want.backend().data(), bits, MPFR_RNDN);
      const mp_t got = round_to(x, f);
      EXPECT_TRUE(got == want) << "mp" << bits << ": " << show_mp(x) << " -> " << show_mp(got);
    }
    // double carrier: mp<bits> with bits < 53 rounds doubles, otherwise identity
    for (int n = 0; n < 2000; ++n) {
      const double x = std::ldexp(static_cast<double>(word(rng) >> 11), static_cast<int>(word(rng) % 1900) - 1000);
      mpfr_t w;
      mpfr_init2(w, bits);
      mpfr_set_d(w, x, MPFR_RNDN);
      const double want = mpfr_get_d(w, MPFR_RNDN);
      mpfr_clear(w);
      EXPECT_EQ(round_to(x, f), want) << "mp" << bits << " " << show(x);
    }
  }
}

}  // namespace
}  // namespace satalab
