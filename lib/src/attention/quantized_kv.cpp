// KV-cache quantization: scheme names, storage bytes, and quantize→dequantize
// of one tensor in float64 (see quantized_kv.hpp for the schemes).
#include "satalab/attention/quantized_kv.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <type_traits>

#include "satalab/error.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/rounding.hpp"
#include "satalab/numeric/scalar_traits.hpp"

namespace satalab {
namespace {

const char* const kCastFormats[] = {"fp16", "bf16", "e4m3", "e4m3sat", "e5m2"};

[[noreturn]] void unknown_scheme(std::string_view name) {
  throw InvalidArgument(
      fmt::format("unknown kv_quant '{}' (allowed: {})", name, kv_quant_allowed()));
}

// A positive decimal integer without sign or leading zeros (so the name stays canonical).
bool parse_count(std::string_view digits, std::size_t& out) {
  if (digits.empty() || digits[0] == '0') return false;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
  return ec == std::errc() && ptr == digits.data() + digits.size();
}

std::vector<std::string_view> split_dashes(std::string_view name) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dash = name.find('-', start);
    parts.push_back(
        name.substr(start, dash == std::string_view::npos ? std::string_view::npos : dash - start));
    if (dash == std::string_view::npos) return parts;
    start = dash + 1;
  }
}

// The grid of a format, read off its parameters: the spacing of the values in
// the binade [2^e, 2^(e+1)) (binades below 2^emin share the subnormal spacing).
double spacing_in_binade(int e, const Format& format) {
  return std::ldexp(1.0, std::max(e, format.emin) - (format.precision_bits - 1));
}

// The next value of `format` above r (r a finite value of the format).
double next_up(double r, const Format& format) {
  if (r == 0) return std::ldexp(1.0, format.min_exponent());
  if (r > 0) return r + spacing_in_binade(std::ilogb(r), format);
  const double magnitude = -r;
  int e = std::ilogb(magnitude);
  if (magnitude == std::ldexp(1.0, e))
    --e;  // from -2^e toward zero the spacing is the lower binade's
  return r + spacing_in_binade(e, format);
}

double beyond_max(double r, const Format& format) {
  return std::fabs(r) > format.max_finite
             ? std::copysign(std::numeric_limits<double>::infinity(), r)
             : r;
}

// Directed rounding, from round_to's nearest value and one step of the grid:
// scales are rounded up and zero points down so that a group's grid covers it.
double round_up_to(double x, const Format& format) {
  const double r = round_to(x, format);
  return r < x ? beyond_max(next_up(r, format), format) : r;
}
double round_down_to(double x, const Format& format) { return -round_up_to(-x, format); }

std::size_t ceil_div(std::size_t a, std::size_t b) { return a / b + (a % b != 0); }

[[noreturn]] void out_of_range(const KvQuantScheme& scheme, KvRole role, std::size_t head,
                               double value, const char* what, const Format& storage) {
  throw InvalidArgument(
      fmt::format("kv_quant '{}': {} of head {} reach {:.6g}; its {} does not fit {} (max {:.6g})",
                  scheme.name, role == KvRole::key ? "keys" : "values", head, value, what,
                  storage.name, storage.max_finite));
}

// Entries marked in out.outlier (dense-and-sparse) stay unchanged and take no
// part in any scale, zero point or absmax.
bool is_outlier(const QuantizedTensor& out, const HeadTensor<double>& x, std::size_t h,
                std::size_t offset) {
  return !out.outlier.empty() && out.outlier[h * x.n_tokens * x.dim + offset] != 0;
}

void quantize_cast(const HeadTensor<double>& x, KvRole role, const KvQuantScheme& scheme,
                   QuantizedTensor& out) {
  const Format& f = scheme.format;
  const std::size_t begin = out.first_quantized * x.dim, end = out.n_quantized * x.dim;
  auto absmax = [&](std::size_t h) {
    double m = 0;
    for (std::size_t i = begin; i < end; ++i)
      if (!is_outlier(out, x, h, i)) m = std::max(m, std::fabs(x.head(h)[i]));
    return m;
  };
  auto scale_for = [&](double amax, std::size_t head) {
    if (amax == 0) return 0.0;
    const double s = round_up_to(amax / f.max_finite, kv_cast_scale_format());
    if (!std::isfinite(s))
      out_of_range(scheme, role, head, amax, "absmax scale", kv_cast_scale_format());
    return s;
  };
  std::vector<double> head_scale(x.heads, 1.0);
  if (scheme.cast_scale == CastScale::tensor) {
    double amax = 0;
    std::size_t where = 0;
    for (std::size_t h = 0; h < x.heads; ++h) {
      const double m = absmax(h);
      if (m > amax) {
        amax = m;
        where = h;
      }
    }
    out.scales = {scale_for(amax, where)};
    std::fill(head_scale.begin(), head_scale.end(), out.scales[0]);
  } else if (scheme.cast_scale == CastScale::head) {
    for (std::size_t h = 0; h < x.heads; ++h) head_scale[h] = scale_for(absmax(h), h);
    out.scales = head_scale;
  } else {
    out.scales = {1.0};
  }
  for (std::size_t h = 0; h < x.heads; ++h) {
    const double s = head_scale[h];
    const double* in = x.head(h);
    double* result = out.values.head(h);
    for (std::size_t i = begin; i < end; ++i) {
      if (is_outlier(out, x, h, i)) continue;
      // s = 0: an all-zero head (or tensor); x/s and q·s are exact (s a power of
      // two times an fp32 significand, q at most 11 significant bits).
      result[i] = s == 0 ? in[i] : round_to(in[i] / s, f) * s;
    }
  }
}

void quantize_int8(const HeadTensor<double>& x, KvRole role, const KvQuantScheme& scheme,
                   QuantizedTensor& out) {
  const Format& storage = kv_integer_scale_format();
  const std::size_t t0 = out.first_quantized, count = out.n_quantized - t0;
  out.scales.assign(x.heads * count, 0.0);
  for (std::size_t h = 0; h < x.heads; ++h) {
    for (std::size_t t = t0; t < out.n_quantized; ++t) {
      const double* in = x.row(h, t);
      double* result = out.values.row(h, t);
      double amax = 0;
      for (std::size_t c = 0; c < x.dim; ++c)
        if (!is_outlier(out, x, h, t * x.dim + c)) amax = std::max(amax, std::fabs(in[c]));
      const double s = amax == 0 ? 0.0 : round_up_to(amax / 127.0, storage);
      if (!std::isfinite(s)) out_of_range(scheme, role, h, amax, "scale absmax/127", storage);
      out.scales[h * count + (t - t0)] = s;
      for (std::size_t c = 0; c < x.dim; ++c) {
        if (is_outlier(out, x, h, t * x.dim + c)) continue;
        const double code = s == 0 ? 0.0 : std::clamp(std::nearbyint(in[c] / s), -127.0, 127.0);
        result[c] = code * s;
      }
    }
  }
}

// One asymmetric group: zero point z = fp16 value <= min, scale s = fp16 value
// >= (max - z) / levels, codes round((x - z) / s) in 0..levels. Every sum
// z + code·s is exact in double (fp16 values span 2^-24 .. 2^16, 40 bits).
void quantize_group(const double* const* elements, std::size_t count, double** results,
                    unsigned bits, double& scale, double& zero, const KvQuantScheme& scheme,
                    KvRole role, std::size_t head) {
  const Format& storage = kv_integer_scale_format();
  const double levels = std::ldexp(1.0, static_cast<int>(bits)) - 1;
  // Outliers (results[i] == nullptr) are left out; a group of outliers only has no parameters.
  std::size_t first = 0;
  while (first < count && results[first] == nullptr) ++first;
  if (first == count) {
    scale = zero = 0;
    return;
  }
  double lo = *elements[first], hi = *elements[first];
  for (std::size_t i = first + 1; i < count; ++i) {
    if (results[i] == nullptr) continue;
    lo = std::min(lo, *elements[i]);
    hi = std::max(hi, *elements[i]);
  }
  zero = round_down_to(lo, storage);
  if (!std::isfinite(zero))
    out_of_range(scheme, role, head, lo, "zero point (group minimum)", storage);
  scale = round_up_to((hi - zero) / levels, storage);
  if (!std::isfinite(scale))
    out_of_range(scheme, role, head, hi, "scale (max - min)/levels", storage);
  for (std::size_t i = 0; i < count; ++i) {
    if (results[i] == nullptr) continue;
    const double code =
        scale == 0 ? 0.0 : std::clamp(std::nearbyint((*elements[i] - zero) / scale), 0.0, levels);
    *results[i] = zero + code * scale;
  }
}

void quantize_grouped(const HeadTensor<double>& x, KvRole role, const KvQuantScheme& scheme,
                      QuantizedTensor& out) {
  const std::size_t t0 = out.first_quantized, n = out.n_quantized - t0, d = x.dim,
                    g = scheme.group;
  std::vector<const double*> elements(g);
  std::vector<double*> results(g);
  // For every head h and line l of `lines`, groups of g of the `length`
  // elements along the other axis; element(h, l, i) is the offset of element
  // i of line l in its head's [tokens × d] block.
  auto quantize_lines = [&](std::size_t lines, std::size_t length, auto element) {
    const std::size_t groups = ceil_div(length, g);
    out.scales.assign(x.heads * lines * groups, 0.0);
    out.zero_points.assign(out.scales.size(), 0.0);
    for (std::size_t h = 0; h < x.heads; ++h) {
      for (std::size_t l = 0; l < lines; ++l) {
        for (std::size_t k = 0; k < groups; ++k) {
          const std::size_t i0 = k * g, count = std::min(g, length - i0);
          for (std::size_t i = 0; i < count; ++i) {
            const std::size_t offset = element(l, i0 + i);
            elements[i] = x.head(h) + offset;
            results[i] = is_outlier(out, x, h, offset) ? nullptr : out.values.head(h) + offset;
          }
          const std::size_t at = (h * lines + l) * groups + k;
          quantize_group(elements.data(), count, results.data(), scheme.bits, out.scales[at],
                         out.zero_points[at], scheme, role, h);
        }
      }
    }
  };
  if (role == KvRole::key) {
    // Per channel along tokens: group (h, c, t / g) holds tokens first + t .. first + t+g-1
    // of channel c (first: the first quantized token, after the sinks).
    quantize_lines(d, n, [&](std::size_t c, std::size_t t) { return (t0 + t) * d + c; });
  } else {
    // Per token along channels: group (h, t, c / g) holds channels c0 .. c0+g-1 of token first + t.
    quantize_lines(n, d, [&](std::size_t t, std::size_t c) { return (t0 + t) * d + c; });
  }
}

// Dense-and-sparse: per head, the ceil(f·N) entries of largest magnitude
// among the N entries of the quantized tokens (ties: the earlier entry).
void mark_outliers(const HeadTensor<double>& x, double fraction, QuantizedTensor& out) {
  const std::size_t begin = out.first_quantized * x.dim, end = out.n_quantized * x.dim;
  const std::size_t total = end - begin;
  const auto keep = std::min(
      total, static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(total))));
  out.outlier.assign(x.data.size(), 0);
  std::vector<std::size_t> order(total);
  for (std::size_t h = 0; h < x.heads; ++h) {
    const double* in = x.head(h);
    for (std::size_t i = 0; i < total; ++i) order[i] = begin + i;
    const auto larger = [&](std::size_t a, std::size_t b) {
      const double ma = std::fabs(in[a]), mb = std::fabs(in[b]);
      return ma > mb || (ma == mb && a < b);
    };
    std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                     larger);
    for (std::size_t i = 0; i < keep; ++i) out.outlier[h * x.n_tokens * x.dim + order[i]] = 1;
  }
}

// RoPE as the workload's rope modifier applies it (modifiers.cpp): channel
// pair (2t, 2t+1) of token i rotated by i·theta^(-2t/d); `inverse` rotates back.
void rotate_keys(HeadTensor<double>& k, double theta, bool inverse) {
  const std::size_t d = k.dim;
  std::vector<double> frequency(d / 2);
  for (std::size_t t = 0; t < d / 2; ++t)
    frequency[t] = std::pow(theta, -2.0 * static_cast<double>(t) / static_cast<double>(d));
  for (std::size_t h = 0; h < k.heads; ++h) {
    for (std::size_t i = 0; i < k.n_tokens; ++i) {
      double* x = k.row(h, i);
      for (std::size_t t = 0; t < d / 2; ++t) {
        const double angle = static_cast<double>(i) * frequency[t];
        const double c = std::cos(angle), s = inverse ? -std::sin(angle) : std::sin(angle);
        const double x0 = x[2 * t], x1 = x[2 * t + 1];
        x[2 * t] = x0 * c - x1 * s;
        x[2 * t + 1] = x0 * s + x1 * c;
      }
    }
  }
}

// Sinks first, then the residual out of the rest: [0, first) sinks,
// [first, end) quantized, [end, n) the residual.
struct TokenRanges {
  std::size_t first = 0, end = 0;
};
TokenRanges token_ranges(const KvQuantScheme& scheme, std::size_t n) {
  if (scheme.kind == KvQuantKind::none) return {0, 0};
  const std::size_t first = std::min(scheme.sink_tokens, n);
  return {first, n - std::min(scheme.residual, n - first)};
}

bool parse_fraction(std::string_view digits, double& out) {
  if (digits.empty()) return false;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
  return ec == std::errc() && ptr == digits.data() + digits.size();
}

}  // namespace

const Format& kv_sink_format(const Format& input) {
  return storage_bits(input) <= 16 ? input : fp16();
}

std::size_t kv_quantized_prefix(const KvQuantScheme& scheme, KvRole role, std::size_t query,
                                std::size_t n_tokens) {
  const TokenRanges r = token_ranges(scheme, n_tokens);
  if (!scheme.residual_per_query) return r.end;
  // Tokens j <= query - R are old enough; keys of a per-channel scheme only in whole groups.
  const std::size_t seen = query + 1;
  const std::size_t old = seen > scheme.residual ? seen - scheme.residual : 0;
  if (old <= r.first) return r.first;
  std::size_t count = old - r.first;
  if (role == KvRole::key && scheme.kind == KvQuantKind::int_grouped)
    count -= count % scheme.group;
  return std::min(r.first + count, r.end);
}

std::string kv_quant_allowed() {
  return "none, fp16, bf16, e4m3, e4m3sat, e5m2 (each optionally -head or -unscaled), int8, "
         "int4-g<G>, int2-g<G> "
         "(G >= 1), each but none optionally followed, in this order, by -prerope (keys quantized "
         "before RoPE), -o[<f>] (dense-and-sparse: the largest fraction f in (0, 1) of entries "
         "kept exactly, default 0.01), -s<S> (first S tokens kept in 16 bits), -r<R> (R >= 1 "
         "recent tokens of the sequence unquantized) or -rq<R> (each query's own R recent "
         "tokens unquantized), e.g. int4-g32-r128, int4-g32-prerope-o0.01-s4-rq128";
}

const Format& kv_cast_scale_format() { return fp32(); }
const Format& kv_integer_scale_format() { return fp16(); }

KvQuantScheme kv_quant_scheme(std::string_view name) {
  KvQuantScheme scheme;
  scheme.name = std::string(name);
  const std::vector<std::string_view> parts = split_dashes(name);
  std::size_t next = 1;
  const std::string_view base = parts[0];
  if (base == "none") {
    if (parts.size() != 1) unknown_scheme(name);
    return scheme;
  }
  if (std::find(std::begin(kCastFormats), std::end(kCastFormats), base) != std::end(kCastFormats)) {
    scheme.kind = KvQuantKind::float_cast;
    scheme.format = format_by_name(base);
    if (next < parts.size() && parts[next] == "head")
      scheme.cast_scale = CastScale::head, ++next;
    else if (next < parts.size() && parts[next] == "unscaled")
      scheme.cast_scale = CastScale::unscaled, ++next;
  } else if (base == "int8") {
    scheme.kind = KvQuantKind::int_per_token;
    scheme.bits = 8;
  } else if (base == "int4" || base == "int2") {
    scheme.kind = KvQuantKind::int_grouped;
    scheme.bits = base == "int4" ? 4 : 2;
    if (next >= parts.size() || parts[next].empty() || parts[next][0] != 'g') {
      throw InvalidArgument(
          fmt::format("kv_quant '{}' needs a group size, as in {}-g32 (allowed: {})", name, base,
                      kv_quant_allowed()));
    }
    if (!parse_count(parts[next].substr(1), scheme.group)) {
      throw InvalidArgument(
          fmt::format("kv_quant '{}': group size '{}' is invalid (must be an integer >= 1 without "
                      "leading zeros, as in {}-g32; allowed: {})",
                      name, parts[next].substr(1), base, kv_quant_allowed()));
    }
    ++next;
  } else {
    unknown_scheme(name);
  }
  if (next < parts.size() && parts[next] == "prerope") scheme.pre_rope = true, ++next;
  if (next < parts.size() && !parts[next].empty() && parts[next][0] == 'o') {
    const std::string_view digits = parts[next].substr(1);
    scheme.outlier_fraction = 0.01;
    if (!digits.empty() && !(parse_fraction(digits, scheme.outlier_fraction) &&
                             scheme.outlier_fraction > 0 && scheme.outlier_fraction < 1)) {
      throw InvalidArgument(
          fmt::format("kv_quant '{}': outlier fraction '{}' is invalid (must be a number in (0, 1), "
                      "as in {}-o0.01; allowed: {})",
                      name, digits, base, kv_quant_allowed()));
    }
    if (scheme.cast_scale == CastScale::unscaled && scheme.kind == KvQuantKind::float_cast) {
      throw InvalidArgument(fmt::format(
          "kv_quant '{}': outliers (-o) need a scale to spare them from, and -unscaled has none "
          "(allowed: {})",
          name, kv_quant_allowed()));
    }
    ++next;
  }
  if (next < parts.size() && !parts[next].empty() && parts[next][0] == 's') {
    if (!parse_count(parts[next].substr(1), scheme.sink_tokens)) {
      throw InvalidArgument(
          fmt::format("kv_quant '{}': sink tokens '{}' is invalid (must be an integer >= 1 without "
                      "leading zeros, as in {}-s4; allowed: {})",
                      name, parts[next].substr(1), base, kv_quant_allowed()));
    }
    ++next;
  }
  if (next < parts.size() && !parts[next].empty() && parts[next][0] == 'r') {
    std::string_view digits = parts[next].substr(1);
    if (!digits.empty() && digits[0] == 'q') scheme.residual_per_query = true, digits.remove_prefix(1);
    if (!parse_count(digits, scheme.residual)) {
      throw InvalidArgument(
          fmt::format("kv_quant '{}': residual '{}' is invalid (must be an integer >= 1 without "
                      "leading zeros, as in {}-r128 or {}-rq128; allowed: {})",
                      name, digits, base, base, kv_quant_allowed()));
    }
    ++next;
  }
  if (next != parts.size()) unknown_scheme(name);
  return scheme;
}

KvCacheBytes kv_cache_bytes(const KvQuantScheme& scheme, const Format& unquantized,
                            std::uint64_t heads, std::uint64_t n_tokens, std::uint64_t d_key,
                            std::uint64_t d_value) {
  constexpr std::string_view what = "KV cache bytes";
  // Tokens [0, first) sinks, [first, end) quantized, the rest unquantized; with
  // -rq the cache the last query reads (keys of int4/int2 in whole groups only).
  const TokenRanges ranges = token_ranges(scheme, static_cast<std::size_t>(n_tokens));
  const std::uint64_t first = ranges.first, region = ranges.end - ranges.first;
  const std::uint64_t n_q_key =
      n_tokens == 0 ? 0
                    : kv_quantized_prefix(scheme, KvRole::key, static_cast<std::size_t>(n_tokens - 1),
                                          static_cast<std::size_t>(n_tokens)) - first;
  const std::uint64_t n_q_value = region;  // per token: the same for -r<R> and -rq<R>
  const std::uint64_t n_q = n_q_value;
  KvCacheBytes bytes;
  const std::uint64_t unquantized_elements = checked_add(
      checked_mul(n_tokens - first - n_q_key, d_key, what),
      checked_mul(n_tokens - first - n_q_value, d_value, what), what);
  const std::uint64_t unquantized_bits =
      checked_mul(checked_mul(heads, unquantized_elements, what),
                  static_cast<std::uint64_t>(storage_bits(unquantized)), what);
  bytes.unquantized_bytes = (unquantized_bits + 7) / 8;
  const std::uint64_t width = checked_add(d_key, d_value, what);
  const std::uint64_t sink_bits =
      checked_mul(checked_mul(checked_mul(heads, first, what), width, what),
                  static_cast<std::uint64_t>(storage_bits(kv_sink_format(unquantized))), what);
  bytes.sink_bytes = (sink_bits + 7) / 8;
  if (scheme.outlier_fraction > 0) {
    // Per head and tensor ceil(f·N) of the N quantized entries, each a value and a 32-bit index.
    auto kept = [&](std::uint64_t d) {
      const std::uint64_t total = checked_mul(region, d, what);
      return std::min(total, static_cast<std::uint64_t>(
                                 std::ceil(scheme.outlier_fraction * static_cast<double>(total))));
    };
    const std::uint64_t outliers =
        checked_mul(heads, checked_add(kept(d_key), kept(d_value), what), what);
    const std::uint64_t bits = checked_mul(
        outliers, static_cast<std::uint64_t>(storage_bits(unquantized)) + 32, what);
    bytes.outlier_bytes = (bits + 7) / 8;
  }
  if (scheme.kind == KvQuantKind::none || n_q == 0) return bytes;

  const std::uint64_t code_bits = scheme.kind == KvQuantKind::float_cast
                                      ? static_cast<std::uint64_t>(storage_bits(scheme.format))
                                      : scheme.bits;
  // Codes are packed per head and tensor, each padded to whole bytes.
  auto packed = [&](std::uint64_t tokens, std::uint64_t d) {
    return (checked_mul(checked_mul(tokens, d, what), code_bits, what) + 7) / 8;
  };
  bytes.code_bytes = checked_mul(
      heads, checked_add(packed(n_q_key, d_key), packed(n_q_value, d_value), what), what);

  const std::uint64_t cast_scale =
      static_cast<std::uint64_t>(storage_bits(kv_cast_scale_format())) / 8;
  const std::uint64_t int_scale =
      static_cast<std::uint64_t>(storage_bits(kv_integer_scale_format())) / 8;
  switch (scheme.kind) {
    case KvQuantKind::float_cast:
      if (scheme.cast_scale == CastScale::tensor) bytes.scale_bytes = 2 * cast_scale;
      if (scheme.cast_scale == CastScale::head)
        bytes.scale_bytes = checked_mul(2 * heads, cast_scale, what);
      break;
    case KvQuantKind::int_per_token:  // one scale per token of K and of V
      bytes.scale_bytes = checked_mul(
          checked_mul(heads, checked_add(n_q_key, n_q_value, what), what), int_scale, what);
      break;
    case KvQuantKind::int_grouped: {  // a scale and a zero point per group
      const std::uint64_t g = scheme.group;
      const std::uint64_t key_groups = checked_mul(d_key, ceil_div(n_q_key, g), what);
      const std::uint64_t value_groups = checked_mul(n_q_value, ceil_div(d_value, g), what);
      bytes.scale_bytes =
          checked_mul(checked_mul(heads, checked_add(key_groups, value_groups, what), what),
                      2 * int_scale, what);
      break;
    }
    case KvQuantKind::none:
      break;
  }
  return bytes;
}

double kv_bytes_per_token(const KvQuantScheme& scheme, const Format& unquantized,
                          std::uint64_t heads, std::uint64_t n_tokens, std::uint64_t d_key,
                          std::uint64_t d_value) {
  if (n_tokens == 0) return 0;
  return static_cast<double>(
             kv_cache_bytes(scheme, unquantized, heads, n_tokens, d_key, d_value).total()) /
         static_cast<double>(n_tokens);
}

QuantizedTensor quantize_dequantize(const HeadTensor<double>& x, KvRole role,
                                    const KvQuantScheme& scheme) {
  QuantizedTensor out;
  out.values = x;
  const TokenRanges ranges = token_ranges(scheme, x.n_tokens);
  out.first_quantized = ranges.first;
  out.n_quantized = ranges.end;
  if (out.n_quantized == out.first_quantized) return out;
  if (scheme.outlier_fraction > 0) mark_outliers(x, scheme.outlier_fraction, out);
  switch (scheme.kind) {
    case KvQuantKind::none:
      break;
    case KvQuantKind::float_cast:
      quantize_cast(x, role, scheme, out);
      break;
    case KvQuantKind::int_per_token:
      quantize_int8(x, role, scheme, out);
      break;
    case KvQuantKind::int_grouped:
      quantize_grouped(x, role, scheme, out);
      break;
  }
  return out;
}

template <class T>
DequantizedCache<T> dequantized_cache(const HeadTensor<T>& x, KvRole role,
                                      const KvQuantScheme& scheme, const PrecisionPolicy& policy,
                                      std::optional<double> rope_theta) {
  DequantizedCache<T> cache;
  if (scheme.kind == KvQuantKind::none) {
    cache.values = x;
    return cache;
  }
  const bool pre_rope = scheme.pre_rope && role == KvRole::key;
  if (pre_rope && !rope_theta) {
    throw InvalidArgument(fmt::format(
        "kv_quant '{}' quantizes keys before RoPE and needs the workload's rope modifier (its "
        "theta); add rope to the modifiers or drop -prerope",
        scheme.name));
  }
  if (pre_rope && x.dim % 2 != 0) {
    throw InvalidArgument(fmt::format("kv_quant '{}': -prerope needs an even d_key (got {})",
                                      scheme.name, x.dim));
  }
  HeadTensor<double> stored(x.heads, x.n_tokens, x.dim);
  // Exact: K and V are already in the input format, which double holds (the
  // multiprecision policies' inputs are float64 values, not rounded further).
  std::transform(x.data.begin(), x.data.end(), stored.data.begin(), to_double<T>);
  if (pre_rope) rotate_keys(stored, *rope_theta, /*inverse=*/true);
  QuantizedTensor q = quantize_dequantize(stored, role, scheme);
  if (pre_rope) rotate_keys(q.values, *rope_theta, /*inverse=*/false);
  cache.values = HeadTensor<T>(x.heads, x.n_tokens, x.dim);
  // Rounded in double, once, into the input format; then exact in T.
  std::transform(q.values.data.begin(), q.values.data.end(), cache.values.data.begin(),
                 [&](double v) { return T(round_to(v, policy.input)); });
  const Format& sink = kv_sink_format(policy.input);
  for (std::size_t h = 0; h < x.heads; ++h) {
    // Tokens outside the quantized range: the sinks in 16 bits, the residual
    // as stored (also with -prerope, where the rotation back and forth would
    // not return them exactly).
    for (std::size_t t = 0; t < x.n_tokens; ++t) {
      if (t >= q.first_quantized && t < q.n_quantized) continue;
      const T* in = x.row(h, t);
      T* result = cache.values.row(h, t);
      for (std::size_t c = 0; c < x.dim; ++c) {
        if (t >= q.first_quantized) {
          result[c] = in[c];
          continue;
        }
        const double v = round_to(to_double<T>(in[c]), sink);
        if (!std::isfinite(v)) {
          throw InvalidArgument(fmt::format(
              "kv_quant '{}': sink token {} of head {} holds {:.6g}, beyond {} (max {:.6g})",
              scheme.name, t, h, to_double<T>(in[c]), sink.name, sink.max_finite));
        }
        result[c] = T(round_to(v, policy.input));
      }
    }
  }
  if (scheme.kind == KvQuantKind::float_cast) cache.cast_scales = std::move(q.scales);
  return cache;
}

#define SATALAB_INSTANTIATE_KVQUANT(T)                                         \
  template DequantizedCache<T> dequantized_cache(const HeadTensor<T>&, KvRole, \
                                                 const KvQuantScheme&, const PrecisionPolicy&, \
                                                 std::optional<double>);
SATALAB_INSTANTIATE_KVQUANT(float)
SATALAB_INSTANTIATE_KVQUANT(double)
SATALAB_INSTANTIATE_KVQUANT(mp_t)
#undef SATALAB_INSTANTIATE_KVQUANT

}  // namespace satalab
