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

#include "detail/quadratic_engine.hpp"
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
      ctx_(detail::make_kernel_context<T>(policy, d_key, options.softmax_denominator)) {
  check_sizes(heads, d_key, d_value, capacity);
  check_memory(memory_bytes(heads, d_key, d_value, capacity, policy, options),
               fmt::format("KV cache of {} tokens x {} heads (d_key={}, d_value={})", capacity, heads, d_key, d_value));
  const auto scope = ctx_.precision_scope();
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
  const auto scope = ctx_.precision_scope();
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

// The blocked path's products for one query (blocked_rows): the scores of a
// key block and the sums as matrix-vector products (Eigen), the normaliser
// as the sum of the weights.
template <class T>
struct VectorProducts {
  VectorProducts(const T* q_, const T* keys_, const T* values_, std::size_t d_key_, std::size_t d_value_, T* s_)
      : q(q_), keys(keys_), values(values_), d_key(d_key_), d_value(d_value_), s(s_),
        num(Vector<T>::Zero(static_cast<Eigen::Index>(d_value_))) {}

  static constexpr bool kWholeBlock = false;
  std::size_t rows() const { return 1; }
  T max(const T* w, std::size_t n) const { return Eigen::Map<const Vector<T>>(w, static_cast<Eigen::Index>(n)).maxCoeff(); }
  void scores(std::size_t j0, std::size_t cols) {
    const Eigen::Map<const Vector<T>> qv(q, static_cast<Eigen::Index>(d_key));
    Eigen::Map<Vector<T>> sv(s, static_cast<Eigen::Index>(cols));
    const ConstRowMap<T> kb(keys + j0 * d_key, static_cast<Eigen::Index>(cols), static_cast<Eigen::Index>(d_key),
                            Eigen::OuterStride<>(static_cast<Eigen::Index>(d_key)));
    sv.noalias() = kb * qv;
  }
  T* score_row(std::size_t) { return s; }
  std::size_t valid(std::size_t, std::size_t, std::size_t cols) const { return cols; }
  void rescale(std::size_t, const T& f) {
    num *= f;
    den *= f;
  }
  void add_weights(std::size_t, const T* w, std::size_t valid) {
    den += Eigen::Map<const Vector<T>>(w, static_cast<Eigen::Index>(valid)).sum();
  }
  void accumulate(std::size_t j0, std::size_t cols) {
    const Eigen::Map<const Vector<T>> sv(s, static_cast<Eigen::Index>(cols));
    const ConstRowMap<T> vb(values + j0 * d_value, static_cast<Eigen::Index>(cols), static_cast<Eigen::Index>(d_value),
                            Eigen::OuterStride<>(static_cast<Eigen::Index>(d_value)));
    num.noalias() += vb.transpose() * sv;
  }

  const T *q, *keys, *values;
  std::size_t d_key, d_value;
  T* s;
  Vector<T> num;
  T den = T(0);
};

// Query q of head h against the cached tokens 0..tokens_-1, as exact_attention
// computes one causal row (the engine's OnlineSoftmax rule, a tile of one
// query): blocks of key_block keys, the running max and rescaling, the
// weights exp(s - m), the sums in the accumulate format.
template <class T>
void ExactDecoder<T>::readout(std::size_t h, const T* q, T* y, T* z) const {
  const T* keys = keys_.data() + h * capacity_ * d_key_;
  const T* values = values_.data() + h * capacity_ * d_value_;
  const std::size_t n = tokens_;
  const detail::OnlineSoftmax<T> rule{key_block_};
  const std::size_t block = std::min(key_block_, n);
  if constexpr (!std::is_same_v<T, mp_t>) {
    if (ctx_.blocked()) {
      // Eigen's allocation (aligned to its packets): the vectorised sum of the
      // weights peels by the buffer's address, so a heap buffer of arbitrary
      // alignment would make the last bits of z depend on where it lands.
      Vector<T> scores(static_cast<Eigen::Index>(block));
      VectorProducts<T> products(q, keys, values, d_key_, d_value_, scores.data());
      std::vector<double> wide(block);
      typename detail::OnlineSoftmax<T>::Row row;
      detail::blocked_rows(rule, ctx_, products, n, &row, static_cast<T*>(nullptr), wide.data());
      detail::finish_row(ctx_, products.num.data(), products.den, d_value_, y, z);
      return;
    }
  }
  std::vector<T> scores(block), num(d_value_, T(0));
  T den = T(0);
  detail::scalar_row(rule, ctx_, q, keys, values, 0, n, d_key_, d_value_, scores.data(), num.data(), den);
  detail::finish_row(ctx_, num.data(), den, d_value_, y, z);
}

template <class T>
void ExactDecoder<T>::step(const T* q, const T* k, const T* v, T* y, T* z) {
  const auto scope = ctx_.precision_scope();
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
