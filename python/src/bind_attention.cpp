// satalab.attention, satalab.decompose, satalab.error_metrics, satalab.gaussian_inputs.
#include <fmt/format.h>

#include <chrono>

#include "common.hpp"
#include "satalab/attention/kernels.hpp"
#include "satalab/attention/quantized_kv.hpp"
#include "satalab/error.hpp"
#include "satalab/experiment/evaluate.hpp"
#include "satalab/workload/gaussian.hpp"

namespace satalab::python {
namespace {

using namespace pybind11::literals;

// q, k, v from numpy: float16/32/64, rank 2 (one head) or 3, finite, shapes
// that agree (the library's checks and messages).
struct Inputs {
  QkvArrays qkv;
  bool one_head = false;  // rank-2 inputs: outputs drop the head axis
};

Inputs read_inputs(const py::handle& q, const py::handle& k, const py::handle& v) {
  Float64Array arrays[3] = {float64_array(q, "q"), float64_array(k, "k"), float64_array(v, "v")};
  const char* names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) check_finite(arrays[i], names[i]);
  if (arrays[0].shape.size() != arrays[1].shape.size() ||
      arrays[0].shape.size() != arrays[2].shape.size()) {
    throw InvalidArgument(fmt::format(
        "q {}, k {} and v {} must have the same rank (2: [n_tokens, d] or 3: "
        "[heads, n_tokens, d])",
        shape_text(arrays[0].shape), shape_text(arrays[1].shape), shape_text(arrays[2].shape)));
  }
  Inputs in;
  in.one_head = arrays[0].shape.size() == 2;
  in.qkv.q = head_arrays(std::move(arrays[0]), "q");
  in.qkv.k = head_arrays(std::move(arrays[1]), "k");
  in.qkv.v = head_arrays(std::move(arrays[2]), "v");
  const auto header = [](const HeadArrays& a) {
    HeadTensor<double> t;  // dimensions only: the check reads no data
    t.heads = a.heads;
    t.n_tokens = a.n_tokens;
    t.dim = a.dim;
    return t;
  };
  AttentionOptions shapes_only;
  check_attention_shapes(header(in.qkv.q), header(in.qkv.k), header(in.qkv.v), shapes_only);
  return in;
}

// The cache scheme of exact-kvquant, the kernel recipe of exact, the read-out
// polynomial of sata and taylor-quadratic, and the library's one check of
// (method, options, policy). rope_theta: the RoPE base the inputs were
// rotated with, for kv_quant -prerope.
void set_kv_quant(AttentionOptions& options, Method method, const std::string& kv_quant, const std::string& recipe,
                  long long tile_rows, long long tile_cols, long long recipe_seed, const std::string& polynomial,
                  double chebyshev_width, const std::string& key_centring, const PrecisionPolicy& policy,
                  const std::optional<double>& rope_theta, const std::string& state_accumulation,
                  long long state_block) {
  options.kv_quant = kv_quant_scheme(kv_quant);
  options.kv_rope_theta = rope_theta;
  options.recipe = kernel_recipe(recipe);
  if (tile_rows < 0 || tile_cols < 0 || recipe_seed < 0) {
    throw InvalidArgument(fmt::format("tile_rows {}, tile_cols {}, recipe_seed {}: must be >= 0 (tiles >= 1)",
                                      tile_rows, tile_cols, recipe_seed));
  }
  options.recipe.tile_rows = static_cast<std::size_t>(tile_rows);
  options.recipe.tile_cols = static_cast<std::size_t>(tile_cols);
  options.recipe.seed = static_cast<std::uint64_t>(recipe_seed);
  options.polynomial.family = polynomial_family_by_name(polynomial);
  options.polynomial.chebyshev_width = chebyshev_width;
  options.key_centring = key_centring_by_name(key_centring);
  options.state_accumulation = state_accumulation_by_name(state_accumulation);
  if (state_block < 1) throw InvalidArgument(fmt::format("state_block {} is invalid (must be >= 1)", state_block));
  options.state_block = static_cast<std::size_t>(state_block);
  validate_method_options(method, options, policy);
  if (options.kv_quant.pre_rope && !rope_theta) {
    throw InvalidArgument(fmt::format("kv_quant '{}' quantizes keys before RoPE and needs rope_theta (the RoPE "
                                      "base the keys were rotated with, token i at position i)",
                                      kv_quant));
  }
}

py::tuple output_arrays(AttentionOutput&& out, bool one_head) {
  const std::size_t heads = out.y.heads, n = out.y.n_tokens, dv = out.y.dim;
  std::vector<std::size_t> y_shape{heads, n, dv}, z_shape{heads, n};
  if (one_head) {
    y_shape = {n, dv};
    z_shape = {n};
  }
  return py::make_tuple(numpy_array(std::move(out.y.data), y_shape),
                        numpy_array(std::move(out.z), z_shape));
}

py::tuple attention(const py::handle& q, const py::handle& k, const py::handle& v,
                    const std::string& method_text, long long taylor_terms,
                    const std::string& precision, bool causal,
                    const std::optional<long long>& chunk,
                    const std::optional<double>& softmax_scale, const std::string& placement,
                    const std::string& kv_quant, const std::string& recipe, long long tile_rows,
                    long long tile_cols, long long recipe_seed, const std::string& polynomial,
                    double chebyshev_width, const std::string& key_centring,
                    const std::optional<double>& rope_theta, const std::string& state_accumulation,
                    long long state_block) {
  const Method method = method_by_name(method_text);
  const PrecisionPolicy policy = precision_policy(precision);
  AttentionOptions options = attention_options(taylor_terms, causal, chunk, softmax_scale, placement);
  set_kv_quant(options, method, kv_quant, recipe, tile_rows, tile_cols, recipe_seed, polynomial, chebyshev_width,
               key_centring, policy, rope_theta, state_accumulation, state_block);
  const Inputs in = read_inputs(q, k, v);
  AttentionOutput out;
  {
    py::gil_scoped_release release;
    out = compute_interruptible(method, in.qkv, policy, options);
  }
  return output_arrays(std::move(out), in.one_head);
}

py::dict decompose(const py::handle& q, const py::handle& k, const py::handle& v,
                   const std::string& method_text, long long taylor_terms,
                   const std::string& precision, const std::string& truth_name, bool causal,
                   const std::optional<long long>& chunk,
                   const std::optional<double>& softmax_scale, const std::string& placement,
                   long long position_blocks, const std::string& kv_quant, const std::string& recipe,
                   long long tile_rows, long long tile_cols, long long recipe_seed,
                   const std::string& polynomial, double chebyshev_width, const std::string& key_centring,
                    const std::optional<double>& rope_theta, const std::string& state_accumulation,
                    long long state_block) {
  const Method method = method_by_name(method_text);
  const PrecisionPolicy policy = precision_policy(precision);
  const PrecisionPolicy truth = truth_policy(truth_name, policy);
  AttentionOptions options = attention_options(taylor_terms, causal, chunk, softmax_scale, placement);
  set_kv_quant(options, method, kv_quant, recipe, tile_rows, tile_cols, recipe_seed, polynomial, chebyshev_width,
               key_centring, policy, rope_theta, state_accumulation, state_block);
  const std::size_t blocks = count_argument(position_blocks, "position_blocks");
  Inputs in = read_inputs(q, k, v);
  PointSpec spec;
  spec.method = method;
  spec.policy = policy;
  spec.truth = truth;
  spec.options = options;
  spec.heads = in.qkv.q.heads;
  spec.n_tokens = in.qkv.q.n_tokens;
  spec.d_key = in.qkv.q.dim;
  spec.d_value = in.qkv.v.dim;
  spec.position_blocks = blocks;
  PointEvaluation d;
  AttentionOutput truth_output;
  {
    py::gil_scoped_release release;
    check_decomposition_memory(spec, in.qkv);
    TruthCache cache({std::move(in.qkv), std::nullopt}, spec,
                     [](Computation, Method m, const QkvArrays& qkv, const PrecisionPolicy& p,
                        const AttentionOptions& o) { return compute_interruptible(m, qkv, p, o); });
    d = evaluate_point(spec, cache);
    truth_output = cache.truth_output();
  }
  py::dict out("method"_a = std::string(method_name(method)), "precision"_a = policy.name,
               "truth"_a = truth.name, "total"_a = metrics_dict(d.total),
               "baseline"_a = metrics_dict(d.baseline),
               "normalisers"_a = normaliser_dict(d.normalisers));
  out["truncation"] = d.truncation ? py::object(metrics_dict(*d.truncation)) : py::none();
  out["rounding"] = d.rounding ? py::object(metrics_dict(*d.rounding)) : py::none();
  const py::tuple method_out = output_arrays(std::move(d.output), in.one_head);
  const py::tuple truth_out = output_arrays(std::move(truth_output), in.one_head);
  out["y"] = method_out[0];
  out["z"] = method_out[1];
  out["y_truth"] = truth_out[0];
  return out;
}

py::dict error_metrics_binding(const py::handle& y, const py::handle& y_truth,
                               long long position_blocks) {
  const std::size_t blocks = count_argument(position_blocks, "position_blocks");
  Float64Array a = float64_array(y, "y"), b = float64_array(y_truth, "y_truth");
  if (a.shape != b.shape) {
    throw InvalidArgument(fmt::format("y {} and y_truth {} must have the same shape",
                                      shape_text(a.shape), shape_text(b.shape)));
  }
  const HeadArrays ya = head_arrays(std::move(a), "y"), yb = head_arrays(std::move(b), "y_truth");
  ErrorMetrics metrics;
  {
    py::gil_scoped_release release;
    metrics = error_metrics(ya.data, yb.data, OutputShape{ya.heads, ya.n_tokens, ya.dim}, blocks);
  }
  return metrics_dict(metrics);
}

py::tuple gaussian(long long heads, long long n_tokens, long long d_key,
                   const std::optional<long long>& d_value, double scale, unsigned long long seed) {
  GaussianWorkload w;
  w.heads = count_argument(heads, "heads");
  w.n_tokens = count_argument(n_tokens, "n_tokens");
  w.d_key = count_argument(d_key, "d_key");
  w.d_value = d_value ? count_argument(*d_value, "d_value") : w.d_key;
  w.scale = scale;
  w.seed = seed;
  QkvArrays qkv;
  {
    py::gil_scoped_release release;
    qkv = gaussian_inputs(w);
  }
  return py::make_tuple(numpy_array(std::move(qkv.q.data), {w.heads, w.n_tokens, w.d_key}),
                        numpy_array(std::move(qkv.k.data), {w.heads, w.n_tokens, w.d_key}),
                        numpy_array(std::move(qkv.v.data), {w.heads, w.n_tokens, w.d_value}));
}

// For measuring the binding's per-call overhead: the mean seconds of
// compute_attention alone on these inputs (no conversion, no GIL handling).
double compute_seconds(const py::handle& q, const py::handle& k, const py::handle& v,
                       const std::string& method_text, long long taylor_terms,
                       const std::string& precision, long long repeats) {
  const Method method = method_by_name(method_text);
  const PrecisionPolicy policy = precision_policy(precision);
  const AttentionOptions options =
      attention_options(taylor_terms, true, std::nullopt, std::nullopt, "paper");
  const std::size_t n = count_argument(repeats, "repeats");
  const Inputs in = read_inputs(q, k, v);
  py::gil_scoped_release release;
  const auto lock = mp_lock(policy);
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < n; ++i) (void)compute_attention(method, in.qkv, policy, options);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
         static_cast<double>(n);
}

constexpr const char* kAttentionDoc =
    R"(attention(q, k, v, method="sata", taylor_terms=4, precision="fp32", causal=True, chunk=None, softmax_scale=None, coefficient_placement="paper", kv_quant="none", recipe="none", tile_rows=128, tile_cols=64, recipe_seed=1, polynomial="taylor", chebyshev_width=2.0, key_centring="none", rope_theta=None, state_accumulation="plain", state_block=1024) -> (y, z)

Attention of queries q over keys k and values v, computed by satalab's C++
core exactly as `satalab run` computes it (same numbers, bit for bit).

Arguments
  q, k, v      numpy arrays of float16, float32 or float64, any strides:
               [n_tokens, d] for one head or [heads, n_tokens, d]. q and k
               share d_key; v has d_value. Values must be finite. They are
               read exactly and rounded once into the policy's input format.
  method       "sata" (symmetry-aware Taylor attention, Heinsen & Kozachkov
               2026), "taylor-quadratic" (exact attention with exp replaced
               by its P-term Taylor polynomial, O(n^2): SATA's oracle) or
               "exact" (softmax attention) or "exact-kvquant" (exact
               attention over a KV cache stored as `kv_quant` says). See
               satalab.methods().
  taylor_terms P, the number of Taylor terms (degrees 0..P-1); >= 1, for
               sata at most 21. Ignored by "exact".
  precision    precision policy: "fp64", "fp32", "bf16", "fp16",
               "fp16-acc32", "bf16-acc32", "e4m3-acc32", "e5m2-acc32",
               "e4m3sat-acc32" or "mp<bits>" (e.g. "mp256"). See
               satalab.precisions() and satalab.precision_info().
  causal       True: query i attends to keys j <= i. False: to all keys.
  chunk        SATA's causal prefill chunk in tokens (Taylor-quadratic inside
               a chunk, the state across chunks); None = 64.
  softmax_scale  the factor that multiplies q.k inside the softmax:
               s = softmax_scale * (q.k). None = 1/sqrt(d_key), the
               convention of flash-attn and PyTorch. (Not the CLI's --scale,
               which is the spread of generated inputs.) It is applied as the
               library's denominator c = 1/softmax_scale (rounded to float64;
               exact when softmax_scale is a power of two); `satalab run
               --softmax-denominator c` gives the same numbers.
  coefficient_placement  where the coefficients w(t)/c^p of the features go:
               "paper", "symmetric", "query", "key" or "prescaled" (SATA
               only; see satalab.placements()).
  kv_quant     the KV-cache scheme of method "exact-kvquant" (keys and values
               quantized and dequantized as the cache stores them, then exact
               attention): "none", "fp16", "bf16", "e4m3", "e5m2" (absmax
               scale per tensor; suffix "-head": per head, "-unscaled": plain
               cast), "int8" (symmetric per token), "int4-g32", "int2-g32"
               (asymmetric groups of G, KIVI arrangement), any with suffix
               "-r<R>" to keep the R most recent tokens unquantized, e.g.
               "int4-g32-r128"; then, in this order, "-prerope" (keys
               quantized before RoPE: needs rope_theta), "-o[<f>]"
               (dense-and-sparse, the largest fraction f kept exactly),
               "-s<S>" (S sink tokens in 16 bits), "-rq<R>" instead of
               "-r<R>" (each query's own R recent tokens), e.g.
               "int4-g32-prerope-o0.01-s4-rq128" (`satalab run --help`
               lists them). Other
               methods accept only "none".
  recipe       a kernel recipe of method "exact" (precision must be "fp32":
               the recipe sets every format and rounds the float64 inputs
               itself): "none", "flash2-bf16", "flash2-fp16", "flash2-bf16-acc16",
               "sdpa-math-bf16", "sdpa-math-fp16", "sdpa-math-fp8",
               "flash3-fp8", "flash3-fp8-hadamard", "sage-int8" (which value
               is rounded where: `satalab run --help`, attention/recipe.hpp).
  tile_rows, tile_cols  the recipe's tiles Br x Bc (>= 1; larger than
               n_tokens: one tile of the whole sequence).
  recipe_seed  flash3-fp8-hadamard: the seed of the random signs.
  polynomial   read-out polynomial of "sata" and "taylor-quadratic" (the
               weight of a logit s, chosen per query from the mean and spread
               of its logits, which SATA's state holds; `satalab run
               --polynomial`): "taylor" (the paper's T_P(s)), "taylor-shift",
               "moment-fit", "chebyshev", "positive"; all but taylor need
               taylor_terms >= 3. Other methods accept only "taylor".
  chebyshev_width  "chebyshev": interval half-width in standard deviations
               of the query's logits, in (0, 64].
  key_centring "none" or "first-chunk" ("sata" and "taylor-quadratic"): each
               head's mean key over the first chunk subtracted from every key
               before the state is built (exact softmax is unchanged).
  rope_theta   the RoPE base the inputs' keys were rotated with (token i
               at position i), for kv_quant schemes with "-prerope".
  state_accumulation  "sata": how the state sums its tokens (`satalab run
               --state-accumulation`): "plain" (default), "compensated"
               (Kahan-Neumaier), "blocked" (state_block tokens summed apart,
               then added), "fp64" (the sums kept in double). Other methods
               accept only "plain".
  state_block  "blocked": tokens per block (>= 1).

Returns
  y  float64 [heads, n_tokens, d_value] (or [n_tokens, d_value]): the output,
     the carrier's values rounded to float64.
  z  float64 [heads, n_tokens] (or [n_tokens]): the normaliser of each row;
     for exact attention sum_j exp(s_ij - max_j s_ij) >= 1, for taylor-
     quadratic and sata sum_j T_P(s_ij), reported as computed (it can be tiny
     or negative when P-1 is odd).

Raises ValueError (bad shapes, rank, NaN/Inf, unknown names, P out of range,
work larger than satalab.memory_limit()) and TypeError (a dtype other than
float16/32/64). The GIL is released while computing; Ctrl-C interrupts
between groups of heads.)";

constexpr const char* kDecomposeDoc =
    R"(decompose(q, k, v, method="sata", taylor_terms=4, precision="fp32", truth="auto", causal=True, chunk=None, softmax_scale=None, coefficient_placement="paper", position_blocks=16, kv_quant="none", recipe="none", tile_rows=128, tile_cols=64, recipe_seed=1, polynomial="taylor", chebyshev_width=2.0, key_centring="none", rope_theta=None, state_accumulation="plain", state_block=1024) -> dict

The four-way error decomposition (docs/architecture.md), as `satalab run` and
`satalab sweep` compute it (the library's evaluate_point):
  total       method at `precision`        vs exact attention at `truth`
  truncation  taylor-quadratic at `truth`  vs exact at `truth`  (None for exact, exact-kvquant)
  rounding    method at `precision`        vs taylor-quadratic at `truth`  (None for exact, exact-kvquant)
  baseline    exact at `precision`         vs exact at `truth`  (for exact: the total;
              for a recipe: its plain counterpart sdpa-math-*, the total for sdpa-math-*)

Arguments are those of satalab.attention, plus
  truth            "auto" (fp64 for policies at fp32 and below, mp128 for
                   fp64, mp<2*bits> for mp<bits>), "fp64" or "mp<bits>".
  position_blocks  blocks of token positions for the per-position summaries.

Returns a dict: "method", "precision", "truth" (the precision used),
"total", "truncation", "rounding", "baseline" (each a dict as returned by
satalab.error_metrics, or None), "normalisers" (statistics of z), and the
arrays "y", "z" (the method) and "y_truth" (exact at truth precision).
Up to four attention computations; memory for all is checked first.)";

constexpr const char* kErrorMetricsDoc = R"(error_metrics(y, y_truth, position_blocks=16) -> dict

Error statistics of an output y against a reference y_truth (both float16/32/64
of the same shape [n_tokens, d_value] or [heads, n_tokens, d_value]), the
statistics `satalab run` and `satalab sweep` report. Keys (the column names of
the sweep results file, docs/results-schema.md):
  elements                         number of elements compared
  abs_err_{median,p05,p95,p99,max} quantiles of |y - y_truth| (linear
                                   interpolation, numpy's default)
  rel_err_{...}                    of |y - y_truth| / |y_truth| over elements with y_truth != 0
  normwise_rel_err_{...}           over token rows of ||y_i - y_truth_i|| / ||y_truth_i||
  rel_undefined_count              elements with y_truth == 0
  nonfinite_count                  elements of y that are NaN or Inf (their
                                   error enters the quantiles as +inf)
  abs_hist, rel_hist               uint64[254]: counts on the fixed log10 bins
                                   satalab.HIST_BIN_EDGES (250 bins), then
                                   zeros, underflow (< 1e-20), overflow
                                   (>= 1e5), non-finite
  position                         dict of arrays over the position blocks:
                                   first_token, last_token, abs_err_*, rel_err_*
NaN/Inf in y are allowed (they are counted).)";

constexpr const char* kGaussianDoc =
    R"(gaussian_inputs(heads, n_tokens, d_key, d_value=None, scale=1.0, seed=1) -> (q, k, v)

The inputs `satalab run` generates with --heads --n-tokens --d-key --d-value
--scale --seed: q and k entries ~ N(0, scale^2), v ~ N(0, 1) (Boost.Random
mt19937_64, fixed order), float64 arrays [heads, n_tokens, d]. d_value
defaults to d_key.)";

}  // namespace

void bind_attention(py::module_& m) {
  m.def("attention", &attention, kAttentionDoc, "q"_a, "k"_a, "v"_a, "method"_a = "sata",
        "taylor_terms"_a = 4, "precision"_a = "fp32", "causal"_a = true, "chunk"_a = py::none(),
        "softmax_scale"_a = py::none(), "coefficient_placement"_a = "paper", "kv_quant"_a = "none",
        "recipe"_a = "none", "tile_rows"_a = 128, "tile_cols"_a = 64, "recipe_seed"_a = 1,
        "polynomial"_a = "taylor", "chebyshev_width"_a = 2.0, "key_centring"_a = "none",
        "rope_theta"_a = py::none(), "state_accumulation"_a = "plain", "state_block"_a = 1024);
  m.def("decompose", &decompose, kDecomposeDoc, "q"_a, "k"_a, "v"_a, "method"_a = "sata",
        "taylor_terms"_a = 4, "precision"_a = "fp32", "truth"_a = "auto", "causal"_a = true,
        "chunk"_a = py::none(), "softmax_scale"_a = py::none(), "coefficient_placement"_a = "paper",
        "position_blocks"_a = 16, "kv_quant"_a = "none", "recipe"_a = "none", "tile_rows"_a = 128,
        "tile_cols"_a = 64, "recipe_seed"_a = 1, "polynomial"_a = "taylor", "chebyshev_width"_a = 2.0, "key_centring"_a = "none",
        "rope_theta"_a = py::none(), "state_accumulation"_a = "plain", "state_block"_a = 1024);
  m.def("error_metrics", &error_metrics_binding, kErrorMetricsDoc, "y"_a, "y_truth"_a,
        "position_blocks"_a = 16);
  m.def("_compute_seconds", &compute_seconds,
        "_compute_seconds(q, k, v, method, taylor_terms, precision, repeats) -> float\n\nMean "
        "seconds "
        "of the C++ compute_attention call alone on these inputs (causal, defaults otherwise), for "
        "measuring the binding's per-call overhead (python/benchmarks/call_overhead.py).",
        "q"_a, "k"_a, "v"_a, "method"_a = "sata", "taylor_terms"_a = 4, "precision"_a = "fp32",
        "repeats"_a = 1000);
  m.def("gaussian_inputs", &gaussian, kGaussianDoc, "heads"_a, "n_tokens"_a, "d_key"_a,
        "d_value"_a = py::none(), "scale"_a = 1.0, "seed"_a = 1);
}

}  // namespace satalab::python
