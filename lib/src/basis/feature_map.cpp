#include "satalab/basis/feature_map.hpp"

#include <fmt/format.h>

#include <cmath>

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
  T c_power = T(1);      // c^p
  T p_factorial = T(1);  // p!
  for (std::size_t p = 0; p < basis.taylor_terms(); ++p) {
    if (p > 0) {
      c_power *= c;
      p_factorial *= T(static_cast<double>(p));
    }
    for (std::size_t f = basis.offset(p); f < basis.offset(p + 1); ++f) {
      const T denominator = T(static_cast<unsigned long long>(basis.count_factorial_product(f)));
      const T weight = T(1) / denominator;                                           // w(t)
      switch (placement) {
        case CoefficientPlacement::paper:
          out.query[f] = round(p_factorial / denominator);  // the multinomial count C_p(t)
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
