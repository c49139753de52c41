#pragma once
// KV-cache quantization schemes (docs/architecture.md): keys and values are
// quantized and dequantized as a cache would store them, then exact attention
// runs on the dequantized tensors (Method::exact_kvquant in compute.hpp). That
// is exact attention over a quantized cache: every difference from exact
// attention at the same policy is the cache's.
//
// Schemes, by name (kv_quant_scheme):
//   none                    the cache holds K and V in the policy's input format
//   fp16, bf16, e4m3, e4m3sat, e5m2
//                           cast to that format after dividing by an absmax
//                           scale s = absmax / max_finite (the largest magnitude
//                           maps to the format's max), one scale per tensor
//                           (K and V each); suffix -head: one scale per head;
//                           suffix -unscaled: a plain cast (s = 1), so values
//                           past the format's max follow its overflow rule
//                           (e4m3: NaN, e4m3sat: ±448, the others: ±inf).
//                           Scales are stored in fp32, rounded up.
//   int8                    symmetric absmax per token (per head and row of K
//                           or V): codes -127..127, s = absmax / 127.
//   int4-g<G>, int2-g<G>    asymmetric min/max in groups of G elements, in the
//                           KIVI arrangement (Liu et al. 2024): keys per channel
//                           along tokens (G consecutive tokens of one channel),
//                           values per token along channels (G consecutive
//                           channels of one token); codes 0..2^b-1,
//                           x ≈ zero_point + code·s. A last group may be shorter.
//   any of them but none, suffix -r<R>: the R most recent tokens (the last R
//                           of the sequence) stay unquantized, in the policy's
//                           input format, as KIVI's full-precision residual.
// e.g. "e4m3-head", "int4-g32-r128". Integer scales and zero points are stored
// in fp16, the zero point rounded down and the scale up (so the grid covers
// the group and no element is clamped by more than half a step).
//
// Every element's dequantized value is the nearest point of its grid (ties
// either way): |x - x'| <= s/2 for integer schemes and s·u/2 for casts, u the
// format's spacing at x/s (up to a relative 2^-52 of the carrier's division).
//
// Residual and causal attention: the cache is the one after all n tokens were
// written, and every query reads it. A causal query i attends to the cached
// (dequantized) keys j <= i; the residual holds the last R tokens of the
// sequence, not the R tokens before each query (for that, -rq<R> below).
//
// Further suffixes, after the ones above and in this order (issue 18, the
// schemes the KV-quantization literature compares; any base but none):
//   -prerope    keys are quantized before RoPE (KVQuant's pre-RoPE keys): the
//               cached keys are rotated back by the workload's RoPE angles
//               (token i at position i, theta from the rope modifier), quantized
//               and dequantized, and rotated forward again before attention
//               (in float64, then rounded once into the input format). The
//               rotated-back keys are the workload's pre-rotation keys up to the
//               input format's rounding when rope is the last modifier acting on
//               k. Needs the rope modifier (AttentionOptions::kv_rope_theta).
//               Without it keys are quantized as the workload gives them: after
//               RoPE when the workload has the rope modifier.
//   -o[<f>]     dense-and-sparse (KVQuant): per head and tensor (K, V), the
//               ceil(f·N) entries of largest magnitude among the N quantized
//               entries (ties: the earlier entry) are kept exactly, in the
//               input format, and left out of every scale, zero point and
//               absmax; the rest are quantized. f in (0, 1), default 0.01
//               ("-o" alone); e.g. int4-g32-o0.01. Stored as value (input
//               format) + a 32-bit index each. Not with -unscaled (no scale
//               for the outliers to spare).
//   -s<S>       attention sinks: the first S tokens are kept in 16 bits (in the
//               input format when it has at most 16 bits, else rounded to fp16)
//               and the quantized tokens start after them (key groups start at
//               token S).
//   -rq<R>      KIVI's residual per query (instead of -r<R>): query i reads its
//               own recent tokens in full precision (the input format), as a
//               decoder that appends one token at a time and quantizes only
//               complete groups: a value (and a key of a per-token scheme) is
//               quantized once it is R tokens old (j <= i - R); per-channel key
//               groups (int4/int2) only when the whole group of G tokens is
//               (tokens S + kG .. S + kG + G - 1 with S + kG + G - 1 <= i - R),
//               so a key group never holds fewer than G tokens. Scales of the
//               casts (per tensor or head) and the outliers are those of the
//               cache after all n tokens. Needs the causal mask. Bytes: the
//               cache the last query reads.
// e.g. "int4-g32-prerope-o0.01-s4-rq128", "e4m3-head-s1".
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "satalab/attention/head_tensor.hpp"
#include "satalab/numeric/format.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {

enum class KvQuantKind {
  none,
  float_cast,     // fp16, bf16, e4m3, e4m3sat, e5m2
  int_per_token,  // int8 symmetric absmax
  int_grouped,    // int4 / int2 asymmetric min/max, KIVI arrangement
};

enum class CastScale { tensor, head, unscaled };

// Which tensor of the cache: keys are grouped per channel, values per token.
enum class KvRole { key, value };

struct KvQuantScheme {
  std::string name = "none";  // canonical name, as kv_quant_scheme() accepts it
  KvQuantKind kind = KvQuantKind::none;
  Format format;                             // float_cast: the target format
  CastScale cast_scale = CastScale::tensor;  // float_cast
  unsigned bits = 0;                         // integer schemes: 8, 4 or 2
  std::size_t group = 0;                     // int_grouped: G
  std::size_t residual = 0;                  // R most recent tokens kept unquantized
  // KV-cache schemes of issue 18 (suffixes -prerope, -o, -s, -rq):
  bool pre_rope = false;            // keys quantized before RoPE
  double outlier_fraction = 0;      // dense-and-sparse: fraction kept exactly (0: none)
  std::size_t sink_tokens = 0;      // first S tokens kept in 16 bits
  bool residual_per_query = false;  // residual counts back from each query (-rq<R>)
};

// Parses a scheme name (grammar above). Throws InvalidArgument naming the
// value and the allowed names, e.g. for "int3", "int4-g0", "e4m3-r".
KvQuantScheme kv_quant_scheme(std::string_view name);
// The allowed names, as listed in error messages and --help.
std::string kv_quant_allowed();
// Formats scales and zero points are stored in.
const Format& kv_cast_scale_format();     // fp32
const Format& kv_integer_scale_format();  // fp16

// Storage of one KV cache, all heads: codes (packed, per head and tensor, to
// whole bytes), scales and zero points, and the unquantized tokens (scheme
// none, and the residual) in `unquantized` (the policy's input format).
struct KvCacheBytes {
  std::uint64_t code_bytes = 0;
  std::uint64_t scale_bytes = 0;  // scales and zero points
  std::uint64_t unquantized_bytes = 0;
  // Issue 18: the sparse outliers (value in the input format + 32-bit index)
  // and the sink tokens (16 bits or fewer).
  std::uint64_t outlier_bytes = 0;
  std::uint64_t sink_bytes = 0;
  std::uint64_t total() const { return code_bytes + scale_bytes + unquantized_bytes + outlier_bytes + sink_bytes; }
};
KvCacheBytes kv_cache_bytes(const KvQuantScheme& scheme, const Format& unquantized,
                            std::uint64_t heads, std::uint64_t n_tokens, std::uint64_t d_key,
                            std::uint64_t d_value);
// Bytes per token of the whole cache (all heads): kv_cache_bytes(...).total() / n_tokens.
double kv_bytes_per_token(const KvQuantScheme& scheme, const Format& unquantized,
                          std::uint64_t heads, std::uint64_t n_tokens, std::uint64_t d_key,
                          std::uint64_t d_value);

// One tensor [heads, n_tokens, dim] quantized and dequantized, in float64
// (exact: every dequantized value is representable in double). Layout of the
// per-group parameters:
//   float_cast   scales: 1 (tensor, unscaled: 1.0) or `heads` (head); no zero points
//   int8         scales [heads, n_quantized]; no zero points (symmetric)
//   int_grouped  key:   scales, zero_points [heads, dim, ceil(n_quantized / G)]
//                value: scales, zero_points [heads, n_quantized, ceil(dim / G)]
// with n_quantized = n_tokens - min(R, n_tokens). Tokens >= n_quantized are
// copied unchanged. With sinks (-s<S>) the quantized tokens are
// first_quantized = min(S, n_tokens) .. n_quantized - 1 (n_quantized = n_tokens -
// min(R, n_tokens - first_quantized)), the per-group parameters are laid out as
// above over those n_quantized - first_quantized tokens, and the sink tokens
// are copied unchanged too (dequantized_cache rounds them to 16 bits). With
// outliers (-o) `outlier` marks (1) the entries kept unchanged, [heads·n·dim]. A scale of 0 means a group of equal fp16 values (int) or an
// all-zero tensor or head (casts): its elements are their zero point (or 0).
struct QuantizedTensor {
  HeadTensor<double> values;
  std::vector<double> scales, zero_points;
  std::size_t n_quantized = 0;
  // Issue 18: sinks and outliers.
  std::size_t first_quantized = 0;
  std::vector<unsigned char> outlier;  // empty without -o
};
// Throws InvalidArgument when a scale or zero point does not fit its storage
// format (int schemes: |x| beyond fp16's range) naming the scheme and value.
QuantizedTensor quantize_dequantize(const HeadTensor<double>& x, KvRole role,
                                    const KvQuantScheme& scheme);

// The cache as exact attention reads it, in carrier T: `x` (already in the
// policy's input format, as compute_attention stores K and V) quantized and
// dequantized by `scheme`, each value rounded once into the input format.
// Scheme none returns x unchanged. Instantiated for float, double and mp_t.
// rope_theta: the workload's RoPE base, needed by -prerope keys (InvalidArgument
// without it).
template <class T>
struct DequantizedCache {
  HeadTensor<T> values;
  std::vector<double> cast_scales;  // float casts: the absmax scale(s) used; empty otherwise
};
template <class T>
DequantizedCache<T> dequantized_cache(const HeadTensor<T>& x, KvRole role,
                                      const KvQuantScheme& scheme, const PrecisionPolicy& policy,
                                      std::optional<double> rope_theta = std::nullopt);

// -rq<R>: how many leading tokens of the cache query `query` reads in their
// quantized form (the others, up to the query, in full precision or as sinks):
// tokens [first_quantized, kv_quantized_prefix) are quantized, for a cache of
// n_tokens tokens. Without -rq: the n_quantized of quantize_dequantize for
// every query.
std::size_t kv_quantized_prefix(const KvQuantScheme& scheme, KvRole role, std::size_t query,
                                std::size_t n_tokens);

// The 16-bit-or-narrower format sink tokens are kept in: the input format when
// it has at most 16 bits, else fp16.
const Format& kv_sink_format(const Format& input);

}  // namespace satalab
