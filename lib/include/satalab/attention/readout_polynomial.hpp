#pragma once
// Read-out polynomials (docs/architecture.md, Mathematics, "Read-out
// polynomials"). SATA's state for degree p, S_p = Σ_j Φ_p(k_j) v_jᵀ and
// z_p = Σ_j Φ_p(k_j), does not depend on the weight the series gives degree
// p: the same state reads out Σ_p m_p(q) Φ_p(q)·S_p / Σ_p m_p(q) Φ_p(q)·z_p,
// i.e. attention with the weight w(s) = Σ_{p<P} m_p(q) s^p / p! in place of
// the Taylor polynomial T_P(s) (m_p = 1), for any per-query multipliers m_p
// chosen at read-out time. A family gives m_p from the query's logit moments
// over the keys it attends to (count n, Σ s, Σ s²), which the state holds:
// Φ_1(q)·z_1 = Σ_j s_j and Φ_2(q)·z_2 = Σ_j s_j² / 2.
//
// This is the one place the multipliers are computed; SATA (every read-out)
// and the Taylor-quadratic oracle call it.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "satalab/numeric/precision_policy.hpp"
#include "satalab/tensor.hpp"

namespace satalab {

enum class PolynomialFamily { taylor, taylor_shift, moment_fit, chebyshev, positive };

struct ReadoutPolynomial {
  PolynomialFamily family = PolynomialFamily::taylor;
  // chebyshev: half-width of the interpolation interval, in standard
  // deviations of the query's logits (interval μ ± width·σ); in (0, 64].
  double chebyshev_width = 2.0;
  bool is_taylor() const { return family == PolynomialFamily::taylor; }
  bool operator==(const ReadoutPolynomial&) const = default;
};

PolynomialFamily polynomial_family_by_name(std::string_view name);  // InvalidArgument lists the names
std::string_view polynomial_family_name(PolynomialFamily family);
std::vector<std::string> polynomial_family_names();
// The smallest P a family works with: the moments need the degree-2 state
// (P >= 3) for every family but taylor (P >= 1).
std::size_t polynomial_min_terms(PolynomialFamily family);
// Throws InvalidArgument (one line naming the value and what is allowed)
// when a parameter is out of range or P is below the family's minimum.
void validate_readout_polynomial(const ReadoutPolynomial& polynomial, std::size_t taylor_terms);
// The parameters as recorded in results files: "" for the families without
// parameters, "width=2" for chebyshev.
std::string polynomial_parameters(const ReadoutPolynomial& polynomial);

// Key centring: a fixed shift μ subtracted from every key before SATA's state
// is built (and before the oracle sees them): q·(k − μ) = q·k − q·μ shifts
// every logit of a query by the same amount, so exact softmax is unchanged
// while the logits the series sees shrink. first-chunk: μ = the mean of each
// head's first `chunk` keys (the prefill's first chunk).
enum class KeyCentring { none, first_chunk };
KeyCentring key_centring_by_name(std::string_view name);  // InvalidArgument lists the names
std::string_view key_centring_name(KeyCentring centring);
std::vector<std::string> key_centring_names();

// The keys centred by each head's mean over its first min(first, n_tokens)
// keys (computed in the carrier), every centred key rounded by `input` (the
// keys stay in the policy's input format).
template <class T>
HeadTensor<T> centred_keys(const HeadTensor<T>& k, std::size_t first, const Rounder<T>& input);

// The logit moments of one query over the keys it attends to.
template <class T>
struct LogitMoments {
  T count = T(0);   // n
  T sum = T(0);     // Σ_j s_j
  T sum_sq = T(0);  // Σ_j s_j²
};

// The multipliers m[0 .. P) of `polynomial` for a query with these moments,
// each rounded by `round` (the compute format). Computed in double for float
// and double carriers, in the current multiprecision precision for mp_t.
// taylor: all ones.
template <class T>
void readout_multipliers(const ReadoutPolynomial& polynomial, std::size_t taylor_terms, const LogitMoments<T>& moments,
                         const Rounder<T>& round, T* m);

}  // namespace satalab
