#pragma once
// Floating-point formats as data (after CPFloat, Fasi & Mikaitis): a format is
// its precision, exponent range, subnormal support and overflow rule. One
// rounding (round_to, rounding.hpp) works from these parameters for every
// format: one scaled-integer algorithm per carrier (float and double share
// it; mp_t's runs it in MPFR, multiprecision.hpp), the array and fast paths
// equal to it element by element (tests/numeric/test_rounding.cpp). Formats
// are compared by these parameters, never by name (operator==, same_grid).
#include <string>
#include <string_view>
#include <vector>

namespace satalab {

enum class OverflowRule {
  infinity,  // IEEE: values past max finite + half an ulp become ±inf
  nan,       // OCP fp8 e4m3 "fn" default: no infinity, overflow gives NaN
  saturate,  // clamp to ±max finite (OCP optional saturating conversion)
};

struct Format {
  std::string name;
  int precision_bits = 53;  // p, including the hidden bit
  int emin = -1022;         // exponent of the smallest normal number, 2^emin
  int emax = 1023;          // exponent of the largest finite binade
  bool subnormals = true;
  OverflowRule overflow = OverflowRule::infinity;
  double max_finite = 0;    // largest finite magnitude (for e4m3 448, not (2-2^-3)·2^8)
  bool multiprecision = false;  // mp<bits>: exponent range of MPFR, never rounds to double

  // Smallest positive subnormal (or normal, without subnormals) as an exponent: 2^min_exponent.
  int min_exponent() const { return subnormals ? emin - (precision_bits - 1) : emin; }
  // Unit roundoff 2^-p (half the spacing of numbers in [1, 2)).
  double unit_roundoff() const;

  // The same numbers: precision, exponent range, subnormals and carrier kind
  // (the overflow rule may differ, as between e4m3 and e4m3sat).
  bool same_grid(const Format& other) const {
    return precision_bits == other.precision_bits && emin == other.emin && emax == other.emax &&
           subnormals == other.subnormals && multiprecision == other.multiprecision;
  }
  // Formats are equal when every parameter that decides a rounding is equal;
  // the name is only a label and is not compared.
  friend bool operator==(const Format& a, const Format& b) {
    return a.same_grid(b) && a.overflow == b.overflow && a.max_finite == b.max_finite;
  }
};

// The fixed formats. e4m3 here is the OCP "fn" variant with NaN on overflow.
const Format& fp64();
const Format& fp32();
const Format& bf16();
const Format& fp16();
const Format& e4m3();
const Format& e4m3_saturating();  // "e4m3sat": same grid, overflow clamps to ±448
const Format& e5m2();
// Arbitrary precision through MPFR with `bits` bits of significand; bits in [24, 100000].
Format mp_format(unsigned bits);

// Look a format up by name: fp64, fp32, bf16, fp16, e4m3, e4m3sat, e5m2, or mp<bits>
// (e.g. mp256). Unknown names throw InvalidArgument listing the valid ones.
Format format_by_name(std::string_view name);
std::vector<std::string> format_names();

// Bits one value of the format occupies in memory: sign + exponent field +
// (p - 1) stored significand bits. The exponent field holds the normal
// binades emin..emax, one code for zeros and subnormals, and (formats that
// overflow to infinity) one for Inf/NaN: 16 for fp16 and bf16, 32 for fp32,
// 64 for fp64, 8 for e4m3, e4m3sat and e5m2 (e4m3 keeps NaN inside its top
// binade). mp<bits>: the significand plus MPFR's 32-bit-range exponent and sign.
int storage_bits(const Format& format);

}  // namespace satalab
