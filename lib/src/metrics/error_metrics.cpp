#include "satalab/metrics/error_metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Marks an element whose relative error is undefined (y_ref == 0) in the
// full-length relative-error buffer; real relative errors are >= 0.
constexpr double kUndefined = -1.0;

// numpy's _lerp (numpy 1.22+ "linear" method): a + (b-a)*t for t < 0.5 and
// b - (b-a)*(1-t) for t >= 0.5, so finite results agree with numpy bit for bit.
// Infinite ends are resolved explicitly (numpy would give inf - inf = NaN):
// an interpolation that touches +inf is +inf, so a non-finite error is never
// averaged away.
double lerp_type7(double a, double b, double t) {
  if (t == 0.0 || a == b) return a;
  if (std::isinf(a) || std::isinf(b)) {
    if (a == -kInf && b == kInf) return kNaN;
    return std::isinf(b) ? b : a;
  }
  const double diff = b - a;
  return t < 0.5 ? a + diff * t : b - diff * (1.0 - t);
}

// Quantiles of `v`, reordering it in place. NaN is replaced by +inf first.
Quantiles quantiles_in_place(std::span<double> v) {
  Quantiles r;
  const std::size_t n = v.size();
  if (n == 0) {
    r.median = r.p05 = r.p95 = r.p99 = r.max = kNaN;
    return r;
  }
  for (double& x : v) {
    if (std::isnan(x)) x = kInf;
  }
  constexpr double kProbs[4] = {0.5, 0.05, 0.95, 0.99};
  std::size_t lo[4];
  double gamma[4];
  // Order statistics needed: floor and floor+1 of each virtual index, and n-1.
  // (A std::vector: GCC 12 flags std::sort on a small C array with a false -Warray-bounds.)
  std::vector<std::size_t> needed;
  needed.reserve(9);
  for (int k = 0; k < 4; ++k) {
    const double virt = static_cast<double>(n - 1) * kProbs[k];
    const double fl = std::floor(virt);
    lo[k] = std::min(static_cast<std::size_t>(fl), n - 1);
    gamma[k] = virt - fl;
    needed.push_back(lo[k]);
    if (lo[k] + 1 < n) needed.push_back(lo[k] + 1);
  }
  needed.push_back(n - 1);
  std::sort(needed.begin(), needed.end());
  needed.erase(std::unique(needed.begin(), needed.end()), needed.end());
  // Successive selections on the shrinking tail: after nth_element at k, every
  // element after k is >= v[k], so the next order statistic lies in (k, n).
  auto first = v.begin();
  for (const std::size_t k : needed) {
    const auto nth = v.begin() + static_cast<std::ptrdiff_t>(k);
    std::nth_element(first, nth, v.end());
    first = nth + 1;
  }
  double* out[4] = {&r.median, &r.p05, &r.p95, &r.p99};
  for (int k = 0; k < 4; ++k) {
    const double a = v[lo[k]];
    const double b = lo[k] + 1 < n ? v[lo[k] + 1] : a;
    *out[k] = lerp_type7(a, b, gamma[k]);
  }
  r.max = v[n - 1];
  return r;
}

// Euclidean norm with exact power-of-two scaling (no overflow or underflow of
// the sum of squares); +inf if any value is NaN or Inf.
template <typename Get>
double scaled_norm(std::size_t count, Get get) {
  double m = 0.0;
  for (std::size_t j = 0; j < count; ++j) {
    const double a = std::fabs(get(j));
    if (!std::isfinite(a)) return kInf;
    m = std::max(m, a);
  }
  if (m == 0.0) return 0.0;
  const int e = std::ilogb(m);
  double sum = 0.0;
  for (std::size_t j = 0; j < count; ++j) {
    const double s = std::ldexp(get(j), -e);
    sum += s * s;
  }
  return std::ldexp(std::sqrt(sum), e);
}

}  // namespace

void Log10Histogram::add(double value) {
  if (std::isnan(value) || std::isinf(value)) {
    ++non_finite;
    return;
  }
  if (value == 0.0) {
    ++zeros;
    return;
  }
  if (value < 0.0) {
    throw InvalidArgument(fmt::format(
        "Log10Histogram::add: value {} is negative; only magnitudes (>= 0, NaN or Inf) are allowed",
        value));
  }
  const double lv = std::log10(value);
  if (lv < kLog10Min) {
    ++underflow;
    return;
  }
  if (lv >= kLog10Max) {
    ++overflow;
    return;
  }
  const double pos = std::floor((lv - kLog10Min) / kLog10BinWidth);
  std::size_t i = pos <= 0.0 ? 0 : std::min(static_cast<std::size_t>(pos), kLog10Bins - 1);
  // Make the bin agree with lower_edge() exactly despite rounding in the division.
  while (i > 0 && lv < lower_edge(i)) --i;
  while (i + 1 < kLog10Bins && lv >= lower_edge(i + 1)) ++i;
  ++counts[i];
}

std::uint64_t Log10Histogram::total() const {
  std::uint64_t t = zeros + underflow + overflow + non_finite;
  for (const std::uint64_t c : counts) t += c;
  return t;
}

Quantiles quantiles(std::span<const double> values) {
  std::vector<double> copy(values.begin(), values.end());
  return quantiles_in_place(copy);
}

ErrorMetrics error_metrics(std::span<const double> y, std::span<const double> y_ref,
                           const OutputShape& shape, std::size_t position_blocks) {
  std::size_t rows = 0, elements = 0;
  if (__builtin_mul_overflow(shape.heads, shape.n_tokens, &rows) ||
      __builtin_mul_overflow(rows, shape.d_value, &elements)) {
    throw InvalidArgument(
        fmt::format("error_metrics: shape heads={} n_tokens={} d_value={} overflows 64 bits",
                    shape.heads, shape.n_tokens, shape.d_value));
  }
  if (y.size() != elements || y_ref.size() != elements) {
    throw InvalidArgument(
        fmt::format("error_metrics: y has {} elements and y_ref has {}, but shape heads={} "
                    "n_tokens={} d_value={} needs {}",
                    y.size(), y_ref.size(), shape.heads, shape.n_tokens, shape.d_value, elements));
  }

  const std::size_t n_tok = shape.n_tokens, d = shape.d_value;
  const std::size_t n_blocks = std::min(position_blocks, n_tok);
  const std::size_t largest_block = n_blocks == 0 ? 0 : (n_tok + n_blocks - 1) / n_blocks;
  // Buffers: abs and rel errors (elements each), normwise errors (rows), and a
  // gather buffer for one position block when there is more than one block.
  const std::size_t gather = n_blocks > 1 ? largest_block * shape.heads * d : 0;
  check_memory(checked_mul(checked_add(checked_add(checked_mul(elements, 2, "error buffers"), rows,
                                                   "error buffers"),
                                       gather, "error buffers"),
                           sizeof(double), "error buffers"),
               "error_metrics buffers");

  ErrorMetrics m;
  m.elements = elements;
  std::vector<double> abs_err(elements);
  std::vector<double> rel_err(elements);  // kUndefined where y_ref == 0
  std::vector<double> norm_err;
  norm_err.reserve(rows);

  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t base = r * d;
    bool row_finite = true;
    for (std::size_t j = 0; j < d; ++j) {
      const std::size_t e = base + j;
      const double yv = y[e], rv = y_ref[e];
      const bool finite = std::isfinite(yv) && std::isfinite(rv);
      if (!std::isfinite(yv)) ++m.non_finite_outputs;
      if (!finite) row_finite = false;
      const double a = finite ? std::fabs(yv - rv) : kInf;
      abs_err[e] = a;
      m.abs_histogram.add(a);
      if (rv == 0.0) {
        ++m.rel_undefined;
        rel_err[e] = kUndefined;
      } else {
        const double rel = finite ? a / std::fabs(rv) : kInf;
        rel_err[e] = rel;
        m.rel_histogram.add(rel);
      }
    }
    const double ref_norm = scaled_norm(d, [&](std::size_t j) { return y_ref[base + j]; });
    if (ref_norm == 0.0) continue;  // relative error undefined for this row
    if (!row_finite) {
      norm_err.push_back(kInf);
      continue;
    }
    const double diff_norm =
        scaled_norm(d, [&](std::size_t j) { return y[base + j] - y_ref[base + j]; });
    norm_err.push_back(diff_norm / ref_norm);
  }

  // Position summaries first: the global quantiles below reorder the buffers.
  if (n_blocks == 1) {
    PositionSummary s;
    s.first_token = 0;
    s.last_token = n_tok - 1;
    m.by_position.push_back(s);  // filled from the global quantiles below
  } else if (n_blocks > 1) {
    std::vector<double> buf;
    buf.reserve(gather);
    const std::size_t per = n_tok / n_blocks, extra = n_tok % n_blocks;
    std::size_t first = 0;
    for (std::size_t b = 0; b < n_blocks; ++b) {
      const std::size_t count = per + (b < extra ? 1 : 0);
      PositionSummary s;
      s.first_token = first;
      s.last_token = first + count - 1;
      for (int which = 0; which < 2; ++which) {
        const std::vector<double>& src = which == 0 ? abs_err : rel_err;
        buf.clear();
        for (std::size_t h = 0; h < shape.heads; ++h) {
          const std::size_t lo = (h * n_tok + first) * d, hi = lo + count * d;
          for (std::size_t e = lo; e < hi; ++e) {
            if (src[e] != kUndefined) buf.push_back(src[e]);
          }
        }
        (which == 0 ? s.abs_error : s.rel_error) = quantiles_in_place(buf);
      }
      m.by_position.push_back(s);
      first += count;
    }
  }

  m.abs_error = quantiles_in_place(abs_err);
  rel_err.erase(std::remove(rel_err.begin(), rel_err.end(), kUndefined), rel_err.end());
  m.rel_error = quantiles_in_place(rel_err);
  m.normwise_rel_error = quantiles_in_place(norm_err);
  if (n_blocks == 1) {
    m.by_position[0].abs_error = m.abs_error;
    m.by_position[0].rel_error = m.rel_error;
  }
  return m;
}

NormaliserStats normaliser_stats(std::span<const double> z) {
  NormaliserStats s;
  s.min_abs = kNaN;  // stays NaN when there is no finite z
  s.min = kNaN;
  bool any_finite = false;
  for (const double v : z) {
    if (v <= 0.0) ++s.non_positive;  // includes -0.0 and -inf; NaN is not <= 0
    if (!std::isfinite(v)) {
      ++s.non_finite;
      continue;
    }
    if (!any_finite) {
      s.min_abs = std::fabs(v);
      s.min = v;
      any_finite = true;
    } else {
      s.min_abs = std::min(s.min_abs, std::fabs(v));
      s.min = std::min(s.min, v);
    }
  }
  return s;
}

}  // namespace satalab
