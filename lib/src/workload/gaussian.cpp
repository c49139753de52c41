#include "satalab/workload/gaussian.hpp"

#include <fmt/format.h>

#include <boost/random/mersenne_twister.hpp>
#include <boost/random/normal_distribution.hpp>
#include <cmath>

#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {

QkvArrays gaussian_inputs(const GaussianWorkload& w) {
  for (auto [name, value] : {std::pair{"heads", w.heads}, {"n_tokens", w.n_tokens}, {"d_key", w.d_key},
                             {"d_value", w.d_value}}) {
    if (value < 1) throw InvalidArgument(fmt::format("{} = {} is invalid (must be >= 1)", name, value));
  }
  if (!std::isfinite(w.scale) || w.scale <= 0) {
    throw InvalidArgument(fmt::format("scale = {} is invalid (must be finite and > 0)", w.scale));
  }
  const std::uint64_t rows = checked_mul(w.heads, w.n_tokens, "input size");
  const std::uint64_t elements =
      checked_add(checked_mul(rows, 2 * w.d_key, "input size"), checked_mul(rows, w.d_value, "input size"), "input size");
  check_memory(checked_mul(elements, sizeof(double), "input bytes"),
               fmt::format("inputs q, k, v (heads={}, n_tokens={}, d_key={}, d_value={})", w.heads, w.n_tokens,
                           w.d_key, w.d_value));
  boost::random::mt19937_64 rng(w.seed);
  boost::random::normal_distribution<double> normal(0.0, 1.0);
  QkvArrays out;
  auto fill = [&](HeadArrays& a, std::size_t dim, double scale) {
    a.heads = w.heads;
    a.n_tokens = w.n_tokens;
    a.dim = dim;
    a.data.resize(a.size());
    for (auto& x : a.data) x = scale * normal(rng);
  };
  fill(out.q, w.d_key, w.scale);
  fill(out.k, w.d_key, w.scale);
  fill(out.v, w.d_value, 1.0);
  return out;
}

LogitStats logit_stats(const QkvArrays& in, double c, bool causal, std::size_t max_pairs) {
  const std::size_t n = in.q.n_tokens, d = in.q.dim;
  const double total_pairs = static_cast<double>(in.q.heads) * (causal ? 0.5 * n * (n + 1) : 1.0 * n * n);
  // Every query against a strided subset of keys when there are too many pairs.
  const std::size_t stride =
      std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(total_pairs / static_cast<double>(max_pairs))));
  LogitStats stats;
  double sum = 0, sum_sq = 0;
  std::uint64_t count = 0;
  for (std::size_t h = 0; h < in.q.heads; ++h) {
    for (std::size_t i = 0; i < n; ++i) {
      const double* q = in.q.data.data() + (h * n + i) * d;
      const std::size_t end = causal ? i + 1 : n;
      for (std::size_t j = (i * 7919) % stride; j < end; j += stride) {
        const double* k = in.k.data.data() + (h * n + j) * d;
        double dot = 0;
        for (std::size_t t = 0; t < d; ++t) dot += q[t] * k[t];
        const double s = dot / c;
        stats.max_abs = std::max(stats.max_abs, std::fabs(s));
        sum += s;
        sum_sq += s * s;
        ++count;
      }
    }
  }
  if (count > 0) {
    const double mean = sum / static_cast<double>(count);
    stats.std = std::sqrt(std::max(0.0, sum_sq / static_cast<double>(count) - mean * mean));
  }
  return stats;
}

}  // namespace satalab
