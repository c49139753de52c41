#pragma once
// The results schema (docs/results-schema.md; internal to io/): the scalar
// fields of a point record in /points column and journal order, the
// decomposition components, the journal's record and header encodings, and
// the validation of what a results file accepts. Keep in step with the doc.
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "journal.hpp"
#include "satalab/io/results_file.hpp"

namespace satalab::detail {

inline constexpr std::size_t kHistColumns = kLog10Bins + 4;  // bins, zeros, underflow, overflow, non_finite
inline constexpr std::uint64_t kNoBlock = std::numeric_limits<std::uint64_t>::max();

// The decomposition components; index 0 is the total error. Prefixes apply to
// /points columns and to the per-point dataset names.
inline constexpr std::array<const char*, 4> kComponentPrefix = {"", "trunc_", "round_", "baseline_"};
inline constexpr std::array<const char*, 4> kComponentFlag = {nullptr, "has_truncation", "has_rounding",
                                                              "has_baseline"};

// The fields of a build, in /builds column order.
inline constexpr std::array<std::pair<const char*, std::string BuildInfo::*>, 5> kBuildColumns = {{
    {"commit", &BuildInfo::commit},
    {"compiler", &BuildInfo::compiler},
    {"flags", &BuildInfo::flags},
    {"isa", &BuildInfo::isa},
    {"exp_library", &BuildInfo::exp_library},
}};

// The scalar fields of a record, in /points column order (also the order of
// the journal payload). `f(prefix, name, field)` is called with a reference to
// each field; Rec is `const PointRecord` (writing) or `PointRecord` (reading).

enum class Kind { u64, u32, f64, str, flag };

template <class T>
constexpr Kind kind_of() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, std::string>) {
    return Kind::str;
  } else if constexpr (std::is_same_v<U, bool>) {
    return Kind::flag;
  } else if constexpr (std::is_same_v<U, double>) {
    return Kind::f64;
  } else if constexpr (std::is_same_v<U, std::uint32_t>) {
    return Kind::u32;
  } else {
    static_assert(std::is_integral_v<U> && std::is_unsigned_v<U> && sizeof(U) == 8, "unsupported field type");
    return Kind::u64;
  }
}

template <class Q, class F>
void quantile_fields(std::string_view prefix, const char* stem, Q& q, F& f) {
  const std::string p = std::string(prefix) + stem;
  f(p, "median", q.median);
  f(p, "p05", q.p05);
  f(p, "p95", q.p95);
  f(p, "p99", q.p99);
  f(p, "max", q.max);
}

template <class M, class F>
void metric_fields(std::string_view prefix, M& m, F& f) {
  f(prefix, "elements", m.elements);
  quantile_fields(prefix, "abs_err_", m.abs_error, f);
  quantile_fields(prefix, "rel_err_", m.rel_error, f);
  quantile_fields(prefix, "normwise_rel_err_", m.normwise_rel_error, f);
  f(prefix, "rel_undefined_count", m.rel_undefined);
  f(prefix, "nonfinite_count", m.non_finite_outputs);
}

// What an absent decomposition component is written as: NaN statistics, zero counts.
const ErrorMetrics& absent_metrics();

template <class Opt, class F>
void optional_component_fields(std::size_t c, Opt& opt, F& f) {
  const std::string_view prefix = kComponentPrefix[c];
  if constexpr (std::is_const_v<Opt>) {
    const bool has = opt.has_value();
    f("", kComponentFlag[c], has);
    metric_fields(prefix, has ? *opt : absent_metrics(), f);
  } else {
    bool has = false;
    f("", kComponentFlag[c], has);
    if (has) {
      opt.emplace();
      metric_fields(prefix, *opt, f);
    } else {
      opt.reset();
      ErrorMetrics scratch;
      metric_fields(prefix, scratch, f);
    }
  }
}

template <class Rec, class F>
void record_fields(Rec& r, F&& f) {
  auto& p = r.params;
  f("", "point_id", p.point_id);
  f("", "method", p.method);
  f("", "taylor_terms", p.taylor_terms);
  f("", "d_key", p.d_key);
  f("", "d_value", p.d_value);
  f("", "heads", p.heads);
  f("", "n_tokens", p.n_tokens);
  f("", "scale", p.scale);
  f("", "precision", p.precision);
  f("", "truth", p.truth);
  f("", "causal", p.causal);
  f("", "chunk", p.chunk);
  f("", "placement", p.placement);
  f("", "workload", p.workload);
  f("", "dof", p.dof);
  f("", "needle_logit", p.needle_logit);
  f("", "input_file", p.input_file);
  f("", "seed", p.seed);
  f("", "softmax_denominator", p.softmax_denominator);
  f("", "truth_rows", p.truth_rows);
  f("", "kv_quant", p.kv_quant);
  f("", "modifiers", p.modifiers);
  f("", "rope_theta", p.rope_theta);
  f("", "outlier_channels", p.outlier_channels);
  f("", "outlier_magnitude", p.outlier_magnitude);
  f("", "key_bias_norm", p.key_bias_norm);
  f("", "sink_tokens", p.sink_tokens);
  f("", "sink_logit", p.sink_logit);
  f("", "sink_alignment", p.sink_alignment);
  auto& s = r.result;
  f("", "status", s.status);
  f("", "truth_used", s.truth_used);
  metric_fields(kComponentPrefix[0], s.total, f);
  optional_component_fields(1, s.truncation, f);
  optional_component_fields(2, s.rounding, f);
  optional_component_fields(3, s.baseline, f);
  f("normaliser_", "min_abs", s.normalisers.min_abs);
  f("normaliser_", "min", s.normalisers.min);
  f("normaliser_", "nonpositive_count", s.normalisers.non_positive);
  f("normaliser_", "nonfinite_count", s.normalisers.non_finite);
  f("", "logit_max_abs", s.logit_max_abs);
  f("", "logit_std", s.logit_std);
  f("", "needle_hit_rate", s.needle_hit_rate);
  f("", "needle_truth_hit_rate", s.needle_truth_hit_rate);
  f("", "state_elements", s.state_elements);
  f("", "flops_per_token", s.flops_per_token);
  f("", "kv_cache_elements", s.kv_cache_elements);
  f("", "bytes_per_sequence", s.bytes_per_sequence);
  f("", "kv_key_scale", s.kv_key_scale);
  f("", "kv_value_scale", s.kv_value_scale);
  f("", "wall_s", s.wall_s);
  f("", "truth_wall_s", s.truth_wall_s);
  // Kernel recipes (schema version 5).
  f("", "recipe", p.recipe);
  f("", "tile_rows", p.tile_rows);
  f("", "tile_cols", p.tile_cols);
  // Read-out polynomials (schema version 5).
  f("", "polynomial", p.polynomial);
  f("", "chebyshev_width", p.chebyshev_width);
  f("", "key_centring", p.key_centring);
  // State accumulation modes (long-context drift; schema version 5).
  f("", "state_accumulation", p.state_accumulation);
  f("", "state_block", p.state_block);
  // A-priori truncation estimates (schema version 5).
  f("", "remainder_bound_median", s.remainder_bound_median);
  f("", "predicted_rel_err_median", s.predicted_rel_err_median);
}

// Component c of a record (0 total, 1 truncation, 2 rounding, 3 baseline);
// nullptr when absent.
const ErrorMetrics* component(const PointRecord& r, std::size_t c);
ErrorMetrics* component(PointRecord& r, std::size_t c);

// Native in-memory layout of one /points row (natural alignment).
struct Column {
  std::string name;
  Kind kind;
  std::size_t offset;
};
struct RowLayout {
  std::vector<Column> columns;
  std::size_t size = 0;
};

std::size_t kind_size(Kind k);
const RowLayout& row_layout();

// Journal payloads (docs/results-schema.md, "Journal format").
void encode_histogram(Encoder& e, const Log10Histogram& h);
void decode_histogram(Decoder& d, Log10Histogram& h);
void encode_quantiles(Encoder& e, const Quantiles& q);
void decode_quantiles(Decoder& d, Quantiles& q);
std::string encode_record(const PointRecord& r);
PointRecord decode_record(std::string_view payload);  // throws Corrupt
std::string encode_header(const SweepMetadata& m);
// `version` is set from the payload; another version than this build's returns {}.
SweepMetadata decode_header(std::string_view payload, std::uint32_t& version);

// What a results file accepts (so that the round trip is exact): InvalidArgument naming the path.
void check_text(const std::string& path, const char* field, const std::string& value);
void validate_record(const std::string& path, const PointRecord& r);
void validate_metadata(const std::string& path, const SweepMetadata& m);

// The index of `build` in `builds`, appended when absent.
std::uint32_t build_index(std::vector<BuildInfo>& builds, const BuildInfo& build);

// Writes a complete results file atomically (results_hdf5.cpp), rows ordered as given.
void write_results_atomically(const std::string& path, const SweepMetadata& m,
                              const std::vector<const PointRecord*>& rows);

}  // namespace satalab::detail
