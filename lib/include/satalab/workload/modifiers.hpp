#pragma once
// Realistic workloads: a base distribution (gaussian, heavy-tailed, needle,
// fitted, a file) followed by a list of modifiers, each reproducing one way in
// which trained attention differs from i.i.d. gaussian inputs
// (docs/architecture.md §1, questions 3 and 7). Modifiers act on the float64
// inputs in place, in the order given, before any rounding into a policy's
// input format. Each is deterministic: its random choices (channels,
// directions) come from a Boost.Random mt19937_64 seeded with the workload's
// seed and the modifier's position in the list, so the same list and seed give
// the same inputs on every platform with the same Boost.
//
//  - rope: rotary position embedding (Su et al. 2021) on q and k. Channel
//    pairs (2t, 2t+1), t < d_key/2, of the token at position i are rotated by
//    the angle i · θ^(−2t/d_key). Norms are unchanged and q_i·k_j depends on
//    the positions only through i − j. Needs an even d_key.
//  - outliers: `count` channels of q and k (chosen at random, the same for
//    every head and token) multiplied by `magnitude`, as the few large
//    channels of trained keys and queries: their variance becomes
//    magnitude² times the base variance.
//  - key-bias: a direction u (unit, random per head) times `norm` added to
//    every key, so every logit of query i carries the offset norm·(q_i·u)/c,
//    which cancels in exact softmax and not in a truncated series.
//  - sink: the first `tokens` keys of every head become b·u (u a unit
//    direction per head) and every query gains the component a·u with
//    a = alignment · scale; b = logit · c / a. Then s_ij = logit·(1 + (q°_i·u)/a)
//    for the original query q°_i: the sink logits have mean `logit` and
//    standard deviation logit / alignment over queries of i.i.d. N(0, scale²)
//    entries, as attention sinks draw a large logit from every query.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "satalab/workload/gaussian.hpp"

namespace satalab {

enum class ModifierKind { rope, outliers, key_bias, sink };

struct WorkloadModifier {
  ModifierKind kind = ModifierKind::rope;
  double rope_theta = 10000.0;          // rope: base θ
  std::size_t outlier_channels = 2;     // outliers: how many channels
  double outlier_magnitude = 3.0;       // outliers: factor on those channels
  double key_bias_norm = 4.0;           // key-bias: norm of the shared key direction
  std::size_t sink_tokens = 1;          // sink: how many leading tokens are sinks
  double sink_logit = 10.0;             // sink: mean logit s = q·k/c a sink draws
  double sink_alignment = 4.0;          // sink: a / scale, the query's shared component in units of scale
};

// Names as they appear in sweep files and on the command line: rope, outliers, key-bias, sink.
ModifierKind modifier_by_name(std::string_view name);  // InvalidArgument lists the names
std::string_view modifier_name(ModifierKind kind);
std::vector<std::string> modifier_names();

// A list written as names joined by '+' ("rope+outliers"); "" and "none" are
// the empty list. InvalidArgument for an unknown or repeated name.
std::vector<ModifierKind> parse_modifier_list(std::string_view text);

// Applies the modifiers in order. `scale` is the base distribution's standard
// deviation of q and k entries (the sink uses it), `softmax_denominator` the c
// of s = q·k/c. Throws InvalidArgument (one line, naming the modifier and the
// value) for: rope with an odd d_key or θ not finite and > 1; outliers with
// count 0 or > d_key or a magnitude not finite and > 0; key-bias with a norm
// not finite and >= 0; sink with tokens 0 or > n_tokens, a logit not finite,
// an alignment not finite and > 0; scale or c not finite and > 0.
void apply_modifiers(QkvArrays& inputs, const std::vector<WorkloadModifier>& modifiers, std::uint64_t seed,
                     double scale, double softmax_denominator);

// The channels `outliers` picks for this seed and position in the list (sorted).
std::vector<std::size_t> outlier_channels(std::size_t d_key, std::size_t count, std::uint64_t seed,
                                          std::size_t position);

// fitted: per head, gaussian q, k and v with the mean vector and covariance
// matrix of that head's q, k and v in `source` (each of q, k, v fitted on its
// own; cross-covariances between them are not modelled). Draws n_tokens tokens
// per head (any n, also far beyond the source's length) as mean + L·z with
// L the Cholesky factor of the covariance (a jitter of 1e-12 · trace/d is
// added when the covariance is singular) and z ~ N(0, I) from mt19937_64(seed).
// Throws InvalidArgument when the source has fewer than 2 tokens or n_tokens
// is 0; ResourceLimit when the arrays would exceed the memory limit.
QkvArrays fitted_inputs(const QkvArrays& source, std::size_t n_tokens, std::uint64_t seed);

}  // namespace satalab
