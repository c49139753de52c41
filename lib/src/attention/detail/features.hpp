#pragma once
// The feature map built degree by degree for the fast kernels (internal): the
// products of one degree first (one multiply per feature, from the parent's
// value, DESIGN §2), then that degree rounded into the compute format at once
// with the vectorised array rounding. A product only reads parents of the
// previous degree, which are already rounded, so the values equal those of
// monomial_features (feature_map.hpp), which rounds each product as it goes.
#include <cstddef>

#include "satalab/basis/feature_map.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab::detail {

// Head sizes up to this build every parent's children as one full-length
// vector product (below).
inline constexpr std::size_t kFullProductMaxDim = 16;

// Raw monomials Φ(x) of all degrees of `basis` into out[0 .. total_size()).
//
// The children of a parent with last index l are value·x[l..d): d - l of
// them, a few on average when d is small, so a loop per parent is mostly
// loop overhead and mispredicted exits. For d <= kFullProductMaxDim the
// parents run backwards and each stores the full product value·x[0..d) so
// that it ends where its children end: the l extra values land among the
// children of earlier parents, which are written afterwards (the first
// parent, (0,..,0) or the root, has l = 0, so nothing before the degree is
// touched). Every stored feature is still the one product of its parent and
// one entry of x.
// One degree p >= 1 by full-length products (kDim = 0: d at run time).
template <std::size_t kDim, class T>
void full_product_degree(const SymmetricBasis& basis, std::size_t p, const T* __restrict x, T* __restrict out) {
  const std::size_t d = kDim != 0 ? kDim : basis.dim();
  T* end = out + basis.offset(p + 1);
  for (std::size_t parent = basis.offset(p); parent-- > basis.offset(p - 1);) {
    const std::size_t first = p == 1 ? 0 : basis.last_index(parent);
    const T value = out[parent];
    T* __restrict dst = end - d;
    for (std::size_t j = 0; j < d; ++j) dst[j] = value * x[j];
    end -= d - first;
  }
}

template <class T>
void monomials_by_degree(const SymmetricBasis& basis, const T* __restrict x, T* __restrict out,
                         const Rounder<T>& round) {
  const std::size_t d = basis.dim();
  out[0] = T(1);
  for (std::size_t p = 1; p < basis.taylor_terms(); ++p) {
    if (d == 8) {
      full_product_degree<8>(basis, p, x, out);
    } else if (d == 16) {
      full_product_degree<16>(basis, p, x, out);
    } else if (d <= kFullProductMaxDim) {
      full_product_degree<0>(basis, p, x, out);
    } else {
      T* next = out + basis.offset(p);
      for (std::size_t parent = basis.offset(p - 1); parent < basis.offset(p); ++parent) {
        const std::size_t first = p == 1 ? 0 : basis.last_index(parent);
        const T value = out[parent];
        for (std::size_t j = first; j < d; ++j) *next++ = value * x[j];
      }
    }
    round.apply(out + basis.offset(p), basis.size(p));
  }
}

// Which side's coefficients a feature vector carries.
enum class FeatureSide { query, key };

// The features of one input as the state uses them: the input pre-scaled when
// the placement says so (into `scaled`, d values), the monomials, and the
// side's coefficients, every step rounded into the compute format as the
// token-by-token path rounds it.
template <class T>
void side_features(const SymmetricBasis& basis, const FeatureCoefficients<T>& coef, FeatureSide side, const T* x,
                   const Rounder<T>& round, T* scaled, T* out) {
  const std::size_t d = basis.dim(), total = basis.total_size();
  if (coef.prescale_inputs) {
    for (std::size_t i = 0; i < d; ++i) scaled[i] = x[i] * coef.input_scale;
    round.apply(scaled, d);
    x = scaled;
  }
  monomials_by_degree(basis, x, out, round);
  const bool is_one = side == FeatureSide::query ? coef.query_is_one : coef.key_is_one;
  if (is_one) return;
  const T* c = side == FeatureSide::query ? coef.query.data() : coef.key.data();
  for (std::size_t r = 0; r < total; ++r) out[r] *= c[r];
  round.apply(out, total);
}

}  // namespace satalab::detail
