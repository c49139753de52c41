#pragma once
// Autoregressive SATA over H heads: one SataState per head (sharing the
// basis), decoded one token at a time with the heads in parallel, after an
// optional causal chunked prefill. The cost of a step does not depend on how
// many tokens the states hold (paper §2.6): it reads and writes each state
// once.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "satalab/attention/options.hpp"
#include "satalab/attention/sata_state.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {

template <class T>
class SataDecoder {
 public:
  // Throws InvalidArgument (heads, d_key or d_value < 1; P out of range) or
  // ResourceLimit when the H states and the prefill workspace would exceed
  // the memory limit (checked before allocating).
  SataDecoder(std::size_t heads, std::size_t d_key, std::size_t d_value, const PrecisionPolicy& policy,
              const AttentionOptions& options);

  // Bytes of the H states plus the prefill workspace (what the constructor checks).
  static std::uint64_t memory_bytes(std::size_t heads, std::size_t d_key, std::size_t d_value,
                                    const PrecisionPolicy& policy, const AttentionOptions& options);

  // One token for every head (SataState::step): q, k [heads × d_key],
  // v, y [heads × d_value], z [heads]; inputs in the policy's input format.
  // Heads run in parallel (OpenMP) when their states together are large
  // enough to pay for a parallel region (64K elements); each head's result is
  // the same for any number of threads.
  void step(const T* q, const T* k, const T* v, T* y, T* z);

  // Causal chunked prefill of n tokens per head continuing from the states
  // (sata_causal_prefill): q, k [heads × n × d_key], v, y [heads × n × d_value],
  // z [heads × n]. Heads in parallel when there are at least as many as
  // threads, otherwise one head at a time with the threads inside it.
  void prefill(const T* q, const T* k, const T* v, std::size_t n, T* y, T* z);

  std::size_t heads() const { return states_.size(); }
  std::size_t tokens() const { return states_.front()->tokens(); }
  SataState<T>& state(std::size_t h) { return *states_[h]; }
  const SataState<T>& state(std::size_t h) const { return *states_[h]; }
  // Elements and bytes of all H states (carrier T).
  std::uint64_t state_elements() const;
  std::uint64_t state_bytes() const;

 private:
  AttentionOptions options_;
  std::vector<std::unique_ptr<SataState<T>>> states_;
};

}  // namespace satalab
