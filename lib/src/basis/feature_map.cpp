#include "satalab/basis/feature_map.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>

#include "satalab/error.hpp"
#include "satalab/numeric/multiprecision.hpp"

namespace satalab {

std::vector<std::string> placement_names() { return {"paper", "symmetric", "query", "key", "prescaled"}; }

CoefficientPlacement placement_by_name(std::string_view name) {
  if (name == "paper") return CoefficientPlacement::paper;
  if (name == "symmetric") return CoefficientPlacement::symmetric;
  if (name == "query") return CoefficientPlacement::query;
  if (name == "key") return CoefficientPlacement::key;
  if (name == "prescaled") return CoefficientPlacement::prescaled;
  throw InvalidArgument(
      fmt::format("unknown coefficient placement '{}' (allowed: {})", name, fmt::join(placement_names(), ", ")));
}

std::string_view placement_name(CoefficientPlacement placement) {
  switch (placement) {
    case CoefficientPlacement::paper: return "paper";
    case CoefficientPlacement::symmetric: return "symmetric";
    case CoefficientPlacement::query: return "query";
    case CoefficientPlacement::key: return "key";
    case CoefficientPlacement::prescaled: return "prescaled";
  }
  return "?";
}

template <class T>
FeatureCoefficients<T> feature_coefficients(const SymmetricBasis& basis, const T& c, CoefficientPlacement placement,
                                            const Rounder<T>& round) {
  using std::sqrt;
  const std::size_t total = basis.total_size();
  FeatureCoefficients<T> out;
  out.query.assign(total, T(1));
  out.key.assign(total, T(1));
  T c_power = T(1);                    // c^p
  std::uint64_t exact_p_factorial = 1;  // p! exactly: p <= 20 (kMaxTaylorTerms) fits 64 bits
  for (std::size_t p = 0; p < basis.taylor_terms(); ++p) {
    if (p > 0) {
      c_power *= c;
      exact_p_factorial *= p;
    }
    // Integers enter the carrier once, correctly rounded, instead of as a
    // product of rounded factors (p! is not exact in float from p = 14 on).
    const T p_factorial = T(static_cast<unsigned long long>(exact_p_factorial));
    for (std::size_t f = basis.offset(p); f < basis.offset(p + 1); ++f) {
      const std::uint64_t count_factorials = basis.count_factorial_product(f);  // Π c_j!, divides p!
      const T denominator = T(static_cast<unsigned long long>(count_factorials));
      const T weight = T(1) / denominator;                                           // w(t)
      switch (placement) {
        case CoefficientPlacement::paper:
          // The multinomial count C_p(t) = p!/Π c_j!, an integer, computed exactly.
          out.query[f] = round(T(static_cast<unsigned long long>(exact_p_factorial / count_factorials)));
          out.key[f] = round(T(1) / (p_factorial * c_power));
          break;
        case CoefficientPlacement::symmetric:
          out.query[f] = out.key[f] = round(sqrt(weight / c_power));
          break;
        case CoefficientPlacement::query:
          out.query[f] = round(weight / c_power);
          break;
        case CoefficientPlacement::key:
          out.key[f] = round(weight / c_power);
          break;
        case CoefficientPlacement::prescaled:
          out.query[f] = round(weight);
          break;
      }
    }
  }
  out.query_is_one = placement == CoefficientPlacement::key;
  out.key_is_one = placement == CoefficientPlacement::query || placement == CoefficientPlacement::prescaled;
  out.prescale_inputs = placement == CoefficientPlacement::prescaled;
  if (out.prescale_inputs) out.input_scale = round(T(1) / sqrt(c));
  return out;
}

template FeatureCoefficients<float> feature_coefficients(const SymmetricBasis&, const float&, CoefficientPlacement,
                                                         const Rounder<float>&);
template FeatureCoefficients<double> feature_coefficients(const SymmetricBasis&, const double&,
                                                          CoefficientPlacement, const Rounder<double>&);
template FeatureCoefficients<mp_t> feature_coefficients(const SymmetricBasis&, const mp_t&, CoefficientPlacement,
                                                        const Rounder<mp_t>&);

}  // namespace satalab
