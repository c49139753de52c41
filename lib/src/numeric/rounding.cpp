#include "satalab/numeric/rounding.hpp"

#include "satalab/numeric/multiprecision.hpp"

#include <mpfr.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <limits>

namespace satalab {
namespace {

// The scaled-integer method: with x = m·2^lead, 1 <= |m| < 2, the grid of the
// format near x has spacing 2^qexp, qexp = max(lead, emin) - (p - 1) (below
// 2^emin the spacing stays that of the subnormals). x·2^-qexp is computed
// exactly (a power-of-two scaling), rounded to an integer to nearest with ties
// to even by the current (default) rounding mode, and scaled back exactly.
// Overflow is decided on the rounded value, so a value that rounds up past the
// largest finite number overflows, exactly as IEEE 754 specifies.
template <class F>
F overflow_value(F x, const Format& format) {
  switch (format.overflow) {
    case OverflowRule::infinity:
      return std::copysign(std::numeric_limits<F>::infinity(), x);
    case OverflowRule::nan:
      return std::numeric_limits<F>::quiet_NaN();
    case OverflowRule::saturate:
      return std::copysign(static_cast<F>(format.max_finite), x);
  }
  return x;
}

template <class F>
F round_native(F x, const Format& format) {
  if (std::isnan(x)) return x;
  if (std::isinf(x)) return format.overflow == OverflowRule::infinity ? x : overflow_value(x, format);
  if (x == 0) return x;
  int exponent = 0;
  std::frexp(x, &exponent);  // x = f·2^exponent, 0.5 <= |f| < 1
  const int lead = exponent - 1;
  const int p = format.precision_bits;
  int qexp = (format.multiprecision ? lead : std::max(lead, format.emin)) - (p - 1);
  if (!format.subnormals && !format.multiprecision && lead < format.emin) {
    // No subnormals: below 2^emin only 0 and ±2^emin exist (round to nearest, tie to 0 as even).
    const F tiny = std::ldexp(F(1), format.emin);
    return std::fabs(x) > tiny / 2 ? std::copysign(tiny, x) : std::copysign(F(0), x);
  }
  const F scaled = std::ldexp(x, -qexp);
  const F rounded = std::ldexp(std::nearbyint(scaled), qexp);
  if (!format.multiprecision && std::fabs(rounded) > static_cast<F>(format.max_finite)) {
    return overflow_value(x, format);
  }
  return rounded;
}

// True when every value of the carrier F is representable in the format.
template <class F>
bool contains_carrier(const Format& format) {
  using L = std::numeric_limits<F>;
  if (format.multiprecision) return format.precision_bits >= L::digits;
  return format.precision_bits >= L::digits && format.emin <= L::min_exponent - 1 &&
         format.emax >= L::max_exponent - 1 && format.subnormals;
}

}  // namespace

double round_to(double x, const Format& format) {
  if (contains_carrier<double>(format)) return x;
  return round_native(x, format);
}

#if defined(__F16C__)
// IEEE binary16 with its usual rules (the fp16 format).
static bool is_ieee_binary16(const Format& format) {
  return !format.multiprecision && format.precision_bits == 11 && format.emin == -14 && format.emax == 15 &&
         format.subnormals && format.overflow == OverflowRule::infinity;
}
#endif

// Fast path for the common case, a normal float rounded onto a grid no finer
// than its own: round to nearest even on the low `drop` bits of the encoding.
// The IEEE encoding is monotone in the magnitude, so a carry out of the
// significand correctly increments the exponent. Everything else (zeros,
// subnormal floats, NaN/Inf, results below the format's subnormal grid)
// takes the generic path above.
float round_to(float x, const Format& format) {
  if (contains_carrier<float>(format)) return x;
#if defined(__F16C__)
  // One IEEE rounding to nearest even into binary16 (see the array routine).
  if (is_ieee_binary16(format)) return _cvtsh_ss(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT));
#endif
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const int biased = static_cast<int>((bits >> 23) & 0xffu);
  if (biased == 0 || biased == 0xff || format.multiprecision || !format.subnormals) return round_native(x, format);
  const int lead = biased - 127;
  const int qexp = std::max(lead, format.emin) - (format.precision_bits - 1);
  const int drop = qexp - (lead - 23);  // low bits of the significand below the target grid
  if (drop <= 0) return x;
  // At drop = 23 the last kept bit would be the implicit one (always odd), not an encoding bit.
  if (drop > 22) return round_native(x, format);
  const std::uint32_t sign = bits & 0x80000000u;
  std::uint32_t magnitude = bits & 0x7fffffffu;
  const std::uint32_t mask = (1u << drop) - 1u, half = 1u << (drop - 1);
  const std::uint32_t remainder = magnitude & mask;
  magnitude &= ~mask;
  if (remainder > half || (remainder == half && ((magnitude >> drop) & 1u))) magnitude += 1u << drop;
  const float rounded = std::bit_cast<float>(sign | magnitude);
  if (std::fabs(rounded) > static_cast<float>(format.max_finite)) return overflow_value(x, format);
  return rounded;
}

// The fast path of round_to(float) without branches, a tile at a time so the
// compiler can vectorise it; elements it does not cover (zeros, subnormal
// floats, NaN/Inf, results below the format's subnormal grid) are redone by
// the scalar routine from a copy of the tile's inputs.
void round_to(const float* in, float* out, std::size_t n, const Format& format) {
  if (contains_carrier<float>(format)) {
    if (in != out) std::copy(in, in + n, out);
    return;
  }
#if defined(__F16C__)
  // The hardware conversion float -> binary16 is one IEEE rounding (to
  // nearest even, immediate mode 0, whatever MXCSR says), with subnormals and
  // overflow to infinity: exactly round_to, eight elements per instruction.
  // (NaNs come back quiet, with the payload's top bits.)
  if (is_ieee_binary16(format)) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m128i half = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
      _mm256_storeu_ps(out + i, _mm256_cvtph_ps(half));
    }
    if (i < n) {  // the last 1..7 elements through one padded vector
      float tail[8] = {};
      std::copy(in + i, in + n, tail);
      const __m128i half = _mm256_cvtps_ph(_mm256_loadu_ps(tail), _MM_FROUND_TO_NEAREST_INT);
      _mm256_storeu_ps(tail, _mm256_cvtph_ps(half));
      std::copy(tail, tail + (n - i), out + i);
    }
    return;
  }
#endif
  if (format.multiprecision || !format.subnormals || format.precision_bits < 3 || format.emin < -126) {
    for (std::size_t i = 0; i < n; ++i) out[i] = round_to(in[i], format);
    return;
  }
  const int p = format.precision_bits, emin = format.emin;
  const float max_finite = static_cast<float>(format.max_finite);
  const float overflow_magnitude = std::fabs(overflow_value(1.0f, format));  // inf, NaN or max finite
  // Encodings of the two smallest subnormals of the format (2^sub, 2^(sub+1)).
  // They are needed only when drop > 22, which normal floats reach only for
  // formats whose subnormals are normal floats (fp16, e4m3, e5m2; not bf16).
  const std::uint32_t smallest = std::bit_cast<std::uint32_t>(std::ldexp(1.0f, format.min_exponent()));
  const std::uint32_t second_smallest = std::bit_cast<std::uint32_t>(std::ldexp(1.0f, format.min_exponent() + 1));
  // A tile is padded with zeros to whole vectors of kLanes, so that short
  // arrays (the few features of one degree of a small head) run in vector
  // code too instead of a scalar remainder loop.
  constexpr std::size_t kTile = 256, kLanes = 16;
  float original[kTile], result[kTile];
  std::uint8_t slow[kTile];
  for (std::size_t start = 0; start < n; start += kTile) {
    const std::size_t count = std::min(kTile, n - start);
    const std::size_t padded = (count + kLanes - 1) / kLanes * kLanes;
    std::copy(in + start, in + start + count, original);
    std::fill(original + count, original + padded, 0.0f);
    int any_slow = 0;
    for (std::size_t i = 0; i < padded; ++i) {
      const std::uint32_t bits = std::bit_cast<std::uint32_t>(original[i]);
      const std::uint32_t sign = bits & 0x80000000u, magnitude = bits & 0x7fffffffu;
      const int biased = static_cast<int>(magnitude >> 23);
      const int lead = biased - 127;
      const int drop = std::max(lead, emin) - (p - 1) - (lead - 23);
      // Zeros take the fast path (the grid arithmetic below keeps them 0).
      const int is_slow = ((biased == 0) & ((magnitude & 0x7fffffu) != 0)) | (biased == 0xff);
      slow[i] = static_cast<std::uint8_t>(is_slow);
      any_slow |= is_slow;
      const int shift = std::clamp(drop, 1, 22);
      const std::uint32_t bias = (1u << (shift - 1)) - 1u + ((magnitude >> shift) & 1u);
      const std::uint32_t rounded_magnitude = (magnitude + bias) & ~((1u << shift) - 1u);
      // drop > 22 happens only below 2^emin, on the subnormal grid of spacing
      // 2^sub: x < 2^(sub-1) (drop >= 25) rounds to 0; x in [2^(sub-1), 2^sub)
      // (drop 24) to 2^sub unless it is the tie 2^(sub-1) itself (to even: 0);
      // x in [2^sub, 2^(sub+1)) (drop 23) to 2^sub below the midpoint 1.5·2^sub,
      // else to 2^(sub+1) (the tie goes to the even multiple, 2).
      const std::uint32_t fraction = magnitude & 0x7fffffu;
      // Written as masks and products, without branches, so it vectorises.
      const std::uint32_t nonzero = static_cast<std::uint32_t>((drop == 23) | ((drop == 24) & (fraction != 0)));
      const std::uint32_t second = static_cast<std::uint32_t>((drop == 23) & (fraction >= 0x400000u));
      const std::uint32_t tiny = nonzero * (smallest + second * (second_smallest - smallest));
      const std::uint32_t use_tiny = 0u - static_cast<std::uint32_t>(drop > 22);
      const std::uint32_t use_rounded = 0u - static_cast<std::uint32_t>((drop > 0) & (drop <= 22));
      const std::uint32_t result_magnitude =
          (tiny & use_tiny) | (rounded_magnitude & use_rounded) | (magnitude & ~(use_tiny | use_rounded));
      const float rounded = std::bit_cast<float>(sign | result_magnitude);
      result[i] = std::fabs(rounded) > max_finite ? std::copysign(overflow_magnitude, original[i]) : rounded;
    }
    // An indexed loop, not std::copy: GCC 12 under -fsanitize=address cannot
    // bound count here and reports a false -Wstringop-overflow on the memmove.
    for (std::size_t i = 0; i < count; ++i) out[start + i] = result[i];
    if (any_slow) {
      for (std::size_t i = 0; i < count; ++i) {
        if (slow[i]) out[start + i] = round_to(original[i], format);
      }
    }
  }
}

void round_to(const double* in, double* out, std::size_t n, const Format& format) {
  if (contains_carrier<double>(format)) {
    if (in != out) std::copy(in, in + n, out);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) out[i] = round_to(in[i], format);
}

// Doubles into a format that float holds, stored as floats. Each double is
// first rounded to float *to odd* (truncate, then set the last bit if anything
// was cut off), then the float routine rounds once more. Rounding to odd onto
// a grid at least two bits finer than the target's keeps the information that
// decides the final rounding (whether the value was above, at or below a
// midpoint), so the result is the single correct rounding of the double; float
// has 24 bits against at most 11 in the formats float carries (bf16 8) and
// subnormal spacing 2^-149 against 2^-133 at the finest (bf16).
void round_to(const double* in, float* out, std::size_t n, const Format& format) {
  if (contains_carrier<float>(format)) {  // fp32 itself: the conversion is the rounding
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(in[i]);
    return;
  }
  constexpr std::size_t kTile = 256;
  float odd[kTile];
  for (std::size_t start = 0; start < n; start += kTile) {
    const std::size_t count = std::min(kTile, n - start);
    for (std::size_t i = 0; i < count; ++i) {
      const double x = in[start + i];
      const float nearest = static_cast<float>(x);
      const double back = static_cast<double>(nearest);
      const std::uint32_t bits = std::bit_cast<std::uint32_t>(nearest);
      // Rounded away from zero: step back one unit toward zero (the truncation);
      // inexact: make the last bit 1. Exact values, infinities and NaN pass
      // unchanged (a NaN compares unequal but is kept by the isnan test).
      const std::uint32_t away = static_cast<std::uint32_t>(std::fabs(back) > std::fabs(x));
      const std::uint32_t inexact = static_cast<std::uint32_t>((back != x) & !std::isnan(x));
      odd[i] = std::bit_cast<float>(((bits - (away & inexact)) | inexact));
    }
    round_to(odd, out + start, count, format);
  }
}

mp_t round_to(const mp_t& x, const Format& format) {
  mpfr_srcptr src = x.backend().data();
  if (mpfr_nan_p(src)) return x;
  if (mpfr_inf_p(src)) {
    if (format.multiprecision || format.overflow == OverflowRule::infinity) return x;
    if (format.overflow == OverflowRule::nan) return mp_t(std::numeric_limits<double>::quiet_NaN());
    return mpfr_signbit(src) ? mp_t(-format.max_finite) : mp_t(format.max_finite);
  }
  if (mpfr_zero_p(src)) return x;
  const long lead = static_cast<long>(mpfr_get_exp(src)) - 1;  // x = f·2^exp, 0.5 <= |f| < 1
  const long p = format.precision_bits;
  if (format.multiprecision && static_cast<long>(mpfr_get_prec(src)) <= p) return x;
  if (!format.subnormals && !format.multiprecision && lead < format.emin) {
    // No subnormals: below 2^emin only 0 and ±2^emin exist (round to nearest, tie to 0 as even),
    // exactly as in round_native.
    mp_t half_tiny, result;
    mpfr_set_si_2exp(half_tiny.backend().data(), 1, format.emin - 1, MPFR_RNDN);
    mpfr_ptr r = result.backend().data();
    const int sign = mpfr_signbit(src) ? -1 : 1;
    if (mpfr_cmpabs(src, half_tiny.backend().data()) > 0) {
      mpfr_set_si_2exp(r, sign, format.emin, MPFR_RNDN);
    } else {
      mpfr_set_zero(r, sign);
    }
    return result;
  }
  const long qexp = (format.multiprecision ? lead : std::max<long>(lead, format.emin)) - (p - 1);
  mp_t result;
  mpfr_ptr r = result.backend().data();
  mpfr_set_prec(r, std::max<mpfr_prec_t>(mpfr_get_prec(src), 2));
  mpfr_mul_2si(r, src, -qexp, MPFR_RNDN);  // exact: same precision, power-of-two scaling
  mpfr_rint(r, r, MPFR_RNDN);              // nearest integer, halfway cases to even
  mpfr_mul_2si(r, r, qexp, MPFR_RNDN);
  if (!format.multiprecision && mpfr_cmpabs(r, mp_t(format.max_finite).backend().data()) > 0) {
    if (format.overflow == OverflowRule::nan) return mp_t(std::numeric_limits<double>::quiet_NaN());
    const double sign = mpfr_signbit(src) ? -1.0 : 1.0;
    return format.overflow == OverflowRule::infinity ? mp_t(sign * HUGE_VAL) : mp_t(sign * format.max_finite);
  }
  return result;
}

}  // namespace satalab
