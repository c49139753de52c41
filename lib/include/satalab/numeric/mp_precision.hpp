#pragma once
// The precision of new multiprecision values, without Boost's MPFR header
// (multiprecision.hpp has the carrier type itself).
namespace satalab {

// Bits of significand a new mp_t gets under the current default precision.
unsigned mp_current_bits();

// Sets the default precision of new mp_t values for its lifetime and restores
// the previous one. The default is process-wide in Boost 1.74, so a scope
// that finds the precision it asks for already set changes nothing (it
// neither writes nor restores): kernels and states enter one for their own
// precision at every public entry point, and inside a parallel region whose
// caller has set that precision this is a read only. Two different
// precisions in two threads at once still need the caller to serialise them.
class MpPrecisionScope {
 public:
  explicit MpPrecisionScope(unsigned bits);
  ~MpPrecisionScope();
  MpPrecisionScope(const MpPrecisionScope&) = delete;
  MpPrecisionScope& operator=(const MpPrecisionScope&) = delete;

 private:
  unsigned previous_digits10_ = 0;
  bool changed_ = false;
};

}  // namespace satalab
