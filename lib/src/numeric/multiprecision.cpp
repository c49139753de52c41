#include "satalab/numeric/multiprecision.hpp"

#include <mpfr.h>

namespace satalab {

unsigned mp_digits10_for_bits(unsigned bits) {
  // Boost maps d decimal digits to d*1000/301 + (1 or 2) bits; search upward.
  unsigned d = 1;
  while (boost::multiprecision::detail::digits10_2_2(d) < bits) ++d;
  return d;
}

unsigned mp_current_bits() {
  return static_cast<unsigned>(boost::multiprecision::detail::digits10_2_2(mp_t::default_precision()));
}

MpPrecisionScope::MpPrecisionScope(unsigned bits) : previous_digits10_(mp_t::default_precision()) {
  mp_t::default_precision(mp_digits10_for_bits(bits));
}

MpPrecisionScope::~MpPrecisionScope() { mp_t::default_precision(previous_digits10_); }

}  // namespace satalab
