#pragma once
// Pieces shared by the kernels (internal): scores, the truncated exponential,
// and accumulation, each rounding as the precision policy says.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "satalab/numeric/precision_policy.hpp"
#include "satalab/numeric/rounding.hpp"
#include "satalab/numeric/vector_math.hpp"

namespace satalab::detail {

// s = (q·k) / c: products and the running sum in the accumulate format (a dot
// product is a multiply-accumulate), the scaled score stored in compute.
template <class T>
T scaled_score(const T* q, const T* k, std::size_t d, const T& c, const PolicyRounders<T>& round) {
  T dot = round.accumulate(q[0] * k[0]);
  for (std::size_t t = 1; t < d; ++t) dot = round.accumulate(dot + round.accumulate(q[t] * k[t]));
  return round.compute(dot / c);
}

// T_P(s) = Σ_{p<P} s^p / p! by Horner's rule in nested form,
// r_P = 1, r_p = 1 + (s · r_{p+1}) / p, T_P(s) = r_1; each step in compute.
template <class T>
T truncated_exp(const T& s, std::size_t taylor_terms, const PolicyRounders<T>& round) {
  T r = T(1);
  for (std::size_t p = taylor_terms - 1; p >= 1; --p) {
    r = round.compute(T(1) + round.compute(round.compute(s * r) / T(static_cast<double>(p))));
  }
  return r;
}

// The read-out polynomial's weight w(s) = Σ_{p<P} m_p s^p / p!
// (readout_polynomial.hpp) by Horner's rule in the nested form of
// truncated_exp, r_P = m_{P-1}, r_p = m_{p-1} + (s · r_{p+1}) / p, w = r_1;
// each step in compute. m_p = 1 gives truncated_exp's operations.
template <class T>
T polynomial_weight(const T& s, const T* m, std::size_t taylor_terms, const PolicyRounders<T>& round) {
  T r = m[taylor_terms - 1];
  for (std::size_t p = taylor_terms - 1; p >= 1; --p) {
    r = round.compute(m[p - 1] + round.compute(round.compute(s * r) / T(static_cast<double>(p))));
  }
  return r;
}

// truncated_exp over an array, in place: s[j] <- T_P(s[j]) for j < n, the
// same operations as truncated_exp element by element, each step rounded into
// the compute format with the vectorised array rounding. `term`: n scratch values.
template <class T>
void truncated_exp_array(T* s, std::size_t n, std::size_t taylor_terms, const PolicyRounders<T>& round, T* term) {
  std::fill(term, term + n, T(1));
  for (std::size_t p = taylor_terms - 1; p >= 1; --p) {
    for (std::size_t j = 0; j < n; ++j) term[j] = s[j] * term[j];
    round.compute.apply(term, n);
    for (std::size_t j = 0; j < n; ++j) term[j] /= T(static_cast<double>(p));
    round.compute.apply(term, n);
    for (std::size_t j = 0; j < n; ++j) term[j] = T(1) + term[j];
    round.compute.apply(term, n);
  }
  std::copy(term, term + n, s);
}

// x[j] <- exp(x[j]) rounded once into the compute format, for j < n (float or
// double carriers): the exponential in double (vectorised, exp_in_place), then
// one rounding; a float carrier never holds an intermediate float rounding.
// `scratch`: n doubles (unused for double carriers).
template <class T>
void exp_to_compute(T* x, std::size_t n, const Rounder<T>& compute, double* scratch) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  if constexpr (std::is_same_v<T, double>) {
    exp_in_place(x, n);
    compute.apply(x, n);
  } else {
    std::copy(x, x + n, scratch);
    exp_in_place(scratch, n);
    if (compute.active()) {
      round_to(scratch, x, n, compute.format());
    } else {
      for (std::size_t j = 0; j < n; ++j) x[j] = static_cast<float>(scratch[j]);
    }
  }
}

// exp(x) rounded once into the compute format: for float and double carriers
// as exp_to_compute (the same value an array element gets), in
// multiprecision MPFR's exp rounded into the format.
template <class T>
T exp_in_compute(const T& x, const Rounder<T>& compute) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    T y = x;
    double scratch = 0;
    exp_to_compute(&y, 1, compute, &scratch);
    return y;
  } else {
    using std::exp;
    return compute(exp(x));
  }
}

// s[j] <- s[j] / c for j < n, as a multiplication by 1/c where that is exact
// (c a power of two, as sqrt(d) is for d = 4, 16, 64, ...): the same values
// without a division per element.
template <class T>
void divide_by(T* s, std::size_t n, const T& c) {
  int exponent = 0;
  if (std::frexp(c, &exponent) == T(0.5)) {
    const T inverse = T(1) / c;
    for (std::size_t j = 0; j < n; ++j) s[j] *= inverse;
  } else {
    for (std::size_t j = 0; j < n; ++j) s[j] /= c;
  }
}

// num += weight · v, den += weight, in the accumulate format.
template <class T>
void accumulate_weighted(const T& weight, const T* v, std::size_t d_value, T* num, T& den,
                         const PolicyRounders<T>& round) {
  for (std::size_t t = 0; t < d_value; ++t) num[t] = round.accumulate(num[t] + round.accumulate(weight * v[t]));
  den = round.accumulate(den + weight);
}

}  // namespace satalab::detail
