#pragma once
// The feature map Φ(x) = (Φ_0(x), ..., Φ_{P-1}(x)) over the symmetric basis,
// built hierarchically: each degree-p feature is its parent's value times one
// entry of x (one multiply per feature, no gathers), and the placement of the
// weights w(t) = 1/Π c_j! and of 1/c^p between the query and key sides.
#include <string>
#include <string_view>
#include <vector>

#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {

// Where the coefficient w(t)/c^p of each feature goes. In exact arithmetic all
// give the same attention; in low precision they do not (docs/architecture.md).
enum class CoefficientPlacement {
  paper,      // keys carry alpha_p = 1/(p! c^p) (in the state), queries the count p!/Π c_j! (paper, App. A2)
  symmetric,  // both sides carry sqrt(w(t)/c^p)
  query,      // queries carry w(t)/c^p, keys the bare monomials
  key,        // keys carry w(t)/c^p, queries the bare monomials
  prescaled,  // inputs pre-scaled q/sqrt(c), k/sqrt(c); queries carry w(t)
};

CoefficientPlacement placement_by_name(std::string_view name);  // InvalidArgument lists the names
std::string_view placement_name(CoefficientPlacement placement);
std::vector<std::string> placement_names();

// Raw monomials Φ(x) into out[0 .. basis.total_size()), each product rounded
// by `round` (the policy's compute format).
template <class T>
void monomial_features(const SymmetricBasis& basis, const T* x, T* out, const Rounder<T>& round) {
  out[0] = T(1);
  const std::size_t d = basis.dim();
  std::size_t next = 1;
  for (std::size_t p = 1; p < basis.taylor_terms(); ++p) {
    for (std::size_t parent = basis.offset(p - 1); parent < basis.offset(p); ++parent) {
      const std::size_t first = p == 1 ? 0 : basis.last_index(parent);
      const T parent_value = out[parent];
      for (std::size_t j = first; j < d; ++j) out[next++] = round(parent_value * x[j]);
    }
  }
}

// Per-feature coefficients of the query and key sides and the input scale,
// computed in the carrier and rounded into the compute format.
template <class T>
struct FeatureCoefficients {
  std::vector<T> query, key;  // total_size() each
  bool query_is_one = false, key_is_one = false;
  bool prescale_inputs = false;
  T input_scale = T(1);  // c^-1/2 when prescale_inputs
};

// `c` is the softmax denominator (s = q·k / c), given in the carrier.
template <class T>
FeatureCoefficients<T> feature_coefficients(const SymmetricBasis& basis, const T& c, CoefficientPlacement placement,
                                            const Rounder<T>& round);

}  // namespace satalab
