#include "satalab/numeric/format.hpp"

#include <fmt/format.h>

#include <bit>
#include <charconv>
#include <cmath>

#include "satalab/error.hpp"

namespace satalab {
namespace {

Format make(std::string name, int p, int emin, int emax, OverflowRule overflow, double max_finite) {
  Format f;
  f.name = std::move(name);
  f.precision_bits = p;
  f.emin = emin;
  f.emax = emax;
  f.subnormals = true;
  f.overflow = overflow;
  f.max_finite = max_finite;
  return f;
}

// Largest finite value of an IEEE-style format: (2 - 2^(1-p)) * 2^emax.
double ieee_max(int p, int emax) { return std::ldexp(2.0 - std::ldexp(1.0, 1 - p), emax); }

}  // namespace

double Format::unit_roundoff() const { return std::ldexp(1.0, -precision_bits); }

const Format& fp64() {
  static const Format f = make("fp64", 53, -1022, 1023, OverflowRule::infinity, ieee_max(53, 1023));
  return f;
}
const Format& fp32() {
  static const Format f = make("fp32", 24, -126, 127, OverflowRule::infinity, ieee_max(24, 127));
  return f;
}
const Format& bf16() {
  static const Format f = make("bf16", 8, -126, 127, OverflowRule::infinity, ieee_max(8, 127));
  return f;
}
const Format& fp16() {
  static const Format f = make("fp16", 11, -14, 15, OverflowRule::infinity, 65504.0);
  return f;
}
// OCP 8-bit floating point (OFP8) E4M3: bias 7, S.1111.111 is NaN, so the
// largest finite value is S.1111.110 = 1.75 * 2^8 = 448; no infinity.
const Format& e4m3() {
  static const Format f = make("e4m3", 4, -6, 8, OverflowRule::nan, 448.0);
  return f;
}
const Format& e4m3_saturating() {
  static const Format f = make("e4m3sat", 4, -6, 8, OverflowRule::saturate, 448.0);
  return f;
}
// OFP8 E5M2: IEEE-like, bias 15, max 1.75 * 2^15 = 57344, has infinities.
const Format& e5m2() {
  static const Format f = make("e5m2", 3, -14, 15, OverflowRule::infinity, 57344.0);
  return f;
}

Format mp_format(unsigned bits) {
  if (bits < 24 || bits > 100000) {
    throw InvalidArgument(fmt::format("multiprecision width mp{} is out of range (allowed: mp24 .. mp100000)", bits));
  }
  Format f;
  f.name = fmt::format("mp{}", bits);
  f.precision_bits = static_cast<int>(bits);
  // MPFR's default exponent range is about ±2^62; these are informative only.
  f.emin = -(1 << 30);
  f.emax = (1 << 30);
  f.subnormals = false;
  f.overflow = OverflowRule::infinity;
  f.max_finite = HUGE_VAL;
  f.multiprecision = true;
  return f;
}

int storage_bits(const Format& format) {
  const long long codes = static_cast<long long>(format.emax) - format.emin + 2 +
                          (format.overflow == OverflowRule::infinity ? 1 : 0);
  const int exponent_bits = std::bit_width(static_cast<unsigned long long>(codes - 1));
  return 1 + exponent_bits + (format.precision_bits - 1);
}

std::vector<std::string> format_names() {
  return {"fp64", "fp32", "bf16", "fp16", "e4m3", "e4m3sat", "e5m2", "mp<bits> (e.g. mp256)"};
}

Format format_by_name(std::string_view name) {
  for (const Format* f : {&fp64(), &fp32(), &bf16(), &fp16(), &e4m3(), &e4m3_saturating(), &e5m2()}) {
    if (f->name == name) return *f;
  }
  if (name.size() > 2 && name.substr(0, 2) == "mp") {
    unsigned bits = 0;
    auto digits = name.substr(2);
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (ec == std::errc() && ptr == digits.data() + digits.size()) return mp_format(bits);
  }
  throw InvalidArgument(fmt::format("unknown format '{}' (allowed: {})", name, fmt::join(format_names(), ", ")));
}

}  // namespace satalab
