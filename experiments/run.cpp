// `satalab run`: one method at one precision policy on one input set, against
// a ground truth, with the four-way error decomposition (docs/architecture.md)
// computed by the library's evaluate_point (experiment/evaluate.hpp).
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>

#include "commands.hpp"
#include "satalab/attention/compute.hpp"
#include "satalab/attention/quantized_kv.hpp"
#include "satalab/error.hpp"
#include "satalab/io/hdf5_arrays.hpp"
#include "satalab/memory.hpp"
#include "satalab/experiment/evaluate.hpp"
#include "satalab/metrics/error_metrics.hpp"
#include "satalab/numeric/precision_policy.hpp"
#include "satalab/io/output_path.hpp"
#include "satalab/workload/gaussian.hpp"
#include "satalab/workload/modifiers.hpp"
#include "satalab/version.hpp"

namespace satalab::cli {
namespace {

struct RunOptions {
  std::string method = "sata";
  std::string kv_quant = "none";
  std::size_t taylor_terms = 4;
  std::string precision = "fp32";
  std::string truth = "auto";
  bool non_causal = false;
  std::size_t chunk = 0;
  std::string placement = "paper";
  std::optional<double> softmax_denominator;
  GaussianWorkload workload;
  std::size_t d_value = 0;  // 0: equal to d_key
  std::string input;
  std::string fitted;         // fit a per-head gaussian to this file's q, k, v
  PointParams modifiers;      // the modifiers and their parameters (modifiers, rope_theta, ...)
  std::string save;
  bool overwrite = false;
  std::uint64_t memory_limit = 0;
  std::size_t position_blocks = 16;
  // Kernel recipes (attention/recipe.hpp).
  std::string recipe = "none";
  std::size_t tile_rows = KernelRecipe::kDefaultTileRows;
  std::size_t tile_cols = KernelRecipe::kDefaultTileCols;
  // Read-out polynomials (attention/readout_polynomial.hpp).
  std::string polynomial = "taylor";
  double chebyshev_width = 2.0;
  std::string key_centring = "none";
  // Long-context drift: SATA's state accumulation mode.
  std::string state_accumulation = "plain";
  std::size_t state_block = 1024;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void print_metric_row(const std::string& label, const ErrorMetrics& m) {
  fmt::print("  {:<42} {:>10.3e} {:>10.3e} {:>10.3e}   {:>10.3e} {:>10.3e} {:>10.3e}   {:>10.3e}\n", label,
             m.abs_error.median, m.abs_error.p95, m.abs_error.max, m.rel_error.median, m.rel_error.p95,
             m.rel_error.max, m.normwise_rel_error.median);
}

void print_report(const RunOptions& o, Method method, const PrecisionPolicy& policy, const PrecisionPolicy& truth,
                  const QkvArrays& inputs, const AttentionOptions& attention, const ErrorMetrics& total,
                  const std::optional<ErrorMetrics>& truncation, const std::optional<ErrorMetrics>& rounding,
                  const ErrorMetrics& baseline, const NormaliserStats& normalisers, double c, double method_s,
                  double total_s) {
  const bool causal = attention.mask == Mask::causal;
  fmt::print("satalab run: method={} {} precision={} (input {}, compute {}, accumulate {}) truth=exact@{}\n",
             method_name(method),
             method == Method::exact_kvquant ? "kv_quant=" + attention.kv_quant.name
             : attention.recipe.kind != RecipeKind::none
                 ? fmt::format("recipe={} tiles={}x{}", attention.recipe.name, attention.recipe.tile_rows,
                               attention.recipe.tile_cols)
                 : fmt::format("P={}", attention.taylor_terms),
             policy.name, policy.input.name, policy.compute.name, policy.accumulate.name, truth.name);
  fmt::print("  {} placement={} c={:.6g}{}\n", causal ? "causal" : "non-causal", placement_name(attention.placement), c,
             method == Method::sata && causal ? fmt::format(" chunk={}", attention.effective_chunk()) : "");
  if (attention.key_centring != KeyCentring::none) {
    fmt::print("  key centring {}\n", key_centring_name(attention.key_centring));
  }
  if (attention.state_accumulation != StateAccumulation::plain) {
    fmt::print("  state accumulation {}{}\n", state_accumulation_name(attention.state_accumulation),
               attention.state_accumulation == StateAccumulation::blocked
                   ? fmt::format(" state_block={}", attention.state_block)
                   : "");
  }
  if (!attention.polynomial.is_taylor()) {
    const std::string parameters = polynomial_parameters(attention.polynomial);
    fmt::print("  read-out polynomial {}{}\n", polynomial_family_name(attention.polynomial.family),
               parameters.empty() ? "" : " " + parameters);
  }
  std::string source =
      !o.fitted.empty()  ? fmt::format("fitted to {} seed={}", std::filesystem::path(o.fitted).filename().string(),
                                       o.workload.seed)
      : o.input.empty() ? fmt::format("gaussian scale={} seed={}", o.workload.scale, o.workload.seed)
                        : fmt::format("file {}", std::filesystem::path(o.input).filename().string());
  if (!o.modifiers.modifiers.empty()) source += " modifiers=" + o.modifiers.modifiers;
  const LogitStats logits = logit_stats(inputs, c, causal);
  fmt::print("  inputs: {} heads={} n_tokens={} d_key={} d_value={}; logits s=q.k/c: max|s|={:.3g} std={:.3g}\n\n",
             source, inputs.q.heads, inputs.q.n_tokens, inputs.q.dim, inputs.v.dim, logits.max_abs, logits.std);
  fmt::print("  {:<42} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10}   {:>10}\n", "error", "abs med", "abs p95",
             "abs max", "rel med", "rel p95", "rel max", "norm med");
  print_metric_row(fmt::format("total       {} vs exact@{}", method_name(method), truth.name), total);
  if (truncation) print_metric_row(fmt::format("truncation  taylor-quad@{} vs exact", truth.name), *truncation);
  if (rounding) {
    print_metric_row(fmt::format("rounding    {} vs taylor-quad@{}", method_name(method), truth.name), *rounding);
  }
  if (attention.recipe.kind != RecipeKind::none) {
    print_metric_row(fmt::format("baseline    {} vs exact@{}", recipe_name(recipe_steps(attention.recipe.kind).plain),
                                 truth.name),
                     baseline);
  } else {
    print_metric_row(fmt::format("baseline    exact@{} vs exact@{}", policy.name, truth.name), baseline);
  }
  fmt::print("\n  median absolute error: 10^{:.3f}   median relative error: 10^{:.3f}\n",
             std::log10(total.abs_error.median), std::log10(total.rel_error.median));
  fmt::print("  normalisers ({} rows): min |z| = {:.3e}, min z = {:.3e}, z <= 0: {}, non-finite z: {}\n",
             inputs.q.heads * inputs.q.n_tokens, normalisers.min_abs, normalisers.min, normalisers.non_positive,
             normalisers.non_finite);
  fmt::print("  non-finite outputs: {} of {}; relative error undefined (truth = 0): {}\n", total.non_finite_outputs,
             total.elements, total.rel_undefined);
  fmt::print("  time: method {:.3f} s, all {:.3f} s ({} threads)\n", method_s, total_s, omp_get_max_threads());
}

// Memory per sequence, and for exact-kvquant the cache's parts and the cast scales.
void print_memory(Method method, const AttentionOptions& attention, const QkvArrays& inputs,
                  std::uint64_t sequence_bytes, const AttentionOutput& output) {
  fmt::print("  memory per sequence ({}): {} bytes, {:.4g} bytes per token\n",
             method == Method::sata ? "SATA state, accumulate format" : "KV cache", sequence_bytes,
             static_cast<double>(sequence_bytes) / static_cast<double>(inputs.q.n_tokens));
  if (method != Method::exact_kvquant) return;
  const KvQuantScheme& scheme = attention.kv_quant;
  if (scheme.kind == KvQuantKind::none) return;
  const std::size_t n = inputs.q.n_tokens, sinks = std::min(scheme.sink_tokens, n);
  const std::size_t quantized = kv_quantized_prefix(scheme, KvRole::value, n - 1, n) - sinks;
  fmt::print("  kv_quant {}: {} tokens quantized, {} unquantized (residual{}){}\n", scheme.name, quantized,
             n - sinks - quantized, scheme.residual_per_query ? ", as the last query reads the cache" : "",
             sinks ? fmt::format(", {} sink tokens in 16 bits", sinks) : std::string());
  if (!output.kv_scales_key.empty()) {
    fmt::print("  absmax scales: K {:.6g}, V {:.6g}\n", fmt::join(output.kv_scales_key, " "),
               fmt::join(output.kv_scales_value, " "));
  }
}

// The command line's flag for an option key of the library's messages.
std::string flag_for(std::string_view key) {
  std::string flag = "--" + std::string(key);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

int run(const RunOptions& o, const std::string& command_line) {
  const auto start = std::chrono::steady_clock::now();
  if (o.memory_limit) set_memory_limit_bytes(o.memory_limit);
  PointSpec spec;
  spec.method = method_by_name(o.method);
  spec.policy = precision_policy(o.precision);
  spec.truth = truth_policy(o.truth, spec.policy);
  AttentionOptions& attention = spec.options;
  attention.taylor_terms = o.taylor_terms;
  attention.mask = o.non_causal ? Mask::none : Mask::causal;
  attention.chunk = o.chunk;
  attention.placement = placement_by_name(o.placement);
  attention.softmax_denominator = o.softmax_denominator;
  attention.kv_quant = kv_quant_scheme(o.kv_quant);
  attention.recipe = kernel_recipe(o.recipe);
  attention.recipe.tile_rows = o.tile_rows;
  attention.recipe.tile_cols = o.tile_cols;
  attention.recipe.seed = o.workload.seed;
  attention.polynomial.family = polynomial_family_by_name(o.polynomial);
  attention.polynomial.chebyshev_width = o.chebyshev_width;
  attention.key_centring = key_centring_by_name(o.key_centring);
  attention.state_accumulation = state_accumulation_by_name(o.state_accumulation);
  attention.state_block = o.state_block;
  spec.position_blocks = o.position_blocks;
  try {
    validate_method_options(spec.method, attention, spec.policy);
  } catch (const InvalidMethodOption& e) {
    throw InvalidArgument(e.spelled(flag_for));
  }
  const Method method = spec.method;
  const PrecisionPolicy& policy = spec.policy;
  const PrecisionPolicy& truth = spec.truth;
  if (!o.save.empty() && !o.overwrite && std::filesystem::exists(o.save)) {
    throw InvalidArgument(fmt::format("--save '{}': file exists (use --force to replace it)", o.save));
  }
  // Everything else that could stop the file being written, before any work.
  if (!o.save.empty()) {
    try {
      check_output_path(o.save, o.overwrite ? OutputMode::replace : OutputMode::create);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(fmt::format("--save: {}", e.what()));
    }
  }
  const std::vector<WorkloadModifier> modifiers = workload_modifiers(o.modifiers);
  // --kv-quant ...-prerope rotates the keys back by the workload's RoPE (quantized_kv.hpp).
  for (const WorkloadModifier& m : modifiers)
    if (m.kind == ModifierKind::rope) attention.kv_rope_theta = m.rope_theta;
  if (attention.kv_quant.pre_rope && !attention.kv_rope_theta) {
    throw InvalidArgument(fmt::format("--kv-quant '{}' quantizes keys before RoPE and needs --modifiers with rope",
                                      attention.kv_quant.name));
  }

  PointInputs point;
  if (!o.fitted.empty()) {
    point.qkv = fitted_inputs(read_qkv(o.fitted), o.workload.n_tokens, o.workload.seed);
  } else if (o.input.empty()) {
    GaussianWorkload w = o.workload;
    w.d_value = o.d_value ? o.d_value : w.d_key;
    point.qkv = gaussian_inputs(w);
  } else {
    point.qkv = read_qkv(o.input);
  }
  const double c_inputs = o.softmax_denominator.value_or(std::sqrt(static_cast<double>(point.qkv.q.dim)));
  apply_modifiers(point.qkv, modifiers, o.workload.seed, o.workload.scale, c_inputs);
  spec.heads = point.qkv.q.heads;
  spec.n_tokens = point.qkv.q.n_tokens;
  spec.d_key = point.qkv.q.dim;
  spec.d_value = point.qkv.v.dim;
  check_recipe_shape(attention.recipe, spec.d_key);
  // Check every computation of this run against the memory limit before any starts.
  check_decomposition_memory(spec, point.qkv);

  fmt::print(stderr, "satalab run: {} heads x {} tokens\n", point.qkv.q.heads, point.qkv.q.n_tokens);
  double method_seconds = 0;
  const AttentionComputer timed = [&](Computation role, Method m, const QkvArrays& qkv, const PrecisionPolicy& p,
                                      const AttentionOptions& options) {
    const char* labels[] = {method_name(method).data(), "truth: exact", "taylor-quadratic", "baseline: exact"};
    fmt::print(stderr, "  computing {:<34} ... ", fmt::format("{} at {}", labels[static_cast<int>(role)], p.name));
    const auto begin = std::chrono::steady_clock::now();
    AttentionOutput out = compute_attention(m, qkv, p, options);
    const double seconds = seconds_since(begin);
    if (role == Computation::method) method_seconds = seconds;
    fmt::print(stderr, "{:.3f} s\n", seconds);
    return out;
  };
  TruthCache cache(std::move(point), spec, timed);
  const PointEvaluation result = evaluate_point(spec, cache);
  const QkvArrays& inputs = cache.inputs().qkv;
  const double c = o.softmax_denominator.value_or(std::sqrt(static_cast<double>(inputs.q.dim)));
  print_report(o, method, policy, truth, inputs, attention, result.total, result.truncation, result.rounding,
               result.baseline, result.normalisers, c, method_seconds, seconds_since(start));
  const std::uint64_t sequence_bytes = sequence_memory_bytes(method, inputs.q.heads, inputs.q.n_tokens, inputs.q.dim,
                                                             inputs.v.dim, policy, attention);
  print_memory(method, attention, inputs, sequence_bytes, result.output);

  if (!o.save.empty()) {
    std::map<std::string, std::string> attributes{
        {"satalab_version", satalab::version()},
        {"git_commit", satalab::git_commit()},
        {"command_line", command_line},
        {"method", std::string(method_name(method))},
        {"taylor_terms", std::to_string(attention.taylor_terms)},
        {"precision", policy.name},
        {"truth", "exact@" + truth.name},
        {"mask", attention.mask == Mask::causal ? "causal" : "non-causal"},
        {"chunk", std::to_string(attention.effective_chunk())},
        {"coefficient_placement", std::string(placement_name(attention.placement))},
        {"softmax_denominator", fmt::format("{:.17g}", c)},
        {"kv_quant", attention.kv_quant.name},
        {"recipe", attention.recipe.name},
        {"tile_rows", std::to_string(attention.recipe.kind == RecipeKind::none ? 0 : attention.recipe.tile_rows)},
        {"tile_cols", std::to_string(attention.recipe.kind == RecipeKind::none ? 0 : attention.recipe.tile_cols)},
        {"bytes_per_sequence", std::to_string(sequence_bytes)},
        {"workload", !o.fitted.empty() ? "fitted" : o.input.empty() ? "gaussian" : "file"},
        {"modifiers", o.modifiers.modifiers},
        {"polynomial", std::string(polynomial_family_name(attention.polynomial.family))},
        {"chebyshev_width", fmt::format("{:.17g}", attention.polynomial.chebyshev_width)},
        {"key_centring", std::string(key_centring_name(attention.key_centring))},
        {"state_accumulation", std::string(state_accumulation_name(attention.state_accumulation))},
        {"state_block", std::to_string(attention.state_block)},
    };
    if (!result.output.kv_scales_key.empty()) {
      attributes["kv_key_scales"] = fmt::format("{:.17g}", fmt::join(result.output.kv_scales_key, " "));
      attributes["kv_value_scales"] = fmt::format("{:.17g}", fmt::join(result.output.kv_scales_value, " "));
    }
    write_run_output(o.save, result.output.y, cache.truth_output().y, result.output.z, attributes, o.overwrite);
    fmt::print("  saved y, y_truth, z to {}\n", o.save);
  }
  return 0;
}

}  // namespace

Runner add_run_command(CLI::App& app, const std::string& command_line) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Run one attention method at one precision policy and print its error against exact attention at a\n"
      "truth precision, decomposed into truncation (Taylor-quadratic vs exact, at truth precision), rounding\n"
      "(method vs Taylor-quadratic at truth precision) and baseline (exact at the method's policy vs truth).\n"
      "Inputs are generated (q, k ~ N(0, scale^2), v ~ N(0, 1)) or read from an HDF5 file.");
  cmd->add_option("--method", o->method,
                  "sata, taylor-quadratic, exact, or exact-kvquant (exact attention over K and V as the\n"
                  "--kv-quant scheme stores them in a KV cache)")
      ->capture_default_str();
  cmd->add_option("--kv-quant", o->kv_quant,
                  "exact-kvquant's KV-cache scheme: none; fp16, bf16, e4m3, e4m3sat, e5m2 (cast with an absmax\n"
                  "scale per tensor; -head: per head; -unscaled: plain cast, overflow as the format says);\n"
                  "int8 (symmetric absmax per token); int4-g<G>, int2-g<G> (asymmetric min/max, groups of G:\n"
                  "keys per channel along tokens, values per token along channels, as KIVI); any but none\n"
                  "with -r<R> keeps the last R tokens unquantized. Scales: fp32 for casts, fp16 (with\n"
                  "zero points) for integers. Further suffixes, in this order, after those: -prerope (keys\n"
                  "quantized before RoPE, rotated after; needs --modifiers rope), -o[<f>] (dense-and-sparse:\n"
                  "the largest fraction f in (0, 1) of entries, default 0.01, kept exactly), -s<S> (the first\n"
                  "S tokens, attention sinks, kept in 16 bits), -rq<R> instead of -r<R> (each query keeps its\n"
                  "own R most recent tokens; keys of int4/int2 quantized in whole groups only, as KIVI's\n"
                  "decoder; causal only). e.g. e4m3, int8, int4-g32, int2-g32-r128, int4-g32-prerope-o-s4-rq128")
      ->capture_default_str();
  cmd->add_option("--recipe", o->recipe,
                  "Kernel recipe of method exact (precision fp32; the recipe sets every format): none (the\n"
                  "policy's rounding); flash2-bf16, flash2-fp16 (FlashAttention-2: S fp32 per Br x Bc tile,\n"
                  "running max and sum fp32, P rounded to 16 bits, P.V fp32, output 16-bit); flash2-bf16-acc16\n"
                  "(the flash algorithm with S, the sum and the accumulator in bf16 too); sdpa-math-bf16,\n"
                  "sdpa-math-fp16 (PyTorch's materialised math path: S, softmax and output rounded to 16 bits);\n"
                  "sdpa-math-fp8 (e4m3 per head, S and P fp16: FlashAttention-3's baseline); flash3-fp8,\n"
                  "flash3-fp8-hadamard (e4m3 Q, K, V with per-block scales, P e4m3, fp32 sums; -hadamard: Q\n"
                  "and K rotated by a random Hadamard transform from --seed); sage-int8 (SageAttention: K\n"
                  "minus its mean, Q and K int8 per block, P.V fp16 with fp32 sums). Baseline row: the\n"
                  "plain implementation at the same precision (sdpa-math-*). Steps: attention/recipe.hpp")
      ->capture_default_str();
  cmd->add_option("--tile-rows", o->tile_rows,
                  "Recipe tile Br: query rows per block of the Q quantisation scales (>= 1; larger than\n"
                  "n_tokens: one block of the whole sequence)")
      ->capture_default_str();
  cmd->add_option("--tile-cols", o->tile_cols,
                  "Recipe tile Bc: keys per tile of the online softmax and per block of the K and V scales\n"
                  "(>= 1; larger than n_tokens: one tile of the whole sequence)")
      ->capture_default_str();
  cmd->add_option("--taylor-terms,-P", o->taylor_terms, "Number of Taylor terms P (degrees 0..P-1)")
      ->capture_default_str();
  cmd->add_option("--precision", o->precision,
                  "Precision policy: fp64, fp32, bf16, fp16, fp16-acc32, bf16-acc32, e4m3-acc32, e5m2-acc32,\n"
                  "e4m3sat-acc32, or mp<bits> (e.g. mp256)")
      ->capture_default_str();
  cmd->add_option("--truth", o->truth,
                  "Precision of the exact-attention truth: fp64 or mp<bits>; auto = fp64 for policies at fp32\n"
                  "and below, mp128 for fp64, mp<2*bits> for mp<bits>")
      ->capture_default_str();
  auto causal_flag = std::make_shared<bool>(false);
  auto* causal = cmd->add_flag("--causal", *causal_flag, "Causal attention (keys j <= i), the default");
  cmd->add_flag("--non-causal", o->non_causal, "Every query attends to every key")->excludes(causal);
  cmd->add_option("--chunk", o->chunk, "SATA causal prefill chunk size (default 64)")->check(CLI::PositiveNumber);
  cmd->add_option("--placement", o->placement,
                  "Where w(t)/c^p goes: paper (alpha_p on keys, counts on queries), symmetric (sqrt on both),\n"
                  "query, key, prescaled (q/sqrt(c), k/sqrt(c), weights on queries)")
      ->capture_default_str();
  cmd->add_option("--softmax-denominator", o->softmax_denominator, "c in s = q.k/c (default sqrt(d_key))");
  auto* heads = cmd->add_option("--heads", o->workload.heads, "Generated inputs: number of heads")->capture_default_str();
  auto* n = cmd->add_option("--n-tokens", o->workload.n_tokens, "Generated inputs: tokens per head")->capture_default_str();
  auto* dk = cmd->add_option("--d-key", o->workload.d_key, "Generated inputs: head size of q and k")->capture_default_str();
  auto* dv = cmd->add_option("--d-value", o->d_value, "Generated inputs: head size of v (default d_key)");
  auto* scale = cmd->add_option("--scale", o->workload.scale, "Generated inputs: standard deviation of q and k entries")
                    ->capture_default_str();
  auto* seed = cmd->add_option("--seed", o->workload.seed, "Generated inputs: random seed")->capture_default_str();
  auto* input = cmd->add_option("--input", o->input,
                  "HDF5 file with datasets q, k, v of shape [heads, n_tokens, d] (float32 or float64)")
      ->excludes(heads)
      ->excludes(n)
      ->excludes(dk)
      ->excludes(dv)
      ->excludes(scale)
      ->excludes(seed);
  cmd->add_option("--fitted", o->fitted,
                  "Generate inputs from a per-head gaussian fitted to this HDF5 file's q, k, v (mean and\n"
                  "covariance per head); heads and head sizes from the file, --n-tokens and --seed as given")
      ->excludes(input)
      ->excludes(heads)
      ->excludes(dk)
      ->excludes(dv)
      ->excludes(scale);
  cmd->add_option("--modifiers", o->modifiers.modifiers,
                  "Workload modifiers applied to the inputs in order, joined by '+': rope (rotary positions),\n"
                  "outliers (a few large channels in q and k), key-bias (a shared key direction), sink (leading\n"
                  "tokens every query attends to), e.g. rope+outliers");
  cmd->add_option("--rope-theta", o->modifiers.rope_theta, "rope: base theta (channel pair t turns by i*theta^(-2t/d))")
      ->capture_default_str();
  cmd->add_option("--outlier-channels", o->modifiers.outlier_channels, "outliers: number of channels")
      ->capture_default_str();
  cmd->add_option("--outlier-magnitude", o->modifiers.outlier_magnitude, "outliers: factor on those channels")
      ->capture_default_str();
  cmd->add_option("--key-bias-norm", o->modifiers.key_bias_norm, "key-bias: norm of the direction added to every key")
      ->capture_default_str();
  cmd->add_option("--sink-tokens", o->modifiers.sink_tokens, "sink: number of leading sink tokens")
      ->capture_default_str();
  cmd->add_option("--sink-logit", o->modifiers.sink_logit, "sink: mean logit s = q.k/c a sink draws")
      ->capture_default_str();
  cmd->add_option("--sink-alignment", o->modifiers.sink_alignment,
                  "sink: the queries' shared component in units of --scale (sink logits' spread = logit/alignment)")
      ->capture_default_str();
  cmd->add_option("--save", o->save, "Write y, y_truth [heads, n, d_value] and z [heads, n] (float64) to this HDF5 file");
  cmd->add_flag("--force", o->overwrite, "Replace the --save file if it exists");
  cmd->add_option("--memory-limit", o->memory_limit,
                  "Refuse work needing more memory than this (bytes; suffixes KB, MB, GB accepted; default 80% of RAM)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--position-blocks", o->position_blocks, "Blocks of token positions for per-position summaries")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--polynomial", o->polynomial,
                  "Read-out polynomial of sata and taylor-quadratic (the weight of a logit s, a degree P-1\n"
                  "polynomial chosen per query from its logit mean and spread, which the state holds):\n"
                  "taylor (the paper's T_P(s)), taylor-shift (T_P(s - mean)), moment-fit (least squares of\n"
                  "exp under N(mean, spread^2)), chebyshev (interpolation on mean +- width*spread), positive\n"
                  "(taylor-shift of even degree: no normaliser <= 0). All but taylor need P >= 3")
      ->capture_default_str();
  cmd->add_option("--chebyshev-width", o->chebyshev_width,
                  "chebyshev: half-width of the interval in standard deviations of the query's logits (0, 64]")
      ->capture_default_str();
  cmd->add_option("--key-centring", o->key_centring,
                  "sata and taylor-quadratic: none, or first-chunk (each head's mean key over the first chunk\n"
                  "subtracted from every key before the state is built; exact softmax is unchanged)")
      ->capture_default_str();
  cmd->add_option("--state-accumulation", o->state_accumulation,
                  "sata: how the state sums its tokens: plain, compensated (Kahan-Neumaier), blocked (a block\n"
                  "of --state-block tokens summed apart, then added), fp64 (the sums kept in double)")
      ->capture_default_str();
  cmd->add_option("--state-block", o->state_block, "sata --state-accumulation blocked: tokens per block (>= 1)")
      ->capture_default_str();
  return [o, causal_flag, command_line]() { return run(*o, command_line); };
}

}  // namespace satalab::cli
