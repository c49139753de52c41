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

MpPrecisionScope::MpPrecisionScope(unsigned bits) {
  const unsigned wanted = mp_digits10_for_bits(bits);
  const auto current = static_cast<unsigned>(mp_t::default_precision());
  if (current == wanted) return;
  previous_digits10_ = current;
  changed_ = true;
  mp_t::default_precision(wanted);
}

MpPrecisionScope::~MpPrecisionScope() {
  if (changed_) mp_t::default_precision(previous_digits10_);
}

}  // namespace satalab
