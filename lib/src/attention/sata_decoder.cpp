// SATA over H heads decoded token by token (sata_decoder.hpp).
#include "satalab/attention/sata_decoder.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>

#include "detail/sata_blocked.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/multiprecision.hpp"

namespace satalab {
namespace {

// All heads' states together below this many elements (256 KiB of floats,
// some 20 µs per step) decode on one thread.
constexpr std::uint64_t kMinParallelStateElements = 64 * 1024;

}  // namespace

template <class T>
std::uint64_t SataDecoder<T>::memory_bytes(std::size_t heads, std::size_t d_key, std::size_t d_value,
                                           const PrecisionPolicy& policy, const AttentionOptions& options) {
  const std::uint64_t elements = checked_mul(feature_count(d_key, options.taylor_terms), d_value + 1, "SATA state size");
  const std::uint64_t per_head = checked_mul(elements, SataState<T>::bytes_per_element(policy), "SATA state bytes");
  std::uint64_t bytes = checked_mul(per_head, heads, "SATA states");
  if (detail::kernel_path<T>(policy) == detail::KernelPath::blocked) {
    const auto in_flight = std::min<std::uint64_t>(heads, static_cast<std::uint64_t>(omp_get_max_threads()));
    const std::uint64_t workspace = detail::sata_blocked_workspace_bytes(d_key, d_value, options.taylor_terms,
                                                                         options.effective_chunk(), sizeof(T));
    bytes = checked_add(bytes, checked_mul(workspace, in_flight, "SATA workspace"), "SATA states and workspace");
  }
  return bytes;
}

template <class T>
SataDecoder<T>::SataDecoder(std::size_t heads, std::size_t d_key, std::size_t d_value, const PrecisionPolicy& policy,
                            const AttentionOptions& options)
    : options_(options) {
  const detail::CarrierPrecisionScope scope(policy);
  if (heads < 1 || d_key < 1 || d_value < 1) {
    throw InvalidArgument(
        fmt::format("SATA decoder: heads = {}, d_key = {}, d_value = {} (all must be >= 1)", heads, d_key, d_value));
  }
  if (options.taylor_terms < 1 || options.taylor_terms > SymmetricBasis::kMaxTaylorTerms) {
    throw InvalidArgument(fmt::format("taylor_terms P = {} is invalid for sata (allowed: 1 .. {})", options.taylor_terms,
                                      SymmetricBasis::kMaxTaylorTerms));
  }
  auto basis = std::make_shared<const SymmetricBasis>(d_key, options.taylor_terms);
  check_memory(memory_bytes(heads, d_key, d_value, policy, options),
               fmt::format("{} SATA state(s) for d_key={}, d_value={}, P={}", heads, d_key, d_value,
                           options.taylor_terms));
  states_.reserve(heads);
  // One set of coefficient tables for all heads (empty_sibling).
  states_.push_back(std::make_unique<SataState<T>>(basis, d_value, policy, options));
  for (std::size_t h = 1; h < heads; ++h) states_.push_back(states_.front()->empty_sibling());
}

template <class T>
std::uint64_t SataDecoder<T>::state_elements() const {
  return static_cast<std::uint64_t>(states_.size()) * states_.front()->state_elements();
}

template <class T>
std::uint64_t SataDecoder<T>::state_bytes() const {
  return state_elements() * SataState<T>::bytes_per_element(states_.front()->policy());
}

template <class T>
void SataDecoder<T>::step(const T* q, const T* k, const T* v, T* y, T* z) {
  const auto scope = states_.front()->context().precision_scope();
  const std::size_t dk = states_.front()->d_key(), dv = states_.front()->d_value();
  const auto heads = static_cast<long>(states_.size());
  // A parallel region costs microseconds (more when the cores are shared);
  // small states decode faster on one thread.
  const bool parallel = heads > 1 && state_elements() >= kMinParallelStateElements;
#pragma omp parallel for schedule(static) if (parallel)
  for (long h = 0; h < heads; ++h) {
    const auto i = static_cast<std::size_t>(h);
    states_[i]->step(q + i * dk, k + i * dk, v + i * dv, y + i * dv, z + i);
  }
}

template <class T>
void SataDecoder<T>::prefill(const T* q, const T* k, const T* v, std::size_t n, T* y, T* z) {
  const auto scope = states_.front()->context().precision_scope();
  const std::size_t dk = states_.front()->d_key(), dv = states_.front()->d_value();
  const auto heads = static_cast<long>(states_.size());
  // Heads in parallel only when they can keep every thread busy; otherwise
  // sata_causal_prefill spreads one head's state over the threads.
  const bool heads_in_parallel = states_.size() >= static_cast<std::size_t>(omp_get_max_threads());
#pragma omp parallel for schedule(dynamic, 1) if (heads_in_parallel)
  for (long h = 0; h < heads; ++h) {
    const auto i = static_cast<std::size_t>(h);
    sata_causal_prefill(*states_[i], q + i * n * dk, k + i * n * dk, v + i * n * dv, n, options_.effective_chunk(),
                        y + i * n * dv, z + i * n);
  }
}

template class SataDecoder<float>;
template class SataDecoder<double>;
template class SataDecoder<mp_t>;

}  // namespace satalab
