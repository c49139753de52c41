#pragma once
// Arbitrary precision carrier: Boost.Multiprecision over MPFR with runtime
// precision and expression templates off (they do not mix with Eigen or with
// our templates over the carrier scalar).
#include <boost/multiprecision/mpfr.hpp>

namespace satalab {

using mp_t = boost::multiprecision::number<boost::multiprecision::mpfr_float_backend<0>,
                                           boost::multiprecision::et_off>;

// Boost sets MPFR precision in decimal digits; this is the smallest digit
// count that gives at least `bits` bits (Boost allocates a few more bits).
unsigned mp_digits10_for_bits(unsigned bits);
// Bits of significand a new mp_t gets under the current default precision.
unsigned mp_current_bits();

// Sets the default precision of new mp_t values for its lifetime and restores
// the previous one. The default is process-wide in Boost 1.74: set it before a
// parallel region, never inside one.
class MpPrecisionScope {
 public:
  explicit MpPrecisionScope(unsigned bits);
  ~MpPrecisionScope();
  MpPrecisionScope(const MpPrecisionScope&) = delete;
  MpPrecisionScope& operator=(const MpPrecisionScope&) = delete;

 private:
  unsigned previous_digits10_;
};

}  // namespace satalab
