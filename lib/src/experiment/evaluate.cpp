#include "satalab/experiment/evaluate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/experiment/a_priori.hpp"
#include "satalab/cost/cost.hpp"
#include "satalab/io/hdf5_arrays.hpp"
#include "satalab/memory.hpp"
#include "satalab/workload/gaussian.hpp"
#include "satalab/workload/heavy_tailed.hpp"
#include "satalab/workload/modifiers.hpp"

namespace satalab {
namespace {

// Metrics over measured rows report their position blocks in token positions.
ErrorMetrics at_positions(ErrorMetrics m, const std::vector<std::size_t>& positions) {
  if (!positions.empty()) {
    for (auto& block : m.by_position) {
      block.first_token = positions[block.first_token];
      block.last_token = positions[block.last_token];
    }
  }
  return m;
}

// Rows `positions` of a full output (all rows when positions is empty).
AttentionOutput select_rows(AttentionOutput full, const std::vector<std::size_t>& positions) {
  if (positions.empty()) return full;
  const std::size_t heads = full.y.heads, n = full.y.n_tokens, dv = full.y.dim, rows = positions.size();
  AttentionOutput out;
  out.y = {heads, rows, dv, std::vector<double>(heads * rows * dv)};
  out.z.resize(heads * rows);
  for (std::size_t h = 0; h < heads; ++h) {
    for (std::size_t r = 0; r < rows; ++r) {
      const double* src = full.y.data.data() + (h * n + positions[r]) * dv;
      std::copy(src, src + dv, out.y.data.begin() + (h * rows + r) * dv);
      out.z[h * rows + r] = full.z[h * n + positions[r]];
    }
  }
  out.kv_scales_key = std::move(full.kv_scales_key);
  out.kv_scales_value = std::move(full.kv_scales_value);
  return out;
}

}  // namespace

PointInputs point_inputs(const PointSpec& spec) {
  const GaussianWorkload w{spec.heads, spec.n_tokens, spec.d_key, spec.d_value, spec.scale, spec.seed};
  PointInputs in;
  switch (spec.workload) {
    case Workload::gaussian:
      in.qkv = gaussian_inputs(w);
      break;
    case Workload::heavy_tailed:
      in.qkv = heavy_tailed_inputs(w, spec.dof);
      break;
    case Workload::needle:
      in.needle = needle_inputs(w, spec.needle_logit, spec.softmax_denominator());
      in.qkv = in.needle->qkv;
      break;
    case Workload::fitted: {
      const QkvArrays source = read_qkv(spec.input_file);
      if (source.q.heads != spec.heads || source.q.dim != spec.d_key || source.v.dim != spec.d_value) {
        throw InvalidArgument(fmt::format("fitted: '{}' has heads={}, d_key={}, d_value={} but the point has heads={}, "
                                          "d_key={}, d_value={} (set them to the file's)",
                                          spec.input_file, source.q.heads, source.q.dim, source.v.dim, spec.heads,
                                          spec.d_key, spec.d_value));
      }
      in.qkv = fitted_inputs(source, spec.n_tokens, spec.seed);
      break;
    }
    case Workload::file:
      in.qkv = read_qkv(spec.input_file);
      break;
  }
  apply_modifiers(in.qkv, spec.modifiers, spec.seed, spec.scale, spec.softmax_denominator());
  return in;
}

std::vector<std::pair<Method, PrecisionPolicy>> decomposition_computations(const PointSpec& spec) {
  return {{spec.method, spec.policy},
          {Method::exact, spec.truth},
          {Method::taylor_quadratic, spec.truth},
          {Method::exact, spec.policy}};
}

void check_decomposition_memory(const PointSpec& spec, const QkvArrays& inputs) {
  for (const auto& [m, p] : decomposition_computations(spec)) {
    check_memory(attention_memory_bytes(m, inputs, p, spec.options), fmt::format("{} at {}", method_name(m), p.name));
  }
  if (spec.method == Method::sata) (void)SymmetricBasis(inputs.q.dim, spec.options.taylor_terms);  // table size
}

std::uint64_t point_memory_bytes(const PointSpec& spec) {
  QkvArrays shape_only;  // sizes only: attention_memory_bytes reads the dims
  shape_only.q = {spec.heads, spec.n_tokens, spec.d_key, {}};
  shape_only.k = shape_only.q;
  shape_only.v = {spec.heads, spec.n_tokens, spec.d_value, {}};
  std::uint64_t largest = 0;
  for (const auto& [m, pol] : decomposition_computations(spec)) {
    largest = std::max(largest, attention_memory_bytes(m, shape_only, pol, spec.options));
  }
  const std::uint64_t rows = checked_mul(spec.heads, spec.n_tokens, "point size");
  const std::uint64_t held =
      checked_mul(rows, (2 * spec.d_key + spec.d_value) + 4 * (spec.d_value + 1), "point size") * 8;
  std::uint64_t basis_tables = 0;
  if (spec.method == Method::sata) {
    basis_tables = checked_mul(feature_count(spec.d_key, spec.options.taylor_terms), 24, "symmetric basis tables");
  }
  return checked_add(checked_add(largest, held, "point memory"), basis_tables, "point memory");
}

TruthCache::TruthCache(PointInputs inputs, const PointSpec& first, AttentionComputer compute)
    : inputs_(std::move(inputs)), truth_(first.truth), options_(first.options), compute_(std::move(compute)) {
  options_.query_rows = first.rows;
  options_.recipe = KernelRecipe{};  // truth, oracles and policy baselines never run a kernel recipe
  options_.state_accumulation = StateAccumulation::plain;  // nor a SATA state accumulation mode
}

AttentionOutput TruthCache::compute(Computation role, Method method, const PrecisionPolicy& policy,
                                    const AttentionOptions& options) const {
  if (compute_) return compute_(role, method, inputs_.qkv, policy, options);
  return compute_attention(method, inputs_.qkv, policy, options);
}

const AttentionOutput& TruthCache::truth_output() {
  if (!truth_output_) {
    const auto start = std::chrono::steady_clock::now();
    truth_output_ = compute(Computation::truth, Method::exact, truth_, options_);
    truth_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return *truth_output_;
}

double TruthCache::take_truth_seconds() {
  if (!truth_output_ || truth_seconds_taken_) return 0;
  truth_seconds_taken_ = true;
  return truth_seconds_;
}

const AttentionOutput& TruthCache::oracle(std::size_t taylor_terms, const ReadoutPolynomial& polynomial,
                                          KeyCentring key_centring) {
  const auto key = std::make_pair(taylor_terms, std::string(polynomial_family_name(polynomial.family)) + " " +
                                                    polynomial_parameters(polynomial) + " " +
                                                    std::string(key_centring_name(key_centring)));
  auto it = oracles_.find(key);
  if (it == oracles_.end()) {
    AttentionOptions options = options_;
    options.taylor_terms = taylor_terms;
    options.polynomial = polynomial;
    options.key_centring = key_centring;
    it = oracles_.emplace(key, compute(Computation::oracle, Method::taylor_quadratic, truth_, options)).first;
  }
  return it->second;
}

const AttentionOutput& TruthCache::baseline(const PrecisionPolicy& policy) {
  auto it = baselines_.find(policy.name);
  if (it == baselines_.end()) {
    it = baselines_.emplace(policy.name, compute(Computation::baseline, Method::exact, policy, options_)).first;
  }
  return it->second;
}

const AttentionOutput& TruthCache::recipe_baseline(const KernelRecipe& recipe) {
  const std::string key = fmt::format("{}/{}x{}/{}", recipe.name, recipe.tile_rows, recipe.tile_cols, recipe.seed);
  auto it = recipe_baselines_.find(key);
  if (it == recipe_baselines_.end()) {
    AttentionOptions options = options_;
    options.recipe = recipe;
    it = recipe_baselines_.emplace(key, compute(Computation::baseline, Method::exact, precision_policy("fp32"), options))
             .first;
  }
  return it->second;
}

PointEvaluation evaluate_point(const PointSpec& spec, TruthCache& cache) {
  const auto& rows = cache.rows();
  AttentionOptions options = spec.options;
  // SATA produces every row (and its normalisers are counted over all of
  // them); the quadratic methods compute just the measured rows.
  if (spec.method != Method::sata) options.query_rows = rows;
  AttentionOutput full = cache.compute(Computation::method, spec.method, spec.policy, options);
  const AttentionOutput& truth = cache.truth_output();
  const OutputShape shape{truth.y.heads, truth.y.n_tokens, truth.y.dim};
  const auto metrics = [&](const AttentionOutput& a, const AttentionOutput& b) {
    return at_positions(error_metrics(a.y.data, b.y.data, shape, spec.position_blocks), rows);
  };
  PointEvaluation ev;
  ev.normalisers = normaliser_stats(full.z);
  const PointInputs& inputs = cache.inputs();
  if (inputs.needle && full.y.n_tokens == inputs.qkv.q.n_tokens) {
    ev.needle_hit_rate = needle_hit_rate(*inputs.needle, full.y.data);
  }
  if (inputs.needle && rows.empty()) ev.needle_truth_hit_rate = needle_hit_rate(*inputs.needle, truth.y.data);
  ev.output = spec.method == Method::sata ? select_rows(std::move(full), rows) : std::move(full);
  ev.total = metrics(ev.output, truth);
  if (method_is_taylor(spec.method)) {
    const AttentionOutput& oracle =
        cache.oracle(spec.options.taylor_terms, spec.options.polynomial, spec.options.key_centring);
    ev.truncation = metrics(oracle, truth);
    ev.rounding = metrics(ev.output, oracle);
  }
  // exact-kvquant: the unquantized cache at the same policy.
  const KernelRecipe& recipe = spec.options.recipe;
  if (recipe.kind != RecipeKind::none) {
    // A kernel recipe: the plain implementation at the same precision (FlashAttention's acceptance rule).
    KernelRecipe plain = recipe;
    plain.kind = recipe_steps(recipe.kind).plain;
    plain.name = std::string(recipe_name(plain.kind));
    ev.baseline = plain.kind == recipe.kind ? ev.total : metrics(cache.recipe_baseline(plain), truth);
    return ev;
  }
  ev.baseline = spec.method == Method::exact ? ev.total : metrics(cache.baseline(spec.policy), truth);
  return ev;
}

void fill_result(const PointSpec& spec, const PointEvaluation& ev, TruthCache& cache, bool outputs,
                 PointResult& r) {
  r.bytes_per_sequence =
      sequence_memory_bytes(spec.method, spec.heads, spec.n_tokens, spec.d_key, spec.d_value, spec.policy, spec.options);
  r.total = ev.total;
  r.truncation = ev.truncation;
  r.rounding = ev.rounding;
  r.baseline = ev.baseline;
  r.normalisers = ev.normalisers;
  if (!ev.output.kv_scales_key.empty()) {
    r.kv_key_scale = *std::max_element(ev.output.kv_scales_key.begin(), ev.output.kv_scales_key.end());
    r.kv_value_scale = *std::max_element(ev.output.kv_scales_value.begin(), ev.output.kv_scales_value.end());
  }
  r.needle_hit_rate = ev.needle_hit_rate;
  r.needle_truth_hit_rate = ev.needle_truth_hit_rate;
  const APrioriEstimate estimate = a_priori_estimate(spec, cache.inputs().qkv, cache.rows());
  r.remainder_bound_median = estimate.remainder_bound_median;
  r.predicted_rel_err_median = estimate.predicted_rel_err_median;
  if (outputs) {
    r.y = ev.output.y.data;
    r.y_truth = cache.truth_output().y.data;
    r.z = ev.output.z;
  }
}

}  // namespace satalab
