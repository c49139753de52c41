#include "satalab/workload/needle.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {

NeedleInputs needle_inputs(const GaussianWorkload& w, double needle_logit, double c, std::size_t query_block) {
  if (query_block < 1) {
    throw InvalidArgument(fmt::format("query_block = {} is invalid (must be >= 1)", query_block));
  }
  if (!std::isfinite(needle_logit)) {
    throw InvalidArgument(fmt::format("needle_logit = {} is invalid (must be finite)", needle_logit));
  }
  if (!std::isfinite(c) || c <= 0) {
    throw InvalidArgument(fmt::format("softmax_denominator = {} is invalid (must be finite and > 0)", c));
  }
  NeedleInputs out;
  out.qkv = gaussian_inputs(w);  // validates the workload and checks its memory

  const std::size_t n = w.n_tokens, d = w.d_key;
  const std::size_t blocks = n / query_block + (n % query_block != 0 ? 1 : 0);
  const std::uint64_t count = checked_mul(w.heads, blocks, "needle count");
  check_memory(checked_mul(count, sizeof(NeedleInputs::Needle), "needle list bytes"),
               fmt::format("needle list ({} needles)", count));
  out.needles.reserve(count);

  for (std::size_t h = 0; h < w.heads; ++h) {
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::size_t j = b * query_block;
      const std::size_t i = std::min(j + query_block, n) - 1;
      const double* q = out.qkv.q.data.data() + (h * n + i) * d;
      double* k = out.qkv.k.data.data() + (h * n + j) * d;
      double norm2 = 0;
      for (std::size_t t = 0; t < d; ++t) norm2 += q[t] * q[t];
      const double factor = norm2 > 0 ? needle_logit * c / norm2 : std::numeric_limits<double>::infinity();
      if (!std::isfinite(factor)) {
        throw InvalidArgument(fmt::format(
            "needle for head {} query {}: needle_logit * c / |q|^2 = {} * {} / {} is not finite "
            "(needs a nonzero query and a smaller needle_logit * softmax_denominator)",
            h, i, needle_logit, c, norm2));
      }
      for (std::size_t t = 0; t < d; ++t) {
        k[t] = factor * q[t];
        if (!std::isfinite(k[t])) {
          throw InvalidArgument(fmt::format(
              "needle for head {} query {}: key entry {} overflows (needle_logit * softmax_denominator too large)",
              h, i, t));
        }
      }
      out.needles.push_back({h, i, j});
    }
  }
  return out;
}

double needle_hit_rate(const NeedleInputs& inputs, const std::vector<double>& y) {
  const HeadArrays& v = inputs.qkv.v;
  if (y.size() != v.size()) {
    throw InvalidArgument(fmt::format(
        "needle_hit_rate: y has {} elements, expected heads * n_tokens * d_value = {} * {} * {} = {}", y.size(),
        v.heads, v.n_tokens, v.dim, v.size()));
  }
  if (inputs.needles.empty()) return std::numeric_limits<double>::quiet_NaN();
  const std::size_t n = v.n_tokens, dv = v.dim;
  std::size_t hits = 0;
  for (const auto& needle : inputs.needles) {
    if (needle.head >= v.heads || needle.query >= n || needle.key >= n) {
      throw InvalidArgument(fmt::format("needle_hit_rate: needle (head {}, query {}, key {}) is outside [{}, {}]",
                                        needle.head, needle.query, needle.key, v.heads, n));
    }
    const double* yi = y.data() + (needle.head * n + needle.query) * dv;
    const double* vj = v.data.data() + (needle.head * n + needle.key) * dv;
    double yv = 0, vv = 0;
    for (std::size_t t = 0; t < dv; ++t) {
      yv += yi[t] * vj[t];
      vv += vj[t] * vj[t];
    }
    if (!(vv > 0)) continue;  // a zero needle value: nothing to retrieve, a miss
    const double coefficient = yv / vv;
    if (std::isfinite(coefficient) && coefficient > 0.5) ++hits;
  }
  return static_cast<double>(hits) / static_cast<double>(inputs.needles.size());
}

}  // namespace satalab
