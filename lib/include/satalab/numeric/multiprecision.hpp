#pragma once
// Arbitrary precision carrier: Boost.Multiprecision over MPFR with runtime
// precision and expression templates off (they do not mix with Eigen or with
// our templates over the carrier scalar). Only code that computes in
// multiprecision includes this header (it brings in Boost's MPFR header).
#include <boost/multiprecision/mpfr.hpp>

#include "satalab/numeric/format.hpp"
#include "satalab/numeric/mp_precision.hpp"

namespace satalab {

using mp_t = boost::multiprecision::number<boost::multiprecision::mpfr_float_backend<0>,
                                           boost::multiprecision::et_off>;

// Boost sets MPFR precision in decimal digits; this is the smallest digit
// count that gives at least `bits` bits (Boost allocates a few more bits).
unsigned mp_digits10_for_bits(unsigned bits);

// Correct rounding of an MPFR value into a format (rounding.hpp has the float
// and double overloads), directly, not via double: a value just above a
// midpoint of the target grid rounds up even when double could not hold it.
mp_t round_to(const mp_t& x, const Format& format);

}  // namespace satalab
