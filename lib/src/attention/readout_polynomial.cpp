// Read-out polynomials: the per-query multipliers m_p of every family
// (docs/architecture.md, Mathematics, "Read-out polynomials").
//
// Every family but taylor is a polynomial in u = s − μ (μ the query's mean
// logit), w = Σ_{k<P} g_k u^k / k!; expanding u^k = (s − μ)^k gives the
// multipliers of the state's degrees,
//   m_p = Σ_{k=p}^{P−1} g_k (−μ)^{k−p} / (k−p)!.
// The factor exp(μ) (and any other constant) cancels between the numerator
// and the normaliser, so it is dropped.
#include "satalab/attention/readout_polynomial.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "satalab/error.hpp"
#include "satalab/numeric/multiprecision.hpp"

namespace satalab {

std::vector<std::string> polynomial_family_names() {
  return {"taylor", "taylor-shift", "moment-fit", "chebyshev", "positive"};
}

PolynomialFamily polynomial_family_by_name(std::string_view name) {
  if (name == "taylor") return PolynomialFamily::taylor;
  if (name == "taylor-shift") return PolynomialFamily::taylor_shift;
  if (name == "moment-fit") return PolynomialFamily::moment_fit;
  if (name == "chebyshev") return PolynomialFamily::chebyshev;
  if (name == "positive") return PolynomialFamily::positive;
  throw InvalidArgument(
      fmt::format("unknown polynomial '{}' (allowed: {})", name, fmt::join(polynomial_family_names(), ", ")));
}

std::string_view polynomial_family_name(PolynomialFamily family) {
  switch (family) {
    case PolynomialFamily::taylor: return "taylor";
    case PolynomialFamily::taylor_shift: return "taylor-shift";
    case PolynomialFamily::moment_fit: return "moment-fit";
    case PolynomialFamily::chebyshev: return "chebyshev";
    case PolynomialFamily::positive: return "positive";
  }
  return "?";
}

std::size_t polynomial_min_terms(PolynomialFamily family) { return family == PolynomialFamily::taylor ? 1 : 3; }

void validate_readout_polynomial(const ReadoutPolynomial& polynomial, std::size_t taylor_terms) {
  const std::size_t min_terms = polynomial_min_terms(polynomial.family);
  if (taylor_terms < min_terms) {
    throw InvalidArgument(fmt::format("polynomial '{}' needs taylor_terms P >= {} (the logit moments come from the "
                                      "degree-2 state), got P = {}",
                                      polynomial_family_name(polynomial.family), min_terms, taylor_terms));
  }
  if (!(polynomial.chebyshev_width > 0.0 && polynomial.chebyshev_width <= 64.0)) {
    throw InvalidArgument(
        fmt::format("chebyshev width = {} is invalid (must be > 0 and <= 64)", polynomial.chebyshev_width));
  }
}

std::string polynomial_parameters(const ReadoutPolynomial& polynomial) {
  if (polynomial.family == PolynomialFamily::chebyshev) return fmt::format("width={}", polynomial.chebyshev_width);
  return "";
}

std::vector<std::string> key_centring_names() { return {"none", "first-chunk"}; }

KeyCentring key_centring_by_name(std::string_view name) {
  if (name == "none") return KeyCentring::none;
  if (name == "first-chunk") return KeyCentring::first_chunk;
  throw InvalidArgument(
      fmt::format("unknown key centring '{}' (allowed: {})", name, fmt::join(key_centring_names(), ", ")));
}

std::string_view key_centring_name(KeyCentring centring) {
  return centring == KeyCentring::first_chunk ? "first-chunk" : "none";
}

template <class T>
HeadTensor<T> centred_keys(const HeadTensor<T>& k, std::size_t first, const Rounder<T>& input) {
  HeadTensor<T> out = k;
  const std::size_t count = std::max<std::size_t>(1, std::min(first, k.n_tokens)), d = k.dim;
  for (std::size_t h = 0; h < k.heads; ++h) {
    std::vector<T> mu(d, T(0));
    for (std::size_t j = 0; j < count; ++j) {
      for (std::size_t c = 0; c < d; ++c) mu[c] += k.row(h, j)[c];
    }
    for (std::size_t c = 0; c < d; ++c) mu[c] /= T(static_cast<double>(count));
    for (std::size_t j = 0; j < k.n_tokens; ++j) {
      for (std::size_t c = 0; c < d; ++c) out.row(h, j)[c] = input(T(k.row(h, j)[c] - mu[c]));
    }
  }
  return out;
}

template HeadTensor<float> centred_keys(const HeadTensor<float>&, std::size_t, const Rounder<float>&);
template HeadTensor<double> centred_keys(const HeadTensor<double>&, std::size_t, const Rounder<double>&);
template HeadTensor<mp_t> centred_keys(const HeadTensor<mp_t>&, std::size_t, const Rounder<mp_t>&);

namespace {

// Σ_{m=0}^{terms−1} x^m / m!
template <class W>
W truncated_exp_sum(const W& x, std::size_t terms) {
  W sum = W(0), term = W(1);
  for (std::size_t m = 0; m < terms; ++m) {
    sum += term;
    term = term * x / W(static_cast<double>(m + 1));
  }
  return sum;
}

// Ĩ_N(h) = I_N(h) / h^N = Σ_m (h²/4)^m / (2^N m! (m+N)!), the modified Bessel
// function without its leading power (finite at h = 0), from h².
template <class W>
W scaled_bessel_i(std::size_t N, const W& h2) {
  W base = W(1);
  for (std::size_t i = 1; i <= N; ++i) base = base / W(2.0 * static_cast<double>(i));
  W sum = base, term = base;
  const W quarter = h2 / W(4);
  for (std::size_t m = 1; m < 4000; ++m) {
    term = term * quarter / W(static_cast<double>(m) * static_cast<double>(m + N));
    const W next = sum + term;
    if (next == sum) break;
    sum = next;
  }
  return sum;
}

// chebyshev: the polynomial of degree < P interpolating exp(u) at the P
// Chebyshev points (first kind) of [−h, h], h = width·σ, as g_k. With
// exp(h t) = I_0(h) + 2 Σ_n I_n(h) T_n(t), the interpolant's coefficients are
// the series' folded by aliasing at the nodes (T_{2mP±n} = (−1)^m T_n there):
//   c_0 = I_0 + 2 Σ_{m>=1} (−1)^m I_{2mP},
//   c_n = 2 [I_n + Σ_{m>=1} (−1)^m (I_{2mP−n} + I_{2mP+n})]   (n >= 1),
// m <= 3 (the rest is below I_{8P−n}). In u = h t the coefficient of u^j is
// Σ_n c_n τ_{n,j} / h^j (τ the monomial coefficients of T_n), and every
// I_N / h^j = Ĩ_N h^{N−j} with N − j even: only h² appears, and h → 0 gives
// the Taylor series at μ.
template <class W>
void chebyshev_g(std::size_t P, const W& h2, W* g) {
  constexpr std::size_t kAliases = 3;
  // τ[n][j], n, j < P (integers, exact in W).
  std::vector<std::vector<W>> tau(P, std::vector<W>(P, W(0)));
  tau[0][0] = W(1);
  if (P > 1) tau[1][1] = W(1);
  for (std::size_t n = 2; n < P; ++n) {
    for (std::size_t j = 0; j < P; ++j) {
      W v = -tau[n - 2][j];
      if (j > 0) v += W(2) * tau[n - 1][j - 1];
      tau[n][j] = v;
    }
  }
  // (N, factor) of the Bessel terms of c_n.
  auto h_power = [&](std::size_t half) {
    W r = W(1);
    for (std::size_t i = 0; i < half; ++i) r *= h2;
    return r;
  };
  std::vector<W> coef(P, W(0));  // coefficient of u^j
  for (std::size_t n = 0; n < P; ++n) {
    std::vector<std::pair<std::size_t, W>> terms;
    terms.emplace_back(n, W(n == 0 ? 1.0 : 2.0));
    for (std::size_t m = 1; m <= kAliases; ++m) {
      const W sign = W(m % 2 == 1 ? -2.0 : 2.0);
      if (n == 0) {
        terms.emplace_back(2 * m * P, sign);
      } else {
        terms.emplace_back(2 * m * P - n, sign);
        terms.emplace_back(2 * m * P + n, sign);
      }
    }
    for (const auto& [N, factor] : terms) {
      const W bessel = factor * scaled_bessel_i(N, h2);
      for (std::size_t j = n % 2; j <= n; j += 2) {
        if (tau[n][j] == W(0)) continue;
        coef[j] += bessel * tau[n][j] * h_power((N - j) / 2);
      }
    }
  }
  W factorial = W(1);
  for (std::size_t j = 0; j < P; ++j) {
    if (j > 0) factorial *= W(static_cast<double>(j));
    g[j] = coef[j] * factorial;
  }
}

template <class W>
void multipliers_in(const ReadoutPolynomial& polynomial, std::size_t P, const W& n, const W& sum, const W& sum_sq,
                    W* m) {
  using std::sqrt;
  if (polynomial.family == PolynomialFamily::taylor) {
    for (std::size_t p = 0; p < P; ++p) m[p] = W(1);
    return;
  }
  W mu = W(0), var = W(0);
  if (n > W(0)) {
    mu = sum / n;
    var = sum_sq / n - mu * mu;
    if (var < W(0)) var = W(0);
  }
  std::vector<W> g(P, W(0));
  switch (polynomial.family) {
    case PolynomialFamily::taylor:
      break;
    case PolynomialFamily::taylor_shift:
      // T_P(s − μ): the Taylor series around the mean logit.
      for (std::size_t k = 0; k < P; ++k) g[k] = W(1);
      break;
    case PolynomialFamily::positive: {
      // T_{D+1}(s − μ) with D the largest even degree < P: a Taylor
      // polynomial of even degree is > 0 everywhere, so every weight is.
      const std::size_t D = (P - 1) % 2 == 0 ? P - 1 : P - 2;
      for (std::size_t k = 0; k <= D; ++k) g[k] = W(1);
      break;
    }
    case PolynomialFamily::moment_fit: {
      // The L2 projection of exp(s) onto degree < P under N(μ, σ²): with
      // t = (s − μ)/σ, exp(σ t) = exp(σ²/2) Σ_n σ^n He_n(t) / n! (Hermite
      // generating function), truncated at n < P; collecting powers of u gives
      // g_k = Σ_{i=0}^{⌊(P−1−k)/2⌋} (−σ²/2)^i / i!.
      for (std::size_t k = 0; k < P; ++k) g[k] = truncated_exp_sum(W(-0.5) * var, (P - 1 - k) / 2 + 1);
      break;
    }
    case PolynomialFamily::chebyshev: {
      const W width = W(polynomial.chebyshev_width);
      chebyshev_g(P, width * width * var, g.data());
      break;
    }
  }
  // m_p = Σ_{k>=p} g_k (−μ)^{k−p} / (k−p)!
  const W minus_mu = -mu;
  for (std::size_t p = 0; p < P; ++p) {
    W total = W(0), power = W(1);
    for (std::size_t k = p; k < P; ++k) {
      total += g[k] * power;
      power = power * minus_mu / W(static_cast<double>(k - p + 1));
    }
    m[p] = total;
  }
}

}  // namespace

template <class T>
void readout_multipliers(const ReadoutPolynomial& polynomial, std::size_t taylor_terms, const LogitMoments<T>& moments,
                         const Rounder<T>& round, T* m) {
  if constexpr (std::is_same_v<T, mp_t>) {
    multipliers_in<mp_t>(polynomial, taylor_terms, moments.count, moments.sum, moments.sum_sq, m);
  } else {
    std::vector<double> w(taylor_terms);
    multipliers_in<double>(polynomial, taylor_terms, static_cast<double>(moments.count),
                           static_cast<double>(moments.sum), static_cast<double>(moments.sum_sq), w.data());
    for (std::size_t p = 0; p < taylor_terms; ++p) m[p] = static_cast<T>(w[p]);
  }
  round.apply(m, taylor_terms);
}

template void readout_multipliers(const ReadoutPolynomial&, std::size_t, const LogitMoments<float>&,
                                  const Rounder<float>&, float*);
template void readout_multipliers(const ReadoutPolynomial&, std::size_t, const LogitMoments<double>&,
                                  const Rounder<double>&, double*);
template void readout_multipliers(const ReadoutPolynomial&, std::size_t, const LogitMoments<mp_t>&,
                                  const Rounder<mp_t>&, mp_t*);

}  // namespace satalab
