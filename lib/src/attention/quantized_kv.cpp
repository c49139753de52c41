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

void quantize_cast(const HeadTensor<double>& x, KvRole role, const KvQuantScheme& scheme,
                   QuantizedTensor& out) {
  const Format& f = scheme.format;
  const std::size_t per_head = out.n_quantized * x.dim;
  auto absmax = [&](std::size_t h) {
    double m = 0;
    for (std::size_t i = 0; i < per_head; ++i) m = std::max(m, std::fabs(x.head(h)[i]));
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
    for (std::size_t i = 0; i < per_head; ++i) {
      // s = 0: an all-zero head (or tensor); x/s and q·s are exact (s a power of
      // two times an fp32 significand, q at most 11 significant bits).
      result[i] = s == 0 ? in[i] : round_to(in[i] / s, f) * s;
    }
  }
}

void quantize_int8(const HeadTensor<double>& x, KvRole role, const KvQuantScheme& scheme,
                   QuantizedTensor& out) {
  const Format& storage = kv_integer_scale_format();
  out.scales.assign(x.heads * out.n_quantized, 0.0);
  for (std::size_t h = 0; h < x.heads; ++h) {
    for (std::size_t t = 0; t < out.n_quantized; ++t) {
      const double* in = x.row(h, t);
      double* result = out.values.row(h, t);
      double amax = 0;
      for (std::size_t c = 0; c < x.dim; ++c) amax = std::max(amax, std::fabs(in[c]));
      const double s = amax == 0 ? 0.0 : round_up_to(amax / 127.0, storage);
      if (!std::isfinite(s)) out_of_range(scheme, role, h, amax, "scale absmax/127", storage);
      out.scales[h * out.n_quantized + t] = s;
      for (std::size_t c = 0; c < x.dim; ++c) {
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
  double lo = *elements[0], hi = *elements[0];
  for (std::size_t i = 1; i < count; ++i) {
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
    const double code =
        scale == 0 ? 0.0 : std::clamp(std::nearbyint((*elements[i] - zero) / scale), 0.0, levels);
    *results[i] = zero + code * scale;
  }
}

void quantize_grouped(const HeadTensor<double>& x, KvRole role, const KvQuantScheme& scheme,
                      QuantizedTensor& out) {
  const std::size_t n = out.n_quantized, d = x.dim, g = scheme.group;
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
            results[i] = out.values.head(h) + offset;
          }
          const std::size_t at = (h * lines + l) * groups + k;
          quantize_group(elements.data(), count, results.data(), scheme.bits, out.scales[at],
                         out.zero_points[at], scheme, role, h);
        }
      }
    }
  };
  if (role == KvRole::key) {
    // Per channel along tokens: group (h, c, t / g) holds tokens t0 .. t0+g-1 of channel c.
    quantize_lines(d, n, [&](std::size_t c, std::size_t t) { return t * d + c; });
  } else {
    // Per token along channels: group (h, t, c / g) holds channels c0 .. c0+g-1 of token t.
    quantize_lines(n, d, [&](std::size_t t, std::size_t c) { return t * d + c; });
  }
}

}  // namespace

std::string kv_quant_allowed() {
  return "none, fp16, bf16, e4m3, e4m3sat, e5m2 (each optionally -head or -unscaled), int8, "
         "int4-g<G>, int2-g<G> "
         "(G >= 1), each but none optionally -r<R> (R >= 1 recent tokens unquantized), e.g. "
         "int4-g32-r128";
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
  if (next < parts.size() && !parts[next].empty() && parts[next][0] == 'r') {
    if (!parse_count(parts[next].substr(1), scheme.residual)) {
      throw InvalidArgument(
          fmt::format("kv_quant '{}': residual '{}' is invalid (must be an integer >= 1 without "
                      "leading zeros, as in {}-r128; allowed: {})",
                      name, parts[next].substr(1), base, kv_quant_allowed()));
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
  const std::uint64_t residual = scheme.kind == KvQuantKind::none
                                     ? n_tokens
                                     : std::min<std::uint64_t>(scheme.residual, n_tokens);
  const std::uint64_t n_q = n_tokens - residual;
  const std::uint64_t width = checked_add(d_key, d_value, what);
  KvCacheBytes bytes;
  const std::uint64_t unquantized_bits =
      checked_mul(checked_mul(checked_mul(heads, residual, what), width, what),
                  static_cast<std::uint64_t>(storage_bits(unquantized)), what);
  bytes.unquantized_bytes = (unquantized_bits + 7) / 8;
  if (scheme.kind == KvQuantKind::none || n_q == 0) return bytes;

  const std::uint64_t code_bits = scheme.kind == KvQuantKind::float_cast
                                      ? static_cast<std::uint64_t>(storage_bits(scheme.format))
                                      : scheme.bits;
  // Codes are packed per head and tensor, each padded to whole bytes.
  auto packed = [&](std::uint64_t d) {
    return (checked_mul(checked_mul(n_q, d, what), code_bits, what) + 7) / 8;
  };
  bytes.code_bytes = checked_mul(heads, checked_add(packed(d_key), packed(d_value), what), what);

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
      bytes.scale_bytes = checked_mul(checked_mul(2 * heads, n_q, what), int_scale, what);
      break;
    case KvQuantKind::int_grouped: {  // a scale and a zero point per group
      const std::uint64_t g = scheme.group;
      const std::uint64_t key_groups = checked_mul(d_key, ceil_div(n_q, g), what);
      const std::uint64_t value_groups = checked_mul(n_q, ceil_div(d_value, g), what);
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
  const std::size_t residual =
      scheme.kind == KvQuantKind::none ? x.n_tokens : std::min(scheme.residual, x.n_tokens);
  out.n_quantized = x.n_tokens - residual;
  if (out.n_quantized == 0) return out;
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
                                      const KvQuantScheme& scheme, const PrecisionPolicy& policy) {
  DequantizedCache<T> cache;
  if (scheme.kind == KvQuantKind::none) {
    cache.values = x;
    return cache;
  }
  HeadTensor<double> stored(x.heads, x.n_tokens, x.dim);
  // Exact: K and V are already in the input format, which double holds (the
  // multiprecision policies' inputs are float64 values, not rounded further).
  std::transform(x.data.begin(), x.data.end(), stored.data.begin(), to_double<T>);
  QuantizedTensor q = quantize_dequantize(stored, role, scheme);
  cache.values = HeadTensor<T>(x.heads, x.n_tokens, x.dim);
  // Rounded in double, once, into the input format; then exact in T.
  std::transform(q.values.data.begin(), q.values.data.end(), cache.values.data.begin(),
                 [&](double v) { return T(round_to(v, policy.input)); });
  if (scheme.kind == KvQuantKind::float_cast) cache.cast_scales = std::move(q.scales);
  return cache;
}

#define SATALAB_INSTANTIATE_KVQUANT(T)                                         \
  template DequantizedCache<T> dequantized_cache(const HeadTensor<T>&, KvRole, \
                                                 const KvQuantScheme&, const PrecisionPolicy&);
SATALAB_INSTANTIATE_KVQUANT(float)
SATALAB_INSTANTIATE_KVQUANT(double)
SATALAB_INSTANTIATE_KVQUANT(mp_t)
#undef SATALAB_INSTANTIATE_KVQUANT

}  // namespace satalab
