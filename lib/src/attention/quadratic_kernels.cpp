// Exact softmax attention and Taylor-quadratic attention: both O(n²) over
// (query, key) pairs, sharing the score and accumulation code.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernel_common.hpp"
#include "satalab/attention/kernels.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/multiprecision.hpp"

namespace satalab {

template <class T>
void check_attention_shapes(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                            const AttentionOptions& options) {
  if (q.heads == 0 || q.n_tokens == 0 || q.dim == 0 || v.dim == 0) {
    throw InvalidArgument(fmt::format("empty input: q is [{}, {}, {}], v is [{}, {}, {}] (all sizes must be >= 1)",
                                      q.heads, q.n_tokens, q.dim, v.heads, v.n_tokens, v.dim));
  }
  if (k.heads != q.heads || v.heads != q.heads || k.n_tokens != q.n_tokens || v.n_tokens != q.n_tokens) {
    throw InvalidArgument(fmt::format("shapes disagree: q [{}, {}, {}], k [{}, {}, {}], v [{}, {}, {}] (heads and "
                                      "n_tokens must be equal)",
                                      q.heads, q.n_tokens, q.dim, k.heads, k.n_tokens, k.dim, v.heads, v.n_tokens,
                                      v.dim));
  }
  if (k.dim != q.dim) {
    throw InvalidArgument(fmt::format("d_key of q ({}) and k ({}) differ", q.dim, k.dim));
  }
  if (options.taylor_terms < 1) {
    throw InvalidArgument(fmt::format("taylor_terms P = {} is invalid (must be >= 1)", options.taylor_terms));
  }
}

namespace {

// One head of exact attention. Online softmax (as in FlashAttention): per query,
// keys in blocks; a block whose max exceeds the running max m rescales the
// running sums by exp(m_old - m_new), so every exponent is <= 0.
template <class T>
void exact_head(const T* q, const T* k, const T* v, std::size_t n, std::size_t d_key, std::size_t d_value,
                Mask mask, std::size_t block, const T& c, const PolicyRounders<T>& round, T* y, T* z) {
  using std::exp;
  std::vector<T> scores(block), num(d_value);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t end = mask == Mask::causal ? i + 1 : n;
    const T* qi = q + i * d_key;
    T running_max = T(-std::numeric_limits<double>::infinity());
    T den = T(0);
    std::fill(num.begin(), num.end(), T(0));
    for (std::size_t start = 0; start < end; start += block) {
      const std::size_t stop = std::min(end, start + block);
      T block_max = T(-std::numeric_limits<double>::infinity());
      for (std::size_t j = start; j < stop; ++j) {
        scores[j - start] = detail::scaled_score(qi, k + j * d_key, d_key, c, round);
        if (scores[j - start] > block_max) block_max = scores[j - start];
      }
      if (block_max > running_max) {
        if (start > 0) {
          const T rescale = round.compute(exp(round.compute(running_max - block_max)));
          den = round.accumulate(den * rescale);
          for (auto& x : num) x = round.accumulate(x * rescale);
        }
        running_max = block_max;
      }
      for (std::size_t j = start; j < stop; ++j) {
        const T weight = round.compute(exp(round.compute(scores[j - start] - running_max)));
        detail::accumulate_weighted(weight, v + j * d_value, d_value, num.data(), den, round);
      }
    }
    for (std::size_t t = 0; t < d_value; ++t) y[i * d_value + t] = round.accumulate(num[t] / den);
    z[i] = den;
  }
}

template <class T>
void taylor_quadratic_head(const T* q, const T* k, const T* v, std::size_t n, std::size_t d_key,
                           std::size_t d_value, Mask mask, std::size_t taylor_terms, const T& c,
                           const PolicyRounders<T>& round, T* y, T* z) {
  std::vector<T> num(d_value);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t end = mask == Mask::causal ? i + 1 : n;
    const T* qi = q + i * d_key;
    T den = T(0);
    std::fill(num.begin(), num.end(), T(0));
    for (std::size_t j = 0; j < end; ++j) {
      const T s = detail::scaled_score(qi, k + j * d_key, d_key, c, round);
      detail::accumulate_weighted(detail::truncated_exp(s, taylor_terms, round), v + j * d_value, d_value,
                                  num.data(), den, round);
    }
    for (std::size_t t = 0; t < d_value; ++t) y[i * d_value + t] = round.accumulate(num[t] / den);
    z[i] = den;
  }
}

template <class T>
AttentionResult<T> allocate_result(const HeadTensor<T>& q, const HeadTensor<T>& v) {
  AttentionResult<T> result;
  result.y = HeadTensor<T>(q.heads, q.n_tokens, v.dim);
  result.z.assign(q.heads * q.n_tokens, T(0));
  return result;
}

}  // namespace

template <class T>
AttentionResult<T> exact_attention(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                                   const PrecisionPolicy& policy, const AttentionOptions& options) {
  check_attention_shapes(q, k, v, options);
  const PolicyRounders<T> round(policy);
  const T c = detail::softmax_denominator<T>(options.softmax_denominator, q.dim, round);
  const std::size_t block = std::max<std::size_t>(1, options.key_block);
  AttentionResult<T> result = allocate_result(q, v);
  const auto heads = static_cast<long>(q.heads);
#pragma omp parallel for schedule(dynamic, 1)
  for (long h = 0; h < heads; ++h) {
    exact_head(q.head(h), k.head(h), v.head(h), q.n_tokens, q.dim, v.dim, options.mask, block, c, round,
               result.y.head(h), result.z.data() + h * q.n_tokens);
  }
  return result;
}

template <class T>
AttentionResult<T> taylor_quadratic_attention(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                                              const PrecisionPolicy& policy, const AttentionOptions& options) {
  check_attention_shapes(q, k, v, options);
  const PolicyRounders<T> round(policy);
  const T c = detail::softmax_denominator<T>(options.softmax_denominator, q.dim, round);
  AttentionResult<T> result = allocate_result(q, v);
  const auto heads = static_cast<long>(q.heads);
#pragma omp parallel for schedule(dynamic, 1)
  for (long h = 0; h < heads; ++h) {
    taylor_quadratic_head(q.head(h), k.head(h), v.head(h), q.n_tokens, q.dim, v.dim, options.mask,
                          options.taylor_terms, c, round, result.y.head(h), result.z.data() + h * q.n_tokens);
  }
  return result;
}

#define SATALAB_INSTANTIATE_QUADRATIC(T)                                                                     \
  template void check_attention_shapes(const HeadTensor<T>&, const HeadTensor<T>&, const HeadTensor<T>&,    \
                                       const AttentionOptions&);                                            \
  template AttentionResult<T> exact_attention(const HeadTensor<T>&, const HeadTensor<T>&, const HeadTensor<T>&, \
                                              const PrecisionPolicy&, const AttentionOptions&);             \
  template AttentionResult<T> taylor_quadratic_attention(const HeadTensor<T>&, const HeadTensor<T>&,        \
                                                         const HeadTensor<T>&, const PrecisionPolicy&,      \
                                                         const AttentionOptions&);
SATALAB_INSTANTIATE_QUADRATIC(float)
SATALAB_INSTANTIATE_QUADRATIC(double)
SATALAB_INSTANTIATE_QUADRATIC(mp_t)
#undef SATALAB_INSTANTIATE_QUADRATIC

}  // namespace satalab
