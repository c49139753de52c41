// Exact softmax attention decoded over a KV cache (exact_decoder.hpp).
// GCC 12 reports false "may be used uninitialized" inside its own AVX-512
// intrinsics when Eigen's products are inlined (a known GCC issue).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "satalab/attention/exact_decoder.hpp"

#include <Eigen/Core>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernel_common.hpp"
#include "sata_blocked.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/multiprecision.hpp"

namespace satalab {
namespace {

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ConstRowMap = Eigen::Map<const RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

// All heads' caches together below this many elements decode on one thread.
constexpr std::uint64_t kMinParallelCacheElements = 64 * 1024;

void check_sizes(std::size_t heads, std::size_t d_key, std::size_t d_value, std::size_t capacity) {
  if (heads < 1 || d_key < 1 || d_value < 1 || capacity < 1) {
    throw InvalidArgument(fmt::format("exact decoder: heads = {}, d_key = {}, d_value = {}, capacity = {} (all must be >= 1)",
                                      heads, d_key, d_value, capacity));
  }
}

}  // namespace

template <class T>
std::uint64_t ExactDecoder<T>::memory_bytes(std::size_t heads, std::size_t d_key, std::size_t d_value,
                                            std::size_t capacity, const PrecisionPolicy& policy,
                                            const AttentionOptions& options) {
  (void)policy;
  const std::uint64_t per_token = checked_mul(heads, d_key + d_value, "KV cache size");
  const std::uint64_t elements = checked_mul(per_token, capacity, "KV cache size");
  // Scores of one key block per head in flight (bounded by the heads).
  const std::uint64_t scratch = checked_mul(heads, std::max<std::size_t>(1, options.key_block) + d_value + 1,
                                            "exact decoder scratch");
  return checked_mul(checked_add(elements, scratch, "KV cache size"), sizeof(T), "KV cache bytes");
}

template <class T>
ExactDecoder<T>::ExactDecoder(std::size_t heads, std::size_t d_key, std::size_t d_value, std::size_t capacity,
                              const PrecisionPolicy& policy, const AttentionOptions& options)
    : heads_(heads),
      d_key_(d_key),
      d_value_(d_value),
      capacity_(capacity),
      key_block_(std::max<std::size_t>(1, options.key_block)),
      policy_(policy) {
  check_sizes(heads, d_key, d_value, capacity);
  check_memory(memory_bytes(heads, d_key, d_value, capacity, policy, options),
               fmt::format("KV cache of {} tokens x {} heads (d_key={}, d_value={})", capacity, heads, d_key, d_value));
  const PolicyRounders<T> round(policy_);
  c_ = detail::softmax_denominator<T>(options.softmax_denominator, d_key, round);
  if constexpr (!std::is_same_v<T, mp_t>) fast_ = detail::blocked_path_applies<T>(policy_);
  keys_.assign(heads * capacity * d_key, T(0));
  values_.assign(heads * capacity * d_value, T(0));
}

template <class T>
std::uint64_t ExactDecoder<T>::cache_elements() const {
  return static_cast<std::uint64_t>(heads_) * tokens_ * (d_key_ + d_value_);
}

template <class T>
void ExactDecoder<T>::append(const T* k, const T* v, std::size_t count) {
  if (count > capacity_ - tokens_) {
    throw InvalidArgument(fmt::format("exact decoder: appending {} tokens to {} exceeds the capacity of {}", count,
                                      tokens_, capacity_));
  }
  for (std::size_t h = 0; h < heads_; ++h) {
    std::copy(k + h * count * d_key_, k + (h + 1) * count * d_key_,
              keys_.begin() + static_cast<std::ptrdiff_t>((h * capacity_ + tokens_) * d_key_));
    std::copy(v + h * count * d_value_, v + (h + 1) * count * d_value_,
              values_.begin() + static_cast<std::ptrdiff_t>((h * capacity_ + tokens_) * d_value_));
  }
  tokens_ += count;
}

template <class T>
void ExactDecoder<T>::truncate(std::size_t tokens) {
  if (tokens > tokens_) {
    throw InvalidArgument(fmt::format("exact decoder: cannot truncate {} tokens to {}", tokens_, tokens));
  }
  tokens_ = tokens;
}

// Query q of head h against the cached tokens 0..tokens_-1, as exact_attention
// computes one causal row: per key block the scaled scores (compute format),
// the block max, a rescale of the running sums by exp(m_old - m_new) when the
// max grows, the weights exp(s - m), and the sums in the accumulate format.
template <class T>
void ExactDecoder<T>::readout(std::size_t h, const T* q, T* y, T* z) const {
  const PolicyRounders<T> round(policy_);
  const T* keys = keys_.data() + h * capacity_ * d_key_;
  const T* values = values_.data() + h * capacity_ * d_value_;
  const std::size_t n = tokens_, B = key_block_;
  T running_max = T(-std::numeric_limits<double>::infinity());
  T den = T(0);
  std::vector<T> scores(std::min(B, n));
  if constexpr (!std::is_same_v<T, mp_t>) {
    if (fast_) {
      const Eigen::Map<const Vector<T>> qv(q, static_cast<Eigen::Index>(d_key_));
      Vector<T> num = Vector<T>::Zero(static_cast<Eigen::Index>(d_value_));
      std::vector<double> wide(scores.size());
      for (std::size_t j0 = 0; j0 < n; j0 += B) {
        const auto cols = static_cast<Eigen::Index>(std::min(B, n - j0));
        Eigen::Map<Vector<T>> s(scores.data(), cols);
        const ConstRowMap<T> kb(keys + j0 * d_key_, cols, static_cast<Eigen::Index>(d_key_),
                                Eigen::OuterStride<>(static_cast<Eigen::Index>(d_key_)));
        s.noalias() = kb * qv;
        detail::divide_by(s.data(), static_cast<std::size_t>(cols), c_);
        round.compute.apply(s.data(), static_cast<std::size_t>(cols));
        const T block_max = s.maxCoeff();
        if (block_max > running_max) {
          if (j0 > 0) {
            const T rescale = detail::exp_in_compute(round.compute(running_max - block_max), round.compute);
            num *= rescale;
            den *= rescale;
          }
          running_max = block_max;
        }
        s.array() -= running_max;
        round.compute.apply(s.data(), static_cast<std::size_t>(cols));
        detail::exp_to_compute(s.data(), static_cast<std::size_t>(cols), round.compute, wide.data());
        const ConstRowMap<T> vb(values + j0 * d_value_, cols, static_cast<Eigen::Index>(d_value_),
                                Eigen::OuterStride<>(static_cast<Eigen::Index>(d_value_)));
        num.noalias() += vb.transpose() * s;
        den += s.sum();
      }
      for (std::size_t t = 0; t < d_value_; ++t) y[t] = num[static_cast<Eigen::Index>(t)] / den;
      *z = den;
      return;
    }
  }
  std::vector<T> num(d_value_, T(0));
  for (std::size_t j0 = 0; j0 < n; j0 += B) {
    const std::size_t stop = std::min(n, j0 + B);
    T block_max = T(-std::numeric_limits<double>::infinity());
    for (std::size_t j = j0; j < stop; ++j) {
      scores[j - j0] = detail::scaled_score(q, keys + j * d_key_, d_key_, c_, round);
      if (scores[j - j0] > block_max) block_max = scores[j - j0];
    }
    if (block_max > running_max) {
      if (j0 > 0) {
        const T rescale = detail::exp_in_compute(round.compute(running_max - block_max), round.compute);
        den = round.accumulate(den * rescale);
        for (auto& x : num) x = round.accumulate(x * rescale);
      }
      running_max = block_max;
    }
    for (std::size_t j = j0; j < stop; ++j) {
      const T weight = detail::exp_in_compute(round.compute(scores[j - j0] - running_max), round.compute);
      detail::accumulate_weighted(weight, values + j * d_value_, d_value_, num.data(), den, round);
    }
  }
  for (std::size_t t = 0; t < d_value_; ++t) y[t] = round.accumulate(num[t] / den);
  *z = den;
}

template <class T>
void ExactDecoder<T>::step(const T* q, const T* k, const T* v, T* y, T* z) {
  append(k, v, 1);
  const auto heads = static_cast<long>(heads_);
  // A parallel region costs microseconds (more when the cores are shared);
  // small caches are read faster on one thread.
  const bool parallel = heads > 1 && cache_elements() >= kMinParallelCacheElements;
#pragma omp parallel for schedule(static) if (parallel)
  for (long h = 0; h < heads; ++h) {
    readout(static_cast<std::size_t>(h), q + h * d_key_, y + h * d_value_, z + h);
  }
}

template class ExactDecoder<float>;
template class ExactDecoder<double>;
template class ExactDecoder<mp_t>;

}  // namespace satalab
