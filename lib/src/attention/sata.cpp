// Symmetry-aware Taylor attention (Heinsen & Kozachkov 2026): the recurrent
// state, the decode step, the causal chunked prefill and the non-causal form.
#include <fmt/format.h>

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernel_common.hpp"
#include "sata_blocked.hpp"
#include "satalab/attention/kernels.hpp"
#include "satalab/attention/sata_state.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/multiprecision.hpp"

namespace satalab {

template <class T>
std::uint64_t SataState<T>::bytes_per_element(const PrecisionPolicy& policy) {
  if constexpr (std::is_same_v<T, mp_t>) {
    // An mpfr_t header plus its limbs.
    return sizeof(mp_t) + (static_cast<std::uint64_t>(policy.mp_bits) + 63) / 64 * 8 + 16;
  } else {
    (void)policy;
    return sizeof(T);
  }
}

template <class T>
SataState<T>::SataState(std::shared_ptr<const SymmetricBasis> basis, std::size_t d_value,
                        const PrecisionPolicy& policy, const AttentionOptions& options)
    : basis_(std::move(basis)), d_value_(d_value), policy_(policy), round_(policy_) {
  if (d_value_ < 1) throw InvalidArgument(fmt::format("d_value = {} is invalid (must be >= 1)", d_value_));
  const std::uint64_t elements = checked_mul(basis_->total_size(), d_value_ + 1, "SATA state size");
  check_memory(checked_mul(elements, bytes_per_element(policy_), "SATA state bytes"),
               fmt::format("SATA state for d_key={}, d_value={}, P={} ({} elements)", basis_->dim(), d_value_,
                           basis_->taylor_terms(), elements));
  c_ = detail::softmax_denominator<T>(options.softmax_denominator, basis_->dim(), round_);
  coefficients_ = feature_coefficients(*basis_, c_, options.placement, round_.compute);
  state_.assign(elements, T(0));
  scratch_features_.assign(basis_->total_size(), T(0));
  scratch_input_.assign(basis_->dim(), T(0));
}

template <class T>
void SataState<T>::features(const T* x, const std::vector<T>& coefficient, bool coefficient_is_one, T* out) const {
  const T* source = x;
  if (coefficients_.prescale_inputs) {
    for (std::size_t t = 0; t < basis_->dim(); ++t) scratch_input_[t] = round_.compute(x[t] * coefficients_.input_scale);
    source = scratch_input_.data();
  }
  monomial_features(*basis_, source, out, round_.compute);
  if (!coefficient_is_one) {
    for (std::size_t r = 0; r < basis_->total_size(); ++r) out[r] = round_.compute(out[r] * coefficient[r]);
  }
}

template <class T>
void SataState<T>::append(const T* k, const T* v) {
  T* phi = scratch_features_.data();
  features(k, coefficients_.key, coefficients_.key_is_one, phi);
  const std::size_t width = d_value_ + 1;
  for (std::size_t r = 0; r < basis_->total_size(); ++r) {
    T* row = state_.data() + r * width;
    for (std::size_t t = 0; t < d_value_; ++t) row[t] = round_.accumulate(row[t] + round_.accumulate(phi[r] * v[t]));
    row[d_value_] = round_.accumulate(row[d_value_] + phi[r]);
  }
  ++tokens_;
}

template <class T>
void SataState<T>::readout_sums(const T* q, T* num, T* den) const {
  T* phi = scratch_features_.data();
  features(q, coefficients_.query, coefficients_.query_is_one, phi);
  const std::size_t width = d_value_ + 1;
  // Column sums in feature order; the inner loop over columns vectorises
  // without reordering any sum.
  for (std::size_t r = 0; r < basis_->total_size(); ++r) {
    const T* row = state_.data() + r * width;
    for (std::size_t t = 0; t < d_value_; ++t) num[t] = round_.accumulate(num[t] + round_.accumulate(phi[r] * row[t]));
    *den = round_.accumulate(*den + round_.accumulate(phi[r] * row[d_value_]));
  }
}

template <class T>
void SataState<T>::query(const T* q, T* y, T* z) const {
  std::vector<T> num(d_value_, T(0));
  T den = T(0);
  readout_sums(q, num.data(), &den);
  for (std::size_t t = 0; t < d_value_; ++t) y[t] = round_.accumulate(num[t] / den);
  *z = den;
}

template <class T>
void sata_causal_prefill(SataState<T>& state, const T* q, const T* k, const T* v, std::size_t n, std::size_t chunk,
                         T* y, T* z) {
  if constexpr (!std::is_same_v<T, mp_t>) {
    if (detail::blocked_path_applies<T>(state.policy())) {
      detail::sata_blocked(state, q, k, v, n, chunk, Mask::causal, omp_in_parallel() == 0, y, z);
      return;
    }
  }
  const PolicyRounders<T> round(state.policy());
  const std::size_t d_key = state.d_key(), d_value = state.d_value();
  chunk = std::max<std::size_t>(1, chunk);
  std::vector<T> num(d_value);
  for (std::size_t start = 0; start < n; start += chunk) {
    const std::size_t stop = std::min(n, start + chunk);
    for (std::size_t i = start; i < stop; ++i) {
      std::fill(num.begin(), num.end(), T(0));
      T den = T(0);
      // Earlier chunks through the state, then this chunk's keys j <= i
      // through the same kernel evaluated directly (Taylor-quadratic).
      state.readout_sums(q + i * d_key, num.data(), &den);
      for (std::size_t j = start; j <= i; ++j) {
        const T s = detail::scaled_score(q + i * d_key, k + j * d_key, d_key, state.softmax_denominator(), round);
        detail::accumulate_weighted(detail::truncated_exp(s, state.taylor_terms(), round), v + j * d_value, d_value,
                                    num.data(), den, round);
      }
      for (std::size_t t = 0; t < d_value; ++t) y[i * d_value + t] = round.accumulate(num[t] / den);
      z[i] = den;
    }
    for (std::size_t j = start; j < stop; ++j) state.append(k + j * d_key, v + j * d_value);
  }
}

template <class T>
AttentionResult<T> sata_attention(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                                  const PrecisionPolicy& policy, const AttentionOptions& options) {
  check_attention_shapes(q, k, v, options);
  auto basis = std::make_shared<const SymmetricBasis>(q.dim, options.taylor_terms);
  // One state (and, on the blocked path, one workspace) per head in flight:
  // check them all before the parallel region. Heads run in parallel when
  // there are at least as many as threads; otherwise one head at a time with
  // the threads inside it (the blocked path splits the state's rows).
  const bool blocked = detail::blocked_path_applies<T>(policy);
  const auto max_threads = static_cast<std::size_t>(omp_get_max_threads());
  const bool heads_in_parallel = !blocked || q.heads >= max_threads;
  const auto threads = static_cast<std::uint64_t>(heads_in_parallel ? std::min(q.heads, max_threads) : 1);
  const std::uint64_t elements = checked_mul(basis->total_size(), v.dim + 1, "SATA state size");
  std::uint64_t per_head = checked_mul(elements, SataState<T>::bytes_per_element(policy), "SATA state bytes");
  if (blocked) {
    per_head = checked_add(per_head,
                           detail::sata_blocked_workspace_bytes(q.dim, v.dim, options.taylor_terms,
                                                                options.effective_chunk(), sizeof(T)),
                           "SATA state and workspace");
  }
  check_memory(checked_mul(per_head, threads, "SATA states"),
               fmt::format("{} SATA state(s) in flight for d_key={}, d_value={}, P={} ({} elements each)", threads,
                           q.dim, v.dim, options.taylor_terms, elements));
  AttentionResult<T> result;
  result.y = HeadTensor<T>(q.heads, q.n_tokens, v.dim);
  result.z.assign(q.heads * q.n_tokens, T(0));
  const auto heads = static_cast<long>(q.heads);
#pragma omp parallel for schedule(dynamic, 1) if (heads_in_parallel)
  for (long h = 0; h < heads; ++h) {
    SataState<T> state(basis, v.dim, policy, options);
    T* y = result.y.head(h);
    T* z = result.z.data() + h * q.n_tokens;
    bool done = false;
    if constexpr (!std::is_same_v<T, mp_t>) {
      if (blocked) {
        detail::sata_blocked(state, q.head(h), k.head(h), v.head(h), q.n_tokens, options.effective_chunk(),
                             options.mask, !heads_in_parallel, y, z);
        done = true;
      }
    }
    if (done) {
    } else if (options.mask == Mask::causal) {
      sata_causal_prefill(state, q.head(h), k.head(h), v.head(h), q.n_tokens, options.effective_chunk(), y, z);
    } else {
      for (std::size_t j = 0; j < q.n_tokens; ++j) state.append(k.row(h, j), v.row(h, j));
      for (std::size_t i = 0; i < q.n_tokens; ++i) state.query(q.row(h, i), y + i * v.dim, z + i);
    }
  }
  return result;
}

#define SATALAB_INSTANTIATE_SATA(T)                                                                          \
  template class SataState<T>;                                                                              \
  template void sata_causal_prefill(SataState<T>&, const T*, const T*, const T*, std::size_t, std::size_t, T*, \
                                    T*);                                                                    \
  template AttentionResult<T> sata_attention(const HeadTensor<T>&, const HeadTensor<T>&, const HeadTensor<T>&, \
                                             const PrecisionPolicy&, const AttentionOptions&);
SATALAB_INSTANTIATE_SATA(float)
SATALAB_INSTANTIATE_SATA(double)
SATALAB_INSTANTIATE_SATA(mp_t)
#undef SATALAB_INSTANTIATE_SATA

}  // namespace satalab
