#pragma once
// What code outside the kernels needs to know of a carrier scalar (float,
// double, mp_t), in one place: its value in float64, the bytes one element
// occupies, and exact text (C99 hexadecimal floats) both ways. Includes
// Boost's MPFR header (multiprecision.hpp): for the units that handle mp_t.
#include <cstdint>
#include <string>
#include <type_traits>

#include "satalab/numeric/multiprecision.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {

// x rounded to float64 (to nearest; for mp_t mpfr_get_d), exact for float and double.
template <class T>
double to_double(const T& x) {
  if constexpr (std::is_same_v<T, mp_t>) {
    return x.template convert_to<double>();
  } else {
    return static_cast<double>(x);
  }
}

// Bytes one element of carrier T occupies in memory under `policy`: sizeof
// for float and double; for mp_t an mpfr_t header plus its limbs at the
// policy's precision.
template <class T>
std::uint64_t bytes_per_element(const PrecisionPolicy& policy) {
  if constexpr (std::is_same_v<T, mp_t>) {
    return sizeof(mp_t) + (static_cast<std::uint64_t>(policy.mp_bits) + 63) / 64 * 8 + 16;
  } else {
    (void)policy;
    return sizeof(T);
  }
}

// The value exactly as a C99 hexadecimal float ("%a"; MPFR's "%Ra" for mp_t).
// Throws ResourceLimit if MPFR cannot allocate the text.
std::string to_hex(float x);
std::string to_hex(double x);
std::string to_hex(const mp_t& x);

// Parses a hexadecimal (or decimal) float into `out`; false when the text is
// malformed or its value is not exactly representable in the carrier (mp_t:
// at out's precision).
bool parse_exact(const std::string& text, float& out);
bool parse_exact(const std::string& text, double& out);
bool parse_exact(const std::string& text, mp_t& out);

}  // namespace satalab
