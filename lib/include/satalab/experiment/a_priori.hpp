#pragma once
// A-priori truncation estimates of one point (docs/architecture.md, Mathematics,
// "Read-out polynomials"): from the query's logits alone, before any
// attention output is compared with the truth.
//
// Per measured row (query i, logits s_j = q_i·k_j / c over the keys it attends
// to, after key centring when the point centres keys), with w the read-out
// polynomial of the point's family at P (taylor: T_P) and
// δ_j = (w(s_j) − e^{s_j}) / e^{s_j} each weight's relative error:
//  - remainder bound: sup over s in [min_j s_j, max_j s_j] of |δ(s)|. taylor:
//    the Lagrange remainder |s|^P / P! · e^{max(0, −s)} at the endpoint that
//    maximises it (a rigorous bound); other families, which approximate
//    λ·e^s for a per-query constant λ the normalisation cancels (e.g. e^{−μ}):
//    (max r − min r) / (max r + min r) of the ratio r = w/e^s = 1 + δ over a
//    grid of kRemainderGrid points of the interval, endpoints included — the
//    sup of |r/λ − 1| for the best λ (an estimate of the sup, not a bound;
//    infinite when w ≤ 0 somewhere on the grid);
//  - predicted relative error: Σ_j |p'_j − p_j|, the L1 distance between the
//    read-out's attention weights p'_j = p_j (1 + δ_j) / Σ_k p_k (1 + δ_k) and
//    softmax's p_j (infinite when that normaliser is ≤ 0). The values are not
//    used: since y' − y = Σ_j (p'_j − p_j)(v_j − y), every output element's
//    truncation error is at most this times max_j |v_jd − y_d|, and with the
//    remainder bound B < 1 (about any λ) at most 2B / (1 − B) times the same.
// Computed in double from the float64 inputs.
#include <cstddef>
#include <limits>
#include <vector>

#include "satalab/experiment/point.hpp"

namespace satalab {

inline constexpr std::size_t kRemainderGrid = 257;

// |s|^P / P! · e^{max(0, −s)}: the Lagrange bound on |e^s − T_P(s)| / e^s.
double taylor_remainder_bound(std::size_t taylor_terms, double s);

struct RowEstimate {
  double remainder_bound = std::numeric_limits<double>::quiet_NaN();
  double predicted_rel_err = std::numeric_limits<double>::quiet_NaN();
  double logit_min = 0, logit_max = 0;
};

// One estimate per (head, measured row), head-major; `rows` as PointSpec::rows
// (empty: every row). Empty for methods other than sata and taylor-quadratic.
std::vector<RowEstimate> a_priori_rows(const PointSpec& spec, const QkvArrays& inputs,
                                       const std::vector<std::size_t>& rows);

// The medians over rows of a_priori_rows (NaN for methods other than sata and taylor-quadratic).
struct APrioriEstimate {
  double remainder_bound_median = std::numeric_limits<double>::quiet_NaN();
  double predicted_rel_err_median = std::numeric_limits<double>::quiet_NaN();
};
APrioriEstimate a_priori_estimate(const PointSpec& spec, const QkvArrays& inputs, const std::vector<std::size_t>& rows);

}  // namespace satalab
