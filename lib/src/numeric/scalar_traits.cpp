#include "satalab/numeric/scalar_traits.hpp"

#include <mpfr.h>

#include <cmath>
#include <cstdio>

#include "satalab/error.hpp"

namespace satalab {
namespace {

template <class F>
bool parse_exact_native(const std::string& text, F& out) {
  mpfr_t x;
  mpfr_init2(x, 53);
  char* end = nullptr;
  const int inexact = mpfr_strtofr(x, text.c_str(), &end, 0, MPFR_RNDN);
  const double d = mpfr_get_d(x, MPFR_RNDN);
  const bool ok = end != text.c_str() && *end == '\0' && inexact == 0 && mpfr_cmp_d(x, d) == 0 &&
                  (std::isnan(d) || static_cast<double>(static_cast<F>(d)) == d);
  mpfr_clear(x);
  out = static_cast<F>(d);
  return ok;
}

}  // namespace

std::string to_hex(double x) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%a", x);
  return buffer;
}

std::string to_hex(float x) { return to_hex(static_cast<double>(x)); }

std::string to_hex(const mp_t& x) {
  char* text = nullptr;
  if (mpfr_asprintf(&text, "%Ra", x.backend().data()) < 0) throw ResourceLimit("cannot format an MPFR value");
  std::string out(text);
  mpfr_free_str(text);
  return out;
}

bool parse_exact(const std::string& text, float& out) { return parse_exact_native(text, out); }
bool parse_exact(const std::string& text, double& out) { return parse_exact_native(text, out); }

bool parse_exact(const std::string& text, mp_t& out) {
  char* end = nullptr;
  const int inexact = mpfr_strtofr(out.backend().data(), text.c_str(), &end, 0, MPFR_RNDN);
  return end != text.c_str() && *end == '\0' && inexact == 0;
}

}  // namespace satalab
