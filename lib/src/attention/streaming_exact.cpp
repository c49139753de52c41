#include "satalab/attention/streaming_exact.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "satalab/error.hpp"
#include "satalab/numeric/compensated_sum.hpp"

namespace satalab {
namespace {

using Compensated = CompensatedSum;  // numeric/compensated_sum.hpp

struct BlockSums {
  double max_score = -std::numeric_limits<double>::infinity();
  std::vector<double> num;
  double den = 0;
};

// Rows j of one block come from `rows(j, k_out, v_out)`.
template <class Rows>
BlockSums block_sums(const double* q, std::uint64_t begin, std::uint64_t end, std::size_t d_key, std::size_t d_value,
                     double c, const Rows& rows) {
  const std::size_t count = static_cast<std::size_t>(end - begin);
  std::vector<double> scores(count), k(d_key), values(count * d_value);
  BlockSums out;
  for (std::size_t a = 0; a < count; ++a) {
    rows(begin + a, k.data(), values.data() + a * d_value);
    double dot = 0;
    for (std::size_t t = 0; t < d_key; ++t) dot += q[t] * k[t];
    scores[a] = dot / c;
    out.max_score = std::max(out.max_score, scores[a]);
  }
  std::vector<Compensated> num(d_value);
  Compensated den;
  for (std::size_t a = 0; a < count; ++a) {
    const double w = std::exp(scores[a] - out.max_score);
    for (std::size_t t = 0; t < d_value; ++t) num[t].add(w * values[a * d_value + t]);
    den.add(w);
  }
  out.num.resize(d_value);
  for (std::size_t t = 0; t < d_value; ++t) out.num[t] = num[t].value();
  out.den = den.value();
  return out;
}

template <class Rows>
StreamingRow streaming_row(const double* q, std::uint64_t n_keys, std::size_t d_key, std::size_t d_value, double c,
                           const Rows& rows) {
  if (n_keys < 1) throw InvalidArgument("streaming exact attention: no keys (n_keys must be >= 1)");
  if (!std::isfinite(c) || c <= 0) {
    throw InvalidArgument(fmt::format("softmax denominator c = {} is invalid (must be finite and > 0)", c));
  }
  const std::uint64_t blocks = (n_keys + kStreamingKeyBlock - 1) / kStreamingKeyBlock;
  std::vector<BlockSums> partial(static_cast<std::size_t>(blocks));
  const auto count = static_cast<long long>(blocks);
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1)
  for (long long b = 0; b < count; ++b) {
    const std::uint64_t begin = static_cast<std::uint64_t>(b) * kStreamingKeyBlock;
    partial[static_cast<std::size_t>(b)] =
        block_sums(q, begin, std::min(n_keys, begin + kStreamingKeyBlock), d_key, d_value, c, rows);
  }
  StreamingRow out;
  out.max_score = -std::numeric_limits<double>::infinity();
  for (const BlockSums& p : partial) out.max_score = std::max(out.max_score, p.max_score);
  std::vector<Compensated> num(d_value);
  Compensated den;
  for (const BlockSums& p : partial) {
    const double rescale = std::exp(p.max_score - out.max_score);
    for (std::size_t t = 0; t < d_value; ++t) num[t].add(p.num[t] * rescale);
    den.add(p.den * rescale);
  }
  out.z = den.value();
  out.y.resize(d_value);
  for (std::size_t t = 0; t < d_value; ++t) out.y[t] = num[t].value() / out.z;
  return out;
}

}  // namespace

StreamingRow streaming_exact_row(const CounterWorkload& w, std::size_t head, std::uint64_t position, double c) {
  if (head >= w.heads) {
    throw InvalidArgument(fmt::format("head {} is out of range (the workload has {} heads)", head, w.heads));
  }
  std::vector<double> q(w.d_key);
  counter_row(w, QkvTensor::q, head, position, q.data());
  return streaming_row(q.data(), position + 1, w.d_key, w.d_value, c, [&](std::uint64_t j, double* k, double* v) {
    counter_row(w, QkvTensor::k, head, j, k);
    counter_row(w, QkvTensor::v, head, j, v);
  });
}

StreamingRow streaming_exact_row(const double* q, const double* k, const double* v, std::uint64_t n_keys,
                                 std::size_t d_key, std::size_t d_value, double c) {
  return streaming_row(q, n_keys, d_key, d_value, c, [&](std::uint64_t j, double* k_out, double* v_out) {
    std::copy_n(k + j * d_key, d_key, k_out);
    std::copy_n(v + j * d_value, d_value, v_out);
  });
}

}  // namespace satalab
