#include "satalab/attention/compute.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>

#include "detail/sata_blocked.hpp"
#include "satalab/attention/kernels.hpp"
#include "satalab/attention/quantized_kv.hpp"
#include "satalab/attention/sata_state.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/cost/cost.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/carrier.hpp"
#include "satalab/numeric/scalar_traits.hpp"

namespace satalab {
namespace {

std::uint64_t carrier_bytes(const PrecisionPolicy& policy) {
  return with_carrier(policy, [&]<class T>(CarrierTag<T>) { return bytes_per_element<T>(policy); });
}

// float64 inputs rounded into the input format in one step, then carried
// exactly (every input format fits its policy's carrier). Converting to the
// carrier first would round twice (double -> float -> fp16); docs/architecture.md, precision policies.
template <class T>
HeadTensor<T> to_carrier(const HeadArrays& in, const Format& input) {
  HeadTensor<T> out(in.heads, in.n_tokens, in.dim);
  for (std::size_t i = 0; i < in.data.size(); ++i) out.data[i] = T(round_to(in.data[i], input));
  return out;
}

// kv_quant -rq<R> (quantized_kv.hpp): every query reads its own cache, the
// tokens before kv_quantized_prefix(query) quantized, the later ones as stored.
// Queries run in order over one working copy of K and V, whose rows switch to
// their quantized values as the queries pass them (the prefixes only grow), so
// each query is exact attention of that one row (query_rows) over its cache.
template <class T>
AttentionResult<T> per_query_residual_attention(const HeadTensor<T>& q, const HeadTensor<T>& k,
                                                const HeadTensor<T>& v, const HeadTensor<T>& k_quantized,
                                                const HeadTensor<T>& v_quantized, const PrecisionPolicy& policy,
                                                const AttentionOptions& options) {
  const KvQuantScheme& scheme = options.kv_quant;
  if (options.mask != Mask::causal) {
    throw InvalidArgument(fmt::format("kv_quant '{}': a residual per query (-rq) needs the causal mask (a "
                                      "query's recent tokens are the ones before it)",
                                      scheme.name));
  }
  const std::size_t n = q.n_tokens;
  const std::size_t rows = options.query_rows.empty() ? n : options.query_rows.size();
  AttentionResult<T> result;
  result.y = HeadTensor<T>(q.heads, rows, v.dim);
  result.z.assign(q.heads * rows, T(0));
  HeadTensor<T> k_work = k, v_work = v;
  // Rows [from, to) of every head from the quantized cache.
  auto take = [&](HeadTensor<T>& work, const HeadTensor<T>& quantized, std::size_t from, std::size_t to) {
    for (std::size_t h = 0; h < work.heads; ++h) {
      std::copy(quantized.row(h, from), quantized.row(h, from) + (to - from) * work.dim, work.row(h, from));
    }
  };
  // The sinks (first_quantized tokens; their 16-bit values are in the quantized cache).
  std::size_t key_end = std::min(scheme.sink_tokens, n), value_end = key_end;
  take(k_work, k_quantized, 0, key_end);
  take(v_work, v_quantized, 0, value_end);
  AttentionOptions one = options;
  one.query_rows.assign(1, 0);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t i = options.query_rows.empty() ? r : options.query_rows[r];
    const std::size_t key_to = kv_quantized_prefix(scheme, KvRole::key, i, n);
    const std::size_t value_to = kv_quantized_prefix(scheme, KvRole::value, i, n);
    if (key_to > key_end) take(k_work, k_quantized, key_end, key_to), key_end = key_to;
    if (value_to > value_end) take(v_work, v_quantized, value_end, value_to), value_end = value_to;
    one.query_rows[0] = i;
    const AttentionResult<T> row = exact_attention(q, k_work, v_work, policy, one);
    for (std::size_t h = 0; h < q.heads; ++h) {
      std::copy(row.y.row(h, 0), row.y.row(h, 0) + v.dim, result.y.row(h, r));
      result.z[h * rows + r] = row.z[h];
    }
  }
  return result;
}

template <class T>
AttentionOutput compute_in(Method method, const QkvArrays& inputs, const PrecisionPolicy& policy,
                           const AttentionOptions& options) {
  const HeadTensor<T> q = to_carrier<T>(inputs.q, policy.input);
  const HeadTensor<T> k = to_carrier<T>(inputs.k, policy.input);
  const HeadTensor<T> v = to_carrier<T>(inputs.v, policy.input);
  AttentionResult<T> result;
  AttentionOutput out;
  switch (method) {
    case Method::exact: result = exact_attention(q, k, v, policy, options); break;
    case Method::taylor_quadratic: result = taylor_quadratic_attention(q, k, v, policy, options); break;
    case Method::sata: result = sata_attention(q, k, v, policy, options); break;
    case Method::exact_kvquant: {
      // Exact attention over the cache as the scheme stores it.
      check_attention_shapes(q, k, v, options);
      DequantizedCache<T> k_cache =
          dequantized_cache(k, KvRole::key, options.kv_quant, policy, options.kv_rope_theta);
      DequantizedCache<T> v_cache =
          dequantized_cache(v, KvRole::value, options.kv_quant, policy, options.kv_rope_theta);
      result = options.kv_quant.residual_per_query
                   ? per_query_residual_attention(q, k, v, k_cache.values, v_cache.values, policy, options)
                   : exact_attention(q, k_cache.values, v_cache.values, policy, options);
      out.kv_scales_key = std::move(k_cache.cast_scales);
      out.kv_scales_value = std::move(v_cache.cast_scales);
      break;
    }
  }
  out.y.heads = result.y.heads;
  out.y.n_tokens = result.y.n_tokens;
  out.y.dim = result.y.dim;
  out.y.data.resize(result.y.data.size());
  std::transform(result.y.data.begin(), result.y.data.end(), out.y.data.begin(), to_double<T>);
  out.z.resize(result.z.size());
  std::transform(result.z.begin(), result.z.end(), out.z.begin(), to_double<T>);
  return out;
}

}  // namespace

std::uint64_t attention_memory_bytes(Method method, const QkvArrays& inputs, const PrecisionPolicy& policy,
                                     const AttentionOptions& options) {
  if (options.recipe.kind != RecipeKind::none) {
    // Kernel recipes: double carrier; the inputs, their stored copies and per-token
    // scales, outputs, and per thread a tile of scores (a whole row of keys on the
    // materialised path) and the tile's sums.
    const std::uint64_t n = inputs.q.n_tokens, threads = static_cast<std::uint64_t>(omp_get_max_threads());
    const std::uint64_t qkv = inputs.q.size() + inputs.k.size() + inputs.v.size();
    std::uint64_t elements = checked_add(checked_mul(qkv, 2, "recipe inputs"), 3 * inputs.q.heads * n, "recipe inputs");
    elements = checked_add(elements, inputs.q.heads * n * (inputs.v.dim + 1), "outputs");
    const bool whole_row = recipe_steps(options.recipe.kind).materialised;
    const std::uint64_t cols = whole_row ? n : std::min<std::uint64_t>(n, options.recipe.tile_cols);
    const std::uint64_t tile = checked_mul(128, checked_add(cols, 3 * inputs.v.dim + inputs.q.dim, "tile"), "tile");
    elements = checked_add(elements, checked_mul(threads, checked_add(tile, 2 * cols, "tile"), "tiles"), "recipe");
    return checked_mul(elements, sizeof(double), "recipe working set");
  }
  const std::uint64_t per = carrier_bytes(policy);
  std::uint64_t elements = inputs.q.size() + inputs.k.size() + inputs.v.size() + inputs.q.heads * inputs.q.n_tokens;
  elements = checked_add(elements, inputs.q.heads * inputs.q.n_tokens * inputs.v.dim, "output size");
  std::uint64_t bytes = checked_mul(elements, per, "attention working set");
  // The float64 copy of the outputs.
  bytes = checked_add(bytes, (inputs.q.heads * inputs.q.n_tokens * (inputs.v.dim + 1)) * sizeof(double), "outputs");
  if (method == Method::exact_kvquant) {
    // The dequantized K and V in the carrier, and the float64 copies quantization works on.
    const std::uint64_t kv = inputs.k.size() + inputs.v.size();
    bytes = checked_add(bytes, checked_mul(kv, per + 2 * sizeof(double), "quantized KV cache"), "attention working set");
  }
  if (method == Method::sata) {
    const std::uint64_t states = std::min<std::uint64_t>(inputs.q.heads, static_cast<std::uint64_t>(omp_get_max_threads()));
    const std::uint64_t state_elements =
        checked_mul(feature_count(inputs.q.dim, options.taylor_terms), inputs.v.dim + 1, "SATA state size");
    std::uint64_t per_state = checked_mul(state_elements, per, "SATA state bytes");
    if (policy.carrier != Carrier::mp) {  // the blocked path's workspace (an upper bound when it does not apply)
      per_state = checked_add(per_state,
                              detail::sata_blocked_workspace_bytes(inputs.q.dim, inputs.v.dim, options.taylor_terms,
                                                                   options.effective_chunk(), per),
                              "SATA workspace");
    }
    bytes = checked_add(bytes, checked_mul(per_state, states, "SATA states"), "attention working set");
  }
  return bytes;
}

bool uses_matrix_products(const PrecisionPolicy& policy) {
  return with_carrier(policy, [&]<class T>(CarrierTag<T>) {
    return detail::kernel_path<T>(policy) == detail::KernelPath::blocked;
  });
}

std::uint64_t sequence_memory_bytes(Method method, std::uint64_t heads, std::uint64_t n_tokens, std::uint64_t d_key,
                                    std::uint64_t d_value, const PrecisionPolicy& policy,
                                    const AttentionOptions& options) {
  if (method == Method::sata) {
    const SataCost cost = sata_cost(d_key, d_value, options.taylor_terms);
    const std::uint64_t bits =
        checked_mul(checked_mul(heads, cost.state_elements, "SATA state bytes"),
                    static_cast<std::uint64_t>(storage_bits(policy.accumulate)), "SATA state bytes");
    return bits / 8 + (bits % 8 != 0);
  }
  if (options.recipe.kind != RecipeKind::none) {
    return checked_mul(recipe_kv_cache_bytes(options.recipe, heads, n_tokens, d_key, d_value), 1, "KV cache bytes");
  }
  const KvQuantScheme scheme = method == Method::exact_kvquant ? options.kv_quant : KvQuantScheme{};
  return kv_cache_bytes(scheme, policy.input, heads, n_tokens, d_key, d_value).total();
}

AttentionOutput compute_attention(Method method, const QkvArrays& inputs, const PrecisionPolicy& policy,
                                  const AttentionOptions& options) {
  if (options.recipe.kind != RecipeKind::none) {
    // A kernel recipe rounds the float64 inputs itself and runs on a double carrier.
    if (method != Method::exact) {
      throw InvalidArgument(fmt::format("recipe '{}' applies only to method exact (got method {})",
                                        options.recipe.name, method_name(method)));
    }
    if (policy.name != "fp32") {
      throw InvalidArgument(fmt::format("recipe '{}' sets every format itself: precision must be fp32 (got {})",
                                        options.recipe.name, policy.name));
    }
    check_attention_shapes(inputs.q, inputs.k, inputs.v, options);
    check_memory(attention_memory_bytes(method, inputs, policy, options),
                 fmt::format("exact attention, recipe {} (heads={}, n_tokens={}, d_key={}, d_value={})",
                             options.recipe.name, inputs.q.heads, inputs.q.n_tokens, inputs.q.dim, inputs.v.dim));
    AttentionResult<double> result = recipe_attention(inputs, options);
    AttentionOutput out;
    out.y = std::move(result.y);
    out.z = std::move(result.z);
    return out;
  }
  if (options.taylor_terms < 1) {
    throw InvalidArgument(fmt::format("taylor_terms P = {} is invalid (must be >= 1)", options.taylor_terms));
  }
  if (method == Method::sata && options.taylor_terms > SymmetricBasis::kMaxTaylorTerms) {
    throw InvalidArgument(fmt::format("taylor_terms P = {} is invalid for sata (allowed: 1 .. {})",
                                      options.taylor_terms, SymmetricBasis::kMaxTaylorTerms));
  }
  if (method == Method::sata && !options.query_rows.empty()) {
    throw InvalidArgument("sata computes every query row (its state carries all earlier tokens); a subset of query "
                          "rows is available for exact and taylor-quadratic only");
  }
  check_memory(attention_memory_bytes(method, inputs, policy, options),
               fmt::format("{} attention at {} (heads={}, n_tokens={}, d_key={}, d_value={}, P={})", method_name(method),
                           policy.name, inputs.q.heads, inputs.q.n_tokens, inputs.q.dim, inputs.v.dim,
                           options.taylor_terms));
  return with_carrier(policy, [&]<class T>(CarrierTag<T>) { return compute_in<T>(method, inputs, policy, options); });
}

}  // namespace satalab
