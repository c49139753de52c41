#pragma once
// One point of an experiment (docs/results-schema.md): its parameters as a
// sweep file and a results file spell them (PointParams), the same resolved to
// the library's types and validated once (PointSpec), and what it measured
// (PointResult). io serialises PointParams and PointResult; the evaluation
// (experiment/evaluate.hpp) works on PointSpec.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "satalab/attention/options.hpp"
#include "satalab/error.hpp"
#include "satalab/metrics/error_metrics.hpp"
#include "satalab/numeric/precision_policy.hpp"
#include "satalab/workload/modifiers.hpp"

namespace satalab {

// Per-position summaries have this many blocks of token positions (fewer when n_tokens is smaller).
inline constexpr std::size_t kPositionBlocks = 16;

// The parameters of one point: every key of a sweep file after expansion.
struct PointParams {
  std::uint64_t point_id = 0;  // index in the expanded grid (stable for a given config)
  std::string method = "sata";
  std::uint32_t taylor_terms = 4;
  std::uint32_t d_key = 8, d_value = 8, heads = 1;
  std::uint64_t n_tokens = 1024;
  double scale = 1.0;
  std::string precision = "fp32";
  std::string truth = "auto";  // resolved truth precision is recorded in PointResult::truth_used
  bool causal = true;
  std::uint32_t chunk = 0;  // 0: default
  std::string placement = "paper";
  std::string workload = "gaussian";  // gaussian, heavy-tailed, needle, fitted, file
  double dof = 3.0;                   // heavy-tailed: Student-t degrees of freedom
  double needle_logit = 8.0;          // needle: logit of the aligned key
  std::string input_file;             // file and fitted workloads
  std::uint64_t seed = 1;
  double softmax_denominator = 0;     // 0: sqrt(d_key)
  // 0: truth (and the Taylor-quadratic oracle and the exact baseline) on every
  // query row; R: on R evenly spaced rows per head (the last always included),
  // and every error statistic over those rows only. Makes long contexts
  // affordable: the truth costs O(R·n) instead of O(n²).
  std::uint64_t truth_rows = 0;
  std::string kv_quant = "none";      // exact-kvquant: the KV-cache scheme (attention/quantized_kv.hpp)
  // Workload modifiers applied after the base distribution, names joined by
  // '+' (workload/modifiers.hpp), "" for none; and their parameters.
  std::string modifiers;
  double rope_theta = 10000.0;
  std::uint32_t outlier_channels = 2;
  double outlier_magnitude = 3.0;
  double key_bias_norm = 4.0;
  std::uint32_t sink_tokens = 1;
  double sink_logit = 10.0;
  double sink_alignment = 4.0;
  // Kernel recipes (attention/recipe.hpp): exact attention rounded as a real
  // kernel rounds it ("none": the precision policy's rounding), and its tiles
  // Br x Bc (0: a tile the point does not read, e.g. for recipe none; the
  // recipe's default 128 x 64 is used).
  std::string recipe = "none";
  std::uint32_t tile_rows = 128;
  std::uint32_t tile_cols = 64;
  // Read-out polynomials (attention/readout_polynomial.hpp): the family of
  // the weight SATA and Taylor-quadratic attention give a logit, and
  // chebyshev's interval half-width in standard deviations of the logits.
  std::string polynomial = "taylor";
  double chebyshev_width = 2.0;
  std::string key_centring = "none";  // none, first-chunk
  // Long-context drift: how SATA's state sums its tokens (plain, compensated,
  // blocked, fp64; AttentionOptions::state_accumulation) and the tokens per
  // block of blocked. Read by sata only.
  std::string state_accumulation = "plain";
  std::uint32_t state_block = 1024;
};

// Query rows per head at which a point's errors are measured: n_tokens, or
// truth_rows when that is smaller (positions (r+1)·n/R - 1, r = 0..R-1,
// integer division). Raw outputs have this many rows.
inline std::uint64_t measured_rows(const PointParams& p) {
  return p.truth_rows == 0 || p.truth_rows >= p.n_tokens ? p.n_tokens : p.truth_rows;
}

// c in s = q.k / c: the point's softmax_denominator, or sqrt(d_key) when 0.
double softmax_denominator(const PointParams& p);

// A rough estimate of a point's seconds (truth, oracle, baseline, method) on
// one 2-core machine; what `satalab sweep --dry-run` prints and shards balance.
double point_seconds_estimate(const PointParams& p);

// What a point measured. Unmeasured numbers are NaN (e.g. truncation for exact).
struct PointResult {
  std::string status = "ok";  // "ok", or "failed: <one-line reason>"
  std::string truth_used;     // e.g. "fp64", "mp128"
  ErrorMetrics total;                     // method vs exact at truth precision
  std::optional<ErrorMetrics> truncation;  // taylor-quadratic@truth vs exact@truth
  std::optional<ErrorMetrics> rounding;    // method vs taylor-quadratic@truth
  std::optional<ErrorMetrics> baseline;    // exact@policy vs exact@truth
  NormaliserStats normalisers;
  double logit_max_abs = 0, logit_std = 0;
  double needle_hit_rate = std::numeric_limits<double>::quiet_NaN();  // needle workload only
  // The same for exact attention at truth precision: how often the needle can
  // be retrieved at all (NaN unless needle, and when truth_rows < n_tokens).
  double needle_truth_hit_rate = std::numeric_limits<double>::quiet_NaN();
  std::uint64_t state_elements = 0, flops_per_token = 0, kv_cache_elements = 0;
  std::uint64_t bytes_per_sequence = 0;  // KV cache (exact methods) or SATA state, all heads (compute.hpp)
  // exact-kvquant with a float cast: the absmax scale of K and V (the largest per-head one with -head).
  double kv_key_scale = std::numeric_limits<double>::quiet_NaN();
  double kv_value_scale = std::numeric_limits<double>::quiet_NaN();
  double wall_s = 0;        // this point's method + metrics
  double truth_wall_s = 0;  // truth computation (0 when reused from another point)
  // Raw outputs, only with --save-outputs (float64 [heads, rows, d_value] and
  // [heads, rows], rows = measured_rows(params)).
  std::vector<double> y, y_truth, z;
  // A-priori truncation estimates (experiment/a_priori.hpp): medians over the
  // measured rows of the read-out polynomial's remainder bound on the query's
  // logit interval and of the predicted relative error; NaN unless the method
  // is sata or taylor-quadratic.
  double remainder_bound_median = std::numeric_limits<double>::quiet_NaN();
  double predicted_rel_err_median = std::numeric_limits<double>::quiet_NaN();
};

struct PointRecord {
  PointParams params;
  PointResult result;
  // In a results file: the index of the build that computed the point in
  // SweepMetadata::builds (io/results_file.hpp).
  std::uint32_t build = 0;
};

// A point that produced no output (skipped or failed): its statistics are NaN,
// never zeros that could pass for a perfect result.
PointResult unmeasured_result(const std::string& status);

// The cost-model columns of a point (closed forms; also for skipped points):
// state_elements, flops_per_token, kv_cache_elements.
void fill_costs(const PointParams& p, PointResult& r);

// Where a point's inputs come from.
enum class Workload { gaussian, heavy_tailed, needle, fitted, file };
Workload workload_by_name(std::string_view name);  // InvalidArgument lists the names
std::string_view workload_name(Workload workload);

// The truth precision for a policy: `name` is "auto", "fp64" or "mp<bits>".
// auto: fp64 for policies at fp32 and below (float carrier), mp128 for fp64,
// mp<2*bits> for mp<bits>. Other names throw InvalidArgument.
PrecisionPolicy truth_policy(std::string_view name, const PrecisionPolicy& policy);

// A (method, options) pair that cannot be computed. The message is kept with
// its option names as `@key` (taylor_terms, kv_quant, method,
// softmax_denominator): what() spells them as a sweep file and Python do
// ("taylor_terms P = 0 is invalid ..."), a command line spells them as its
// flags with spelled().
class InvalidMethodOption : public InvalidArgument {
 public:
  explicit InvalidMethodOption(std::string message_template);
  // The message with each @key replaced by spell(key).
  std::string spelled(std::string (*spell)(std::string_view key)) const;

 private:
  std::string template_;
};

// The one check of a method with its options: P >= 1 (and <= the basis limit
// for sata), kv_quant other than none only for exact-kvquant, a softmax
// denominator finite and > 0, a read-out polynomial other than taylor only
// for sata and taylor-quadratic, with P >= its minimum and its parameters in
// range, a state accumulation other than plain only for sata and
// state_block >= 1. Throws InvalidMethodOption.
void validate_method_options(Method method, const AttentionOptions& options);
// The same and, for a kernel recipe, that the method is exact, the tiles are
// >= 1 and the precision is fp32 (a recipe sets every format itself); and
// state accumulation fp64 not at an mp precision.
void validate_method_options(Method method, const AttentionOptions& options, const PrecisionPolicy& policy);

// One point, typed: the method, its policy and truth, the attention options
// (query_rows empty) and the workload, as evaluate_point computes them.
struct PointSpec {
  Method method = Method::sata;
  PrecisionPolicy policy;
  PrecisionPolicy truth;
  AttentionOptions options;
  Workload workload = Workload::gaussian;
  std::size_t heads = 1, n_tokens = 0, d_key = 0, d_value = 0;
  double scale = 1.0, dof = 3.0, needle_logit = 8.0;
  std::uint64_t seed = 1;
  std::string input_file;
  std::vector<WorkloadModifier> modifiers;  // applied in order after the base workload
  // Query positions where errors are measured (strictly increasing); empty: every row.
  std::vector<std::size_t> rows;
  std::size_t position_blocks = kPositionBlocks;
  double softmax_denominator() const;  // options.softmax_denominator or sqrt(d_key)
};

// The point's workload modifiers with their parameters, in the order listed.
std::vector<WorkloadModifier> workload_modifiers(const PointParams& p);

// Resolves and validates a point's names (method, precision, truth,
// placement, kv_quant, workload, modifiers): InvalidArgument naming the bad value.
PointSpec point_spec(const PointParams& p);

// The measured positions of a point: empty for every row, else
// measured_rows(p) evenly spaced positions (r+1)·n/R - 1, the last n - 1.
std::vector<std::size_t> measured_positions(const PointParams& p);

}  // namespace satalab
