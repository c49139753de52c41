#include "satalab/experiment/a_priori.hpp"

#include <algorithm>
#include <cmath>

#include "satalab/attention/readout_polynomial.hpp"
#include "satalab/numeric/format.hpp"

namespace satalab {
namespace {

double median(std::vector<double> x) {
  if (x.empty()) return std::numeric_limits<double>::quiet_NaN();
  const std::size_t mid = x.size() / 2;
  std::nth_element(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(mid), x.end());
  const double hi = x[mid];
  if (x.size() % 2) return hi;
  const double lo = *std::max_element(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(mid));
  return 0.5 * (lo + hi);
}

// w(s) = Σ_{p<P} m_p s^p / p! (Horner).
double weight(const std::vector<double>& m, double s) {
  double w = 0;
  for (std::size_t p = m.size(); p-- > 0;) w = w * s / static_cast<double>(p + 1) + m[p];
  return w;
}

}  // namespace

double taylor_remainder_bound(std::size_t taylor_terms, double s) {
  const double P = static_cast<double>(taylor_terms);
  // |s|^P / P! in logs (no overflow), times e^{max(0, −s)}.
  const double log_bound = (s == 0 ? -INFINITY : P * std::log(std::abs(s))) - std::lgamma(P + 1) + std::max(0.0, -s);
  return std::exp(log_bound);
}

std::vector<RowEstimate> a_priori_rows(const PointSpec& spec, const QkvArrays& inputs,
                                       const std::vector<std::size_t>& rows) {
  if (!method_is_taylor(spec.method)) return {};
  const AttentionOptions& o = spec.options;
  const std::size_t P = o.taylor_terms, H = inputs.q.heads, n = inputs.q.n_tokens, d = inputs.q.dim;
  const double c = o.softmax_denominator.value_or(std::sqrt(static_cast<double>(d)));
  const Rounder<double> exact(fp64(), Carrier::f64);
  const HeadArrays keys =
      o.key_centring == KeyCentring::none ? inputs.k : centred_keys(inputs.k, o.effective_chunk(), exact);
  std::vector<std::size_t> positions = rows;
  if (positions.empty()) {
    positions.resize(n);
    for (std::size_t i = 0; i < n; ++i) positions[i] = i;
  }
  std::vector<RowEstimate> out(H * positions.size());
#pragma omp parallel for schedule(dynamic) if (H * positions.size() > 64)
  for (std::size_t t = 0; t < out.size(); ++t) {
    const std::size_t h = t / positions.size(), i = positions[t % positions.size()];
    const std::size_t end = o.mask == Mask::causal ? i + 1 : n;
    const double* q = inputs.q.row(h, i);
    std::vector<double> s(end);
    LogitMoments<double> moments;
    for (std::size_t j = 0; j < end; ++j) {
      const double* k = keys.row(h, j);
      double dot = 0;
      for (std::size_t e = 0; e < d; ++e) dot += q[e] * k[e];
      s[j] = dot / c;
      moments.sum += s[j];
      moments.sum_sq += s[j] * s[j];
    }
    moments.count = static_cast<double>(end);
    std::vector<double> m(P);
    readout_multipliers(o.polynomial, P, moments, exact, m.data());
    const auto delta = [&](double x) { return weight(m, x) * std::exp(-x) - 1.0; };  // (w(x) − e^x) / e^x
    RowEstimate& r = out[t];
    r.logit_min = *std::min_element(s.begin(), s.end());
    r.logit_max = *std::max_element(s.begin(), s.end());
    if (o.polynomial.is_taylor()) {
      r.remainder_bound = std::max(taylor_remainder_bound(P, r.logit_min), taylor_remainder_bound(P, r.logit_max));
    } else {
      // The shifted families approximate λ·e^s for a per-query constant λ
      // (e.g. e^{−μ}), which the normalisation cancels: the remainder is that
      // of the ratio w/e^s about its best constant, (max − min) / (max + min).
      double lo = INFINITY, hi = -INFINITY;
      for (std::size_t g = 0; g < kRemainderGrid; ++g) {
        const double x = g + 1 == kRemainderGrid
                             ? r.logit_max
                             : r.logit_min + (r.logit_max - r.logit_min) * static_cast<double>(g) /
                                                 static_cast<double>(kRemainderGrid - 1);
        const double ratio = 1.0 + delta(x);
        lo = std::min(lo, ratio);
        hi = std::max(hi, ratio);
      }
      r.remainder_bound = lo > 0 ? (hi - lo) / (hi + lo) : INFINITY;
    }
    // Softmax weights p_j and the read-out's p'_j = p_j (1 + δ_j) / Σ_k p_k (1 + δ_k).
    double sum_p = 0, sum_w = 0;
    std::vector<double> p(end), pw(end);
    for (std::size_t j = 0; j < end; ++j) {
      p[j] = std::exp(s[j] - r.logit_max);
      pw[j] = p[j] * (1.0 + delta(s[j]));
      sum_p += p[j];
      sum_w += pw[j];
    }
    if (!(sum_w > 0) || !std::isfinite(sum_w)) {
      r.predicted_rel_err = std::numeric_limits<double>::infinity();
      continue;
    }
    double l1 = 0;
    for (std::size_t j = 0; j < end; ++j) l1 += std::abs(pw[j] / sum_w - p[j] / sum_p);
    r.predicted_rel_err = l1;
  }
  return out;
}

APrioriEstimate a_priori_estimate(const PointSpec& spec, const QkvArrays& inputs, const std::vector<std::size_t>& rows) {
  APrioriEstimate e;
  const std::vector<RowEstimate> per_row = a_priori_rows(spec, inputs, rows);
  if (per_row.empty()) return e;
  std::vector<double> bound, predicted;
  for (const RowEstimate& r : per_row) {
    bound.push_back(r.remainder_bound);
    predicted.push_back(r.predicted_rel_err);
  }
  e.remainder_bound_median = median(std::move(bound));
  e.predicted_rel_err_median = median(std::move(predicted));
  return e;
}

}  // namespace satalab
