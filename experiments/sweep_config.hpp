#pragma once
// Sweep files for `satalab sweep` (docs/architecture.md §6): a small TOML file whose
// list-valued keys are the axes of a Cartesian product of points.
//
// Keys (every one optional; each is a scalar, or a non-empty list of scalars
// that makes it an axis). Defaults are those of satalab::PointParams.
//
//   method               "sata" | "taylor-quadratic" | "exact" | "exact-kvquant"
//   taylor_terms         integer >= 1 (P: degrees 0..P-1)
//   kv_quant             exact-kvquant's KV-cache scheme: "none", "fp16", "bf16",
//                        "e4m3", "e4m3sat", "e5m2" (absmax scale per tensor;
//                        -head per head; -unscaled none), "int8", "int4-g<G>",
//                        "int2-g<G>"; any but none with -r<R> (R recent tokens
//                        unquantized), e.g. "int4-g32-r128" (quantized_kv.hpp)
//   d_key                integer >= 1
//   d_value              integer >= 1; absent: equal to each point's d_key
//   heads                integer >= 1
//   heads_times_d_key    integer >= 1; sets heads = value / d_key per point
//                        (the paper's grid keeps heads * d_key fixed, so heads
//                        and d_key are paired, not crossed). d_key must divide
//                        it; cannot be combined with `heads`.
//   n_tokens             integer >= 1
//   scale                number > 0 (integers accepted)
//   precision            a precision policy name: fp64, fp32, fp16-acc32, mp256, ...
//   truth                "auto", "fp64" or "mp<bits>"
//   causal               true | false
//   chunk                integer >= 1 (SATA causal prefill chunk; absent: default)
//   placement            coefficient placement: paper, symmetric, query, key, prescaled
//   workload             "gaussian" | "heavy-tailed" | "needle" | "fitted" | "file"
//                        (fitted: per-head gaussian with the mean and
//                        covariance of input_file's q, k, v; n_tokens free)
//   dof                  number > 2 (heavy-tailed: Student-t degrees of freedom)
//   needle_logit         finite number (needle: logit of the aligned key)
//   input_file           string; required iff some point has workload = "file" or "fitted".
//                        Relative paths are resolved against the directory of
//                        the config file (of `source_name`; against the working
//                        directory when given by --set); the points carry
//                        the resolved path, the normalised text the path as
//                        written. The file must exist.
//   seed                 integer >= 0
//   softmax_denominator  number > 0 (c in s = q.k / c; absent: sqrt(d_key))
//   truth_rows           integer >= 1: compute the truth, the Taylor-quadratic
//                        oracle and the exact baseline on this many evenly
//                        spaced query rows per head (the last included) and
//                        measure errors there; absent: every row. A value
//                        >= n_tokens means every row.
//   modifiers            workload modifiers applied after the base, names
//                        joined by '+': rope, outliers, key-bias, sink
//                        ("rope+outliers"); "" or "none": none
//   rope_theta           number > 1 (rope: base θ; default 10000)
//   outlier_channels     integer >= 1, <= d_key (outliers; default 2)
//   outlier_magnitude    number > 0 (outliers: factor on those channels; default 3)
//   key_bias_norm        number >= 0 (key-bias: norm of the shared key direction; default 4)
//   sink_tokens          integer >= 1, <= n_tokens (sink; default 1)
//   sink_logit           finite number (sink: mean logit of a sink; default 10)
//   sink_alignment       number > 0 (sink: the queries' shared component in units of scale; default 4)
//   recipe               exact attention's kernel recipe (attention/recipe.hpp): "none",
//                        "flash2-bf16", "flash2-fp16", "flash2-bf16-acc16", "sdpa-math-bf16", "sdpa-math-fp16",
//                        "sdpa-math-fp8", "flash3-fp8", "flash3-fp8-hadamard", "sage-int8"
//   tile_rows            integer >= 1: the recipe's query tile Br (default 128)
//   tile_cols            integer >= 1: the recipe's key tile Bc (default 64)
//   polynomial           read-out polynomial of sata and taylor-quadratic: taylor (default),
//                        taylor-shift, moment-fit, chebyshev, positive
//                        (attention/readout_polynomial.hpp); the families but
//                        taylor list only their points with taylor_terms >= 3
//   chebyshev_width      number > 0, <= 64 (chebyshev: interval half-width in
//                        standard deviations of the query's logits; default 2)
//   key_centring         sata and taylor-quadratic: none (default) or first-chunk
//                        (each head's mean key over the first chunk subtracted
//                        from every key before the state is built)
//   state_accumulation   sata only: how the state sums its tokens: plain (default),
//                        compensated, blocked, fp64 (attention/options.hpp)
//   state_block          integer >= 1: tokens per block of state_accumulation
//                        blocked (default 1024)
//
// Plus two optional top-level strings that are not axes: `name`, `description`.
// Anything else (unknown keys, tables, nested lists, wrong types, empty lists,
// values out of range) is an InvalidArgument.
//
// Expansion order: the Cartesian product of the list-valued keys taken in the
// canonical key order above (method first ... softmax_denominator last), like
// nested loops with the FIRST key the OUTERMOST (slowest-varying) loop and the
// last key the innermost; within an axis, values are taken in the order they
// are listed. point_id = 0..N-1 in that order. The order of the keys in the
// file does not change the expansion. Grids over kMaxSweepPoints are refused.
//
// Keys a method does not read do not multiply its points: taylor_terms is
// read by sata and taylor-quadratic, kv_quant by exact-kvquant. A point of
// another method is listed once per combination of the other axes, with that
// key at its first listed value (taylor_terms; it has no effect) or "none"
// (kv_quant, for every method but exact-kvquant). So method = ["sata",
// "exact-kvquant"], taylor_terms = [2, 3], kv_quant = ["none", "int8"] gives
// 2 + 2 points, not 8. point_id counts the listed points only. Kernel
// recipes likewise: recipe is read by exact only ("none" elsewhere);
// tile_rows only by recipes with per-block Q scales (flash3-fp8*, sage-int8)
// and tile_cols only by the online ones (flash2-*, flash3-fp8*, sage-int8),
// 0 where a point does not read them; and a
// point with a recipe does not read precision: it is listed once, at its
// first value, with precision "fp32" (the recipe sets every format).
// state_accumulation is read by sata only ("plain" elsewhere), state_block
// only by sata points with state_accumulation "blocked" (1024 elsewhere).
//
// Overrides (`satalab sweep --set key=value`): `value` is TOML syntax (4,
// [3, 4], "fp32", true, 1.5). A bare word that is not valid TOML (fp32,
// taylor-quadratic, data/qkv.h5) is taken as a string, so shell quoting is
// forgiving. An override replaces the key wholesale (a scalar can become a
// list and vice versa) or adds it; the last --set of a key wins.
//
// Errors are one line: "<file>:<line>: ..." for values from the file,
// "--set '<key=value>': ..." for overrides, always naming the key.
#include <cstdint>
#include <string>
#include <vector>

#include "satalab/io/results_file.hpp"

namespace satalab::cli {

inline constexpr std::uint64_t kMaxSweepPoints = 10'000'000;

struct SweepConfig {
  // Normalised TOML of the config after --set overrides: one `key = value` line
  // per key present, in the canonical order (name, description, then the keys
  // in expansion order), comments and layout dropped, integers given for
  // number keys written as floats. Two files that differ only in layout,
  // comments or key order give the same text. This is what results record.
  std::string text;
  std::vector<satalab::PointParams> points;  // the expanded grid, point_id = 0..N-1 (order above)
  std::vector<std::string> axes;             // keys that were lists, in file order (--set additions last)
};

// Reads and parses the file at `path` (see parse_sweep_config).
SweepConfig load_sweep_config(const std::string& path, const std::vector<std::string>& overrides);

// Parses TOML text; `source_name` (usually the file path) prefixes error
// messages and its directory resolves relative input_file paths. `overrides`
// are "key=value" strings from --set, applied in order. Throws
// satalab::InvalidArgument (one line naming the source, line and key) before
// anything runs; also for TOML syntax errors (with toml++'s description).
SweepConfig parse_sweep_config(const std::string& toml_text, const std::string& source_name,
                               const std::vector<std::string>& overrides);

}  // namespace satalab::cli
