#pragma once
// The feature builder of the kernels (internal; docs/architecture.md, Kernels):
// the raw monomials Φ(x) of `count` tokens, token-minor (a monomial's values
// for all tokens are one contiguous run), degree by degree. Each feature of
// degree p is its parent's value times one input coordinate (one multiply per
// feature, symmetric_basis.hpp), computed for all tokens as one vectorised
// product; then the whole degree is rounded into the compute format at once
// with the vectorised array rounding. A product only reads parents of the
// previous degree, which are already rounded, so the values equal those of
// monomial_features (feature_map.hpp, the specification the tests hold this
// to), which rounds each product as it goes. One token (count = 1) is the
// decode case; SATA's prefill builds a chunk's tokens at once.
#include <algorithm>
#include <cstddef>

#include "satalab/basis/feature_map.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab::detail {

// The children of parents [parent_begin, parent_end) of degree `degree` - 1,
// token-minor: child (parent, j) = parent's run × x_j's run, for j from the
// parent's last index (0 under the root) to d; written from `out` on, one run
// of `count` per child (parents' runs in monomials [features × count], inputs
// xT [d × count]). Returns the end of what was written.
template <class T>
T* children_token_minor(const SymmetricBasis& basis, std::size_t degree, std::size_t parent_begin,
                        std::size_t parent_end, const T* monomials, const T* xT, std::size_t count, T* out) {
  const std::size_t d = basis.dim();
  for (std::size_t parent = parent_begin; parent < parent_end; ++parent) {
    const std::size_t first = degree == 1 ? 0 : basis.last_index(parent);
    const T* __restrict value = monomials + parent * count;
    for (std::size_t j = first; j < d; ++j) {
      const T* __restrict xj = xT + j * count;
      T* __restrict child = out;
      for (std::size_t t = 0; t < count; ++t) child[t] = value[t] * xj[t];
      out += count;
    }
  }
  return out;
}

// Head sizes up to this build one token's children of every parent as one
// full-length vector product (below).
inline constexpr std::size_t kFullProductMaxDim = 16;

// Degree p >= 1 of one token by full-length products (kDim = 0: d at run
// time). The children of a parent with last index l are value·x[l..d): d - l
// of them, a few on average when d is small, so a loop per parent is mostly
// loop overhead and mispredicted exits. Here the parents run backwards and
// each stores the full product value·x[0..d) so that it ends where its
// children end: the l extra values land among the children of earlier
// parents, which are written afterwards (the first parent, (0,..,0) or the
// root, has l = 0, so nothing before the degree is touched). Every stored
// feature is still the one product of its parent and one entry of x.
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

// The decode case of monomials (below): one token, each degree's children
// by full-length products for d <= kFullProductMaxDim, else parent by
// parent along x (both loops vectorise along the children).
template <class T>
void monomials_one_token(const SymmetricBasis& basis, const T* __restrict x, T* __restrict out,
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

// Raw monomials of all degrees of `basis` for `count` tokens: xT [d × count]
// token-minor in, out [total_size() × count] token-minor (for one token: x
// and Φ(x) as plain vectors, monomials_one_token). The same products either
// way: each child is its parent's value times one coordinate.
template <class T>
void monomials(const SymmetricBasis& basis, const T* xT, std::size_t count, const Rounder<T>& round, T* out) {
  if (count == 1) return monomials_one_token(basis, xT, out, round);
  std::fill(out, out + count, T(1));
  for (std::size_t p = 1; p < basis.taylor_terms(); ++p) {
    T* degree = out + basis.offset(p) * count;
    children_token_minor(basis, p, basis.offset(p - 1), basis.offset(p), out, xT, count, degree);
    round.apply(degree, basis.size(p) * count);
  }
}

// The inputs x [count × d] of a side as the monomials see them: transposed
// to xT [d × count] (token-minor; for one token a copy) and pre-scaled and
// rounded when the placement says so; then their raw monomials into out
// [total_size() × count].
template <class T>
void input_monomials(const SymmetricBasis& basis, const FeatureCoefficients<T>& coef, const T* x, std::size_t count,
                     const Rounder<T>& round, T* xT, T* out) {
  const std::size_t d = basis.dim();
  for (std::size_t t = 0; t < count; ++t) {
    for (std::size_t c = 0; c < d; ++c) xT[c * count + t] = x[t * d + c];
  }
  if (coef.prescale_inputs) {
    for (std::size_t i = 0; i < d * count; ++i) xT[i] *= coef.input_scale;
    round.apply(xT, d * count);
  }
  monomials(basis, xT, count, round, out);
}

// Which side's coefficients a feature vector carries.
enum class FeatureSide { query, key };

// The features of one input as the state uses them: the input pre-scaled when
// the placement says so (into `scaled`, d values), the monomials, and the
// side's coefficients, every step rounded into the compute format.
template <class T>
void side_features(const SymmetricBasis& basis, const FeatureCoefficients<T>& coef, FeatureSide side, const T* x,
                   const Rounder<T>& round, T* scaled, T* out) {
  const std::size_t total = basis.total_size();
  if (coef.prescale_inputs) {
    input_monomials(basis, coef, x, 1, round, scaled, out);
  } else {
    monomials_one_token(basis, x, out, round);
  }
  const bool is_one = side == FeatureSide::query ? coef.query_is_one : coef.key_is_one;
  if (is_one) return;
  const T* c = side == FeatureSide::query ? coef.query.data() : coef.key.data();
  for (std::size_t r = 0; r < total; ++r) out[r] *= c[r];
  round.apply(out, total);
}

}  // namespace satalab::detail
