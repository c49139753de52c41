#pragma once
// Autoregressive exact softmax attention over a KV cache, H heads: the
// baseline SATA's decode is measured against. Each step appends the token's
// key and value to the cache and attends its query to every cached token,
// itself included, so a step reads the whole cache: its cost grows linearly
// with the context, as does the cache.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "satalab/attention/detail/kernel_context.hpp"
#include "satalab/attention/options.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {

template <class T>
class ExactDecoder {
 public:
  // The cache holds up to `capacity` tokens per head, allocated up front.
  // Throws InvalidArgument (a size < 1) or ResourceLimit when the cache would
  // exceed the memory limit (checked before allocating).
  ExactDecoder(std::size_t heads, std::size_t d_key, std::size_t d_value, std::size_t capacity,
               const PrecisionPolicy& policy, const AttentionOptions& options);

  // Bytes of the cache (carrier T) and of the per-thread scratch.
  static std::uint64_t memory_bytes(std::size_t heads, std::size_t d_key, std::size_t d_value, std::size_t capacity,
                                    const PrecisionPolicy& policy, const AttentionOptions& options);

  // Appends `count` tokens to every head without reading out: k [heads ×
  // count × d_key], v [heads × count × d_value], in the input format.
  // Throws InvalidArgument past the capacity.
  void append(const T* k, const T* v, std::size_t count);

  // One decode step for every head: appends (k, v), then attends q to the
  // tokens in the cache (the new one included). q, k [heads × d_key], v, y
  // [heads × d_value], z [heads] (z = Σ_j exp(s_j - max s), as exact_attention).
  // Keys in blocks of options.key_block with the online (max-subtracted)
  // softmax; where the policy accumulates in the carrier's own format the
  // scores and sums of a block are matrix-vector products (Eigen), otherwise
  // every operation is rounded as the policy says. Heads in parallel once
  // the caches together hold 64K elements.
  void step(const T* q, const T* k, const T* v, T* y, T* z);

  // Forgets every token after the first `tokens` (for benchmarks that time
  // steps at a fixed context). Throws InvalidArgument when tokens > tokens().
  void truncate(std::size_t tokens);

  std::size_t heads() const { return heads_; }
  std::size_t tokens() const { return tokens_; }
  std::size_t capacity() const { return capacity_; }
  // Elements and bytes of the cache as filled so far (carrier T), all heads.
  std::uint64_t cache_elements() const;
  std::uint64_t cache_bytes() const { return cache_elements() * sizeof(T); }

 private:
  void readout(std::size_t h, const T* q, T* y, T* z) const;

  std::size_t heads_, d_key_, d_value_, capacity_, key_block_;
  detail::KernelContext<T> ctx_;
  std::vector<T> keys_, values_;  // [heads × capacity × d]
  std::size_t tokens_ = 0;
};

}  // namespace satalab
