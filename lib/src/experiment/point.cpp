#include "satalab/experiment/point.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cmath>

#include "satalab/attention/compute.hpp"
#include "satalab/attention/quantized_kv.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/cost/cost.hpp"

namespace satalab {
namespace {

constexpr std::pair<Workload, std::string_view> kWorkloads[] = {{Workload::gaussian, "gaussian"},
                                                               {Workload::heavy_tailed, "heavy-tailed"},
                                                               {Workload::needle, "needle"},
                                                               {Workload::fitted, "fitted"},
                                                               {Workload::file, "file"}};

// The time model, calibrated on a 2-core AVX-512 machine: the O(n^2)
// computations (truth, Taylor-quadratic at truth, exact baseline at the
// policy) as pair work, plus SATA's state work. Policies that accumulate in
// the carrier's own format run as matrix products (fast); fp16/bf16
// accumulation and mp round every operation in software (slow).
double pair_seconds(double pairs, double d_key, double d_value, const PrecisionPolicy& policy) {
  if (policy.carrier == Carrier::mp) return pairs * (d_key + d_value + 20) / 1.5e7;
  if (uses_matrix_products(policy)) return pairs * (2 * (d_key + d_value) / 2e10 + 2e-9);  // GEMMs + one exp per pair
  return pairs * (d_key + d_value + 20) / 2e8;
}

}  // namespace

double softmax_denominator(const PointParams& p) {
  return p.softmax_denominator > 0 ? p.softmax_denominator : std::sqrt(static_cast<double>(p.d_key));
}

PointResult unmeasured_result(const std::string& status) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  PointResult r;
  r.status = status;
  r.total.abs_error = r.total.rel_error = r.total.normwise_rel_error = Quantiles{nan, nan, nan, nan, nan};
  r.normalisers.min = r.normalisers.min_abs = nan;
  r.logit_max_abs = r.logit_std = nan;
  return r;
}

void fill_costs(const PointParams& p, PointResult& r) {
  const SataCost cost = sata_cost(p.d_key, p.d_value, p.taylor_terms);
  r.state_elements = p.method == "sata" ? cost.state_elements : 0;
  r.flops_per_token =
      p.method == "sata" ? cost.flops_per_token : conventional_flops_per_token(p.d_key, p.d_value, p.n_tokens);
  r.kv_cache_elements = kv_cache_elements(p.d_key, p.d_value, p.n_tokens);
}

Workload workload_by_name(std::string_view name) {
  for (const auto& [w, n] : kWorkloads) {
    if (n == name) return w;
  }
  throw InvalidArgument(
      fmt::format("workload '{}' is unknown (allowed: gaussian, heavy-tailed, needle, fitted, file)", name));
}

std::string_view workload_name(Workload workload) {
  for (const auto& [w, n] : kWorkloads) {
    if (w == workload) return n;
  }
  return "?";
}

PrecisionPolicy truth_policy(std::string_view name, const PrecisionPolicy& policy) {
  if (name != "auto") {
    const PrecisionPolicy truth = precision_policy(name);
    if (truth.name != "fp64" && truth.carrier != Carrier::mp) {
      throw InvalidArgument(fmt::format(
          "truth precision '{}' is not allowed (allowed: fp64, mp<bits> e.g. mp256)", name));
    }
    return truth;
  }
  if (policy.carrier == Carrier::f32) return precision_policy("fp64");
  if (policy.carrier == Carrier::f64) return precision_policy("mp128");
  return precision_policy(fmt::format("mp{}", 2 * policy.mp_bits));
}

namespace {

std::string spell_neutral(std::string_view key) {
  return key == "taylor_terms" ? "taylor_terms P =" : std::string(key);
}

std::string spell_template(const std::string& text, std::string (*spell)(std::string_view)) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] != '@') {
      out += text[i++];
      continue;
    }
    std::size_t end = i + 1;
    while (end < text.size() && (std::islower(static_cast<unsigned char>(text[end])) || text[end] == '_')) ++end;
    out += spell(std::string_view(text).substr(i + 1, end - i - 1));
    i = end;
  }
  return out;
}

}  // namespace

InvalidMethodOption::InvalidMethodOption(std::string message_template)
    : InvalidArgument(spell_template(message_template, spell_neutral)), template_(std::move(message_template)) {}

std::string InvalidMethodOption::spelled(std::string (*spell)(std::string_view key)) const {
  return spell_template(template_, spell);
}

void validate_method_options(Method method, const AttentionOptions& options) {
  if (method != Method::exact_kvquant && options.kv_quant.kind != KvQuantKind::none) {
    throw InvalidMethodOption(fmt::format("@kv_quant '{}' applies only to @method exact-kvquant (got @method {})",
                                          options.kv_quant.name, method_name(method)));
  }
  if (options.kv_quant.residual_per_query && options.mask != Mask::causal) {
    throw InvalidMethodOption(fmt::format("@kv_quant '{}' keeps each query's recent tokens (-rq) and needs the "
                                          "causal mask",
                                          options.kv_quant.name));
  }
  if (options.taylor_terms < 1) {
    throw InvalidMethodOption(fmt::format("@taylor_terms {} is invalid (must be >= 1)", options.taylor_terms));
  }
  if (method == Method::sata && options.taylor_terms > SymmetricBasis::kMaxTaylorTerms) {
    throw InvalidMethodOption(fmt::format("@taylor_terms {} is invalid for sata (allowed: 1 .. {})",
                                          options.taylor_terms, SymmetricBasis::kMaxTaylorTerms));
  }
  if (const auto& c = options.softmax_denominator; c && !(std::isfinite(*c) && *c > 0)) {
    throw InvalidMethodOption(fmt::format("@softmax_denominator {} is invalid (must be finite and > 0)", *c));
  }
  // Read-out polynomials.
  const ReadoutPolynomial& poly = options.polynomial;
  const std::string_view family = polynomial_family_name(poly.family);
  if (!poly.is_taylor() && !method_is_taylor(method)) {
    throw InvalidMethodOption(fmt::format("@polynomial '{}' applies only to @method sata and taylor-quadratic (got "
                                          "@method {})",
                                          family, method_name(method)));
  }
  if (options.taylor_terms < polynomial_min_terms(poly.family)) {
    throw InvalidMethodOption(fmt::format("@taylor_terms {} is invalid for @polynomial '{}' (must be >= {}: the "
                                          "logit moments come from the degree-2 state)",
                                          options.taylor_terms, family, polynomial_min_terms(poly.family)));
  }
  if (options.key_centring != KeyCentring::none && !method_is_taylor(method)) {
    throw InvalidMethodOption(fmt::format("@key_centring '{}' applies only to @method sata and taylor-quadratic (got "
                                          "@method {})",
                                          key_centring_name(options.key_centring), method_name(method)));
  }
  if (!(poly.chebyshev_width > 0.0 && poly.chebyshev_width <= 64.0)) {
    throw InvalidMethodOption(
        fmt::format("@chebyshev_width {} is invalid (must be > 0 and <= 64)", poly.chebyshev_width));
  }
  // Long-context drift: the state accumulation modes sum SATA's state.
  if (options.state_accumulation != StateAccumulation::plain && method != Method::sata) {
    throw InvalidMethodOption(fmt::format("@state_accumulation '{}' applies only to @method sata (got @method {})",
                                          state_accumulation_name(options.state_accumulation), method_name(method)));
  }
  if (options.state_block < 1) {
    throw InvalidMethodOption(fmt::format("@state_block {} is invalid (must be >= 1)", options.state_block));
  }
}

void validate_method_options(Method method, const AttentionOptions& options, const PrecisionPolicy& policy) {
  validate_method_options(method, options);
  if (options.state_accumulation == StateAccumulation::fp64 && policy.carrier == Carrier::mp) {
    throw InvalidMethodOption(fmt::format("@state_accumulation 'fp64' is invalid for @precision {} (its state is "
                                          "wider than fp64; allowed: plain, compensated, blocked)",
                                          policy.name));
  }
  const KernelRecipe& recipe = options.recipe;
  if (recipe.kind == RecipeKind::none) return;
  if (method != Method::exact) {
    throw InvalidMethodOption(
        fmt::format("@recipe '{}' applies only to @method exact (got @method {})", recipe.name, method_name(method)));
  }
  if (recipe.tile_rows < 1 || recipe.tile_cols < 1) {
    throw InvalidMethodOption(fmt::format("@{} 0 is invalid (must be >= 1; a tile larger than the sequence is one "
                                          "tile of the whole sequence)",
                                          recipe.tile_rows < 1 ? "tile_rows" : "tile_cols"));
  }
  if (policy.name != "fp32") {
    throw InvalidMethodOption(fmt::format("@recipe '{}' sets every format itself: @precision must be fp32 (got {})",
                                          recipe.name, policy.name));
  }
}

double PointSpec::softmax_denominator() const {
  return options.softmax_denominator.value_or(std::sqrt(static_cast<double>(d_key)));
}

std::vector<WorkloadModifier> workload_modifiers(const PointParams& p) {
  std::vector<WorkloadModifier> out;
  for (const ModifierKind kind : parse_modifier_list(p.modifiers)) {
    WorkloadModifier m;
    m.kind = kind;
    m.rope_theta = p.rope_theta;
    m.outlier_channels = p.outlier_channels;
    m.outlier_magnitude = p.outlier_magnitude;
    m.key_bias_norm = p.key_bias_norm;
    m.sink_tokens = p.sink_tokens;
    m.sink_logit = p.sink_logit;
    m.sink_alignment = p.sink_alignment;
    out.push_back(m);
  }
  return out;
}

PointSpec point_spec(const PointParams& p) {
  PointSpec s;
  s.method = method_by_name(p.method);
  s.policy = precision_policy(p.precision);
  s.truth = truth_policy(p.truth, s.policy);
  s.options.taylor_terms = p.taylor_terms;
  s.options.mask = p.causal ? Mask::causal : Mask::none;
  s.options.chunk = p.chunk;
  s.options.placement = placement_by_name(p.placement);
  if (p.softmax_denominator > 0) s.options.softmax_denominator = p.softmax_denominator;
  s.options.kv_quant = kv_quant_scheme(p.kv_quant);
  s.options.recipe = kernel_recipe(p.recipe);
  // 0: a tile the point does not read (sweep_config.hpp); the recipe's default.
  s.options.recipe.tile_rows = p.tile_rows ? p.tile_rows : KernelRecipe::kDefaultTileRows;
  s.options.recipe.tile_cols = p.tile_cols ? p.tile_cols : KernelRecipe::kDefaultTileCols;
  s.options.recipe.seed = p.seed;
  s.options.polynomial.family = polynomial_family_by_name(p.polynomial);
  s.options.polynomial.chebyshev_width = p.chebyshev_width;
  s.options.key_centring = key_centring_by_name(p.key_centring);
  s.options.state_accumulation = state_accumulation_by_name(p.state_accumulation);
  s.options.state_block = p.state_block;
  validate_method_options(s.method, s.options, s.policy);
  check_recipe_shape(s.options.recipe, p.d_key);
  s.workload = workload_by_name(p.workload);
  s.heads = p.heads;
  s.n_tokens = p.n_tokens;
  s.d_key = p.d_key;
  s.d_value = p.d_value;
  s.scale = p.scale;
  s.dof = p.dof;
  s.needle_logit = p.needle_logit;
  s.seed = p.seed;
  s.input_file = p.input_file;
  s.modifiers = workload_modifiers(p);
  // kv_quant -prerope rotates the keys back by the workload's RoPE (quantized_kv.hpp).
  for (const WorkloadModifier& m : s.modifiers)
    if (m.kind == ModifierKind::rope) s.options.kv_rope_theta = m.rope_theta;
  if (s.options.kv_quant.pre_rope && !s.options.kv_rope_theta) {
    throw InvalidArgument(fmt::format("kv_quant '{}' quantizes keys before RoPE and needs the rope modifier in "
                                      "the workload (modifiers = '{}')",
                                      p.kv_quant, p.modifiers));
  }
  s.rows = measured_positions(p);
  return s;
}

double point_seconds_estimate(const PointParams& p) {
  const double n = static_cast<double>(p.n_tokens), h = p.heads, rows = static_cast<double>(measured_rows(p));
  const double pairs = h * rows * (p.causal ? 0.5 * (n + 1) : n);  // (query, key) pairs of the measured rows
  const PrecisionPolicy policy = precision_policy(p.precision);
  const PrecisionPolicy truth = truth_policy(p.truth, policy);
  double seconds = pair_seconds(pairs, p.d_key, p.d_value, truth);  // exact truth
  if (p.method != "exact") {
    seconds += pair_seconds(pairs, p.d_key, p.d_value, truth);   // Taylor-quadratic oracle
    seconds += pair_seconds(pairs, p.d_key, p.d_value, policy);  // exact baseline at the policy
  }
  if (p.method == "sata") {
    const double flops = static_cast<double>(sata_cost(p.d_key, p.d_value, p.taylor_terms).flops_per_token) * n * h;
    if (policy.carrier == Carrier::mp) {
      seconds += flops / 1.5e7;
    } else if (uses_matrix_products(policy)) {
      seconds += flops / (policy.carrier == Carrier::f32 ? 8e10 : 4e10);
    } else {
      seconds += flops / 2e8;
    }
  } else if (p.recipe != "none") {
    seconds += pairs * 1e-8;  // a kernel recipe: double products, several roundings per (query, key) pair
  } else {
    seconds += pair_seconds(pairs, p.d_key, p.d_value, policy);
  }
  return seconds;
}

std::vector<std::size_t> measured_positions(const PointParams& p) {
  const std::uint64_t rows = measured_rows(p);
  if (rows == p.n_tokens) return {};
  std::vector<std::size_t> positions(rows);
  for (std::uint64_t r = 0; r < rows; ++r) positions[r] = static_cast<std::size_t>((r + 1) * p.n_tokens / rows - 1);
  return positions;
}

}  // namespace satalab
