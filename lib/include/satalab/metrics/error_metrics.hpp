#pragma once
// Error statistics of an approximate attention output against a reference
// (docs/architecture.md §1, §3): elementwise absolute and relative error, normwise per-token
// relative error, quantiles, fixed log10 histograms, summaries by token
// position, and normaliser statistics. All inputs are float64, row-major
// [heads, n_tokens, d_value] for outputs and [heads, n_tokens] for normalisers.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace satalab {

// Quantiles use linear interpolation between order statistics (numpy's default,
// "type 7"). Non-finite errors (from a NaN or Inf output) enter quantiles as
// +inf, so they are never hidden; they are also counted.
struct Quantiles {
  double median = 0, p05 = 0, p95 = 0, p99 = 0, max = 0;
};

// Fixed log10 bins, identical for every run so histograms can be summed and
// compared across files: kLog10Bins bins of width kLog10BinWidth from
// kLog10Min to kLog10Max. Values below 10^kLog10Min (but > 0) are counted in
// `underflow`, values >= 10^kLog10Max in `overflow`, exact zeros in `zeros`,
// NaN/Inf in `non_finite`. Bin i holds kLog10Min + i*w <= log10(e) < kLog10Min + (i+1)*w.
inline constexpr double kLog10Min = -20.0;
inline constexpr double kLog10Max = 5.0;
inline constexpr double kLog10BinWidth = 0.1;
inline constexpr std::size_t kLog10Bins = 250;

struct Log10Histogram {
  std::array<std::uint64_t, kLog10Bins> counts{};
  std::uint64_t zeros = 0, underflow = 0, overflow = 0, non_finite = 0;
  // Lower edge of bin i: kLog10Min + i * kLog10BinWidth.
  static double lower_edge(std::size_t i) { return kLog10Min + static_cast<double>(i) * kLog10BinWidth; }
  void add(double value);
  std::uint64_t total() const;
};

// Position summaries: tokens split into `blocks` contiguous blocks of (nearly)
// equal size over all heads; for each block the quantiles of the elementwise
// absolute and relative error.
struct PositionSummary {
  std::size_t first_token = 0, last_token = 0;  // inclusive range
  Quantiles abs_error, rel_error;
};

struct NormaliserStats {
  double min_abs = 0;           // min |z| over all rows
  double min = 0;               // min z (signed)
  std::uint64_t non_positive = 0;  // rows with z <= 0
  std::uint64_t non_finite = 0;    // rows with NaN/Inf z
};

struct ErrorMetrics {
  std::size_t elements = 0;
  Quantiles abs_error;       // |y - y_ref| elementwise
  Quantiles rel_error;       // |y - y_ref| / |y_ref| elementwise, over elements with y_ref != 0
  Quantiles normwise_rel_error;  // ||y_i - y_ref_i||_2 / ||y_ref_i||_2 per token row
  std::uint64_t rel_undefined = 0;  // elements with y_ref == 0 (excluded from rel_error)
  std::uint64_t non_finite_outputs = 0;  // elements of y that are NaN or Inf
  Log10Histogram abs_histogram, rel_histogram;
  std::vector<PositionSummary> by_position;
};

struct OutputShape {
  std::size_t heads = 0, n_tokens = 0, d_value = 0;
  std::size_t elements() const { return heads * n_tokens * d_value; }
};

// Quantiles of `values` (copied; order of input irrelevant). Empty input gives NaN everywhere.
Quantiles quantiles(std::span<const double> values);

// All statistics of y against y_ref; throws InvalidArgument if sizes disagree with shape.
ErrorMetrics error_metrics(std::span<const double> y, std::span<const double> y_ref, const OutputShape& shape,
                           std::size_t position_blocks = 16);

NormaliserStats normaliser_stats(std::span<const double> z);

}  // namespace satalab
