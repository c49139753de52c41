// Symmetry-aware Taylor attention (Heinsen & Kozachkov 2026): the recurrent
// state, the decode step, the causal chunked prefill and the non-causal form.
#include <fmt/format.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "detail/features.hpp"
#include "detail/quadratic_engine.hpp"
#include "detail/sata_blocked.hpp"
#include "satalab/attention/kernels.hpp"
#include "satalab/attention/sata_state.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/rounding.hpp"
#include "satalab/numeric/scalar_traits.hpp"

namespace satalab {
namespace {

// What one pass over the state's rows does.
enum class RowPass { update, readout, update_then_readout };

// The rows [0, rows) of a state block of width W = d_value + 1 (z in the last
// column), with v1 = [v, 1]:
//   update:  S[r][t] = S[r][t] + φk[r]·v1[t]
//   readout: sums[t] = sums[t] + φq[r]·S[r][t]   (S after the update)
// each product and sum rounded into the accumulate format by `acc` (a no-op
// on the fast path, where the carrier is the accumulate format; φk·1 = φk
// exactly). Each row is read once and written once. The column loop
// vectorises; the sums run over the rows in order, one chain per column,
// exactly as the token-by-token formulas. A compile-time width keeps v1 and
// the sums in registers.
// A state larger than the caches streams from memory; the row loop is bound
// by its chained sums, so the hardware prefetchers fall behind. Asking for
// the row this far ahead roughly doubles the decode rate of the paper's toy
// configuration (1,024 heads of d = 8, P = 8: 237 MB of fp32 state).
constexpr std::size_t kPrefetchBytes = 2048;

// The address is computed as an integer: it may lie past the end of the state.
inline void prefetch_ahead(const void* row) {
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(row) + kPrefetchBytes), 1);
}

// The identity, for the fast path's sums.
struct Unrounded {
  template <class T>
  T operator()(T x) const {
    return x;
  }
};

// The row loop over a run-time width W.
template <RowPass kPass, class T, class Acc>
void state_rows_any(T* __restrict state, std::size_t rows, std::size_t W,
                                                  const T* __restrict phi_k, const T* __restrict phi_q,
                                                  const T* __restrict v1, T* __restrict sums, const Acc& acc) {
  for (std::size_t r = 0; r < rows; ++r) {
    T* __restrict row = state + r * W;
    prefetch_ahead(row);
    if constexpr (kPass != RowPass::readout) {
      const T a = phi_k[r];
      for (std::size_t t = 0; t < W; ++t) row[t] = acc(row[t] + acc(a * v1[t]));
    }
    if constexpr (kPass != RowPass::update) {
      const T b = phi_q[r];
      for (std::size_t t = 0; t < W; ++t) sums[t] = acc(sums[t] + acc(b * row[t]));
    }
  }
}

// A compile-time width: v1 and the sums in local arrays (registers). The
// loop is state_rows_any's, written out here: inlining that one with a
// constant width makes GCC 12 keep v1 in memory (a 1.5x slower decode step
// at d = 8).
template <RowPass kPass, std::size_t kWidth, class T, class Acc>
void state_rows_fixed(T* __restrict state, std::size_t rows, const T* __restrict phi_k, const T* __restrict phi_q,
                      const T* __restrict v1_in, T* __restrict sums_io, const Acc& acc) {
  T v1[kWidth], sums[kWidth];
  for (std::size_t t = 0; t < kWidth; ++t) {
    v1[t] = kPass == RowPass::readout ? T(0) : v1_in[t];
    sums[t] = kPass == RowPass::update ? T(0) : sums_io[t];
  }
  for (std::size_t r = 0; r < rows; ++r) {
    T* __restrict row = state + r * kWidth;
    prefetch_ahead(row);
    if constexpr (kPass != RowPass::readout) {
      const T a = phi_k[r];
      for (std::size_t t = 0; t < kWidth; ++t) row[t] = acc(row[t] + acc(a * v1[t]));
    }
    if constexpr (kPass != RowPass::update) {
      const T b = phi_q[r];
      for (std::size_t t = 0; t < kWidth; ++t) sums[t] = acc(sums[t] + acc(b * row[t]));
    }
  }
  if constexpr (kPass != RowPass::update) {
    for (std::size_t t = 0; t < kWidth; ++t) sums_io[t] = sums[t];
  }
}

// Widths d_value + 1 of the head sizes 8, 16, 32, 64 get their own code on
// the fast path; rounded sums (and mp_t) take the run-time width.
template <RowPass kPass, class T>
void state_rows(const detail::KernelContext<T>& ctx, T* state, std::size_t rows, std::size_t width, const T* phi_k,
                const T* phi_q, const T* v1, T* sums) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    if (ctx.blocked()) {
      const Unrounded none;
      switch (width) {
        case 9: return state_rows_fixed<kPass, 9>(state, rows, phi_k, phi_q, v1, sums, none);
        case 17: return state_rows_fixed<kPass, 17>(state, rows, phi_k, phi_q, v1, sums, none);
        case 33: return state_rows_fixed<kPass, 33>(state, rows, phi_k, phi_q, v1, sums, none);
        case 65: return state_rows_fixed<kPass, 65>(state, rows, phi_k, phi_q, v1, sums, none);
        default: return state_rows_any<kPass>(state, rows, width, phi_k, phi_q, v1, sums, none);
      }
    }
  }
  state_rows_any<kPass>(state, rows, width, phi_k, phi_q, v1, sums, ctx.round.accumulate);
}

// States below this many elements (d = 16, P = 4 has 16,473) are prefilled
// on one thread.
constexpr std::size_t kMinParallelPrefillStateElements = 64 * 1024;

template <class T>
void size_scratch(detail::SataScratch<T>& s, std::size_t features, std::size_t d_key, std::size_t width) {
  if (s.phi_q.size() < features) {
    s.phi_q.resize(features);
    s.phi_k.resize(features);
  }
  if (s.scaled.size() < d_key) s.scaled.resize(d_key);
  s.v1.resize(width);
  s.sums.resize(width);
}

// Whether a mode's update is plain's: plain itself, and fp64 on a carrier
// that is already double (fp64 policies).
template <class T>
bool plain_update_for(StateAccumulation mode) {
  return mode == StateAccumulation::plain || (mode == StateAccumulation::fp64 && !std::is_same_v<T, float>);
}

}  // namespace

template <class T>
std::uint64_t SataState<T>::bytes_per_element(const PrecisionPolicy& policy) {
  return satalab::bytes_per_element<T>(policy);
}

template <class T>
SataState<T>::SataState(std::shared_ptr<const SymmetricBasis> basis, std::size_t d_value,
                        const PrecisionPolicy& policy, const AttentionOptions& options)
    : basis_(std::move(basis)),
      d_value_(d_value),
      ctx_(detail::make_kernel_context<T>(policy, basis_->dim(), options.softmax_denominator)),
      polynomial_(options.polynomial),
      mode_(options.state_accumulation),
      block_size_(options.state_block) {
  if (d_value_ < 1) throw InvalidArgument(fmt::format("d_value = {} is invalid (must be >= 1)", d_value_));
  if (mode_ == StateAccumulation::blocked && block_size_ < 1) {
    throw InvalidArgument(fmt::format("state_block = {} is invalid (must be >= 1)", block_size_));
  }
  if (mode_ == StateAccumulation::fp64 && std::is_same_v<T, mp_t>) {
    throw InvalidArgument(fmt::format("state accumulation fp64 is invalid for precision {} (its state is wider "
                                      "than fp64; allowed: plain, compensated, blocked)",
                                      policy.name));
  }
  validate_readout_polynomial(polynomial_, basis_->taylor_terms());
  if (!polynomial_.is_taylor()) moment_basis_ = std::make_shared<const SymmetricBasis>(basis_->dim(), 3);
  const auto scope = ctx_.precision_scope();
  allocate();
  coefficients_ = std::make_shared<const FeatureCoefficients<T>>(
      feature_coefficients(*basis_, ctx_.c, options.placement, ctx_.round.compute));
}

template <class T>
SataState<T>::SataState(const SataState& like, SiblingTag)
    : basis_(like.basis_),
      d_value_(like.d_value_),
      ctx_(like.ctx_),
      coefficients_(like.coefficients_),
      polynomial_(like.polynomial_),
      moment_basis_(like.moment_basis_),
      mode_(like.mode_),
      block_size_(like.block_size_) {
  const auto scope = ctx_.precision_scope();
  allocate();
}

template <class T>
std::unique_ptr<SataState<T>> SataState<T>::empty_sibling() const {
  return std::unique_ptr<SataState<T>>(new SataState<T>(*this, SiblingTag{}));
}

template <class T>
void SataState<T>::allocate() {
  const std::uint64_t elements = checked_mul(basis_->total_size(), d_value_ + 1, "SATA state size");
  const double arrays = accumulation_arrays(mode_, ctx_.policy);
  check_memory(checked_mul(elements, static_cast<std::uint64_t>(arrays * static_cast<double>(bytes_per_element(ctx_.policy))),
                           "SATA state bytes"),
               fmt::format("SATA state for d_key={}, d_value={}, P={} ({} elements)", basis_->dim(), d_value_,
                           basis_->taylor_terms(), elements));
  state_.assign(elements, T(0));
  if (mode_ == StateAccumulation::compensated || mode_ == StateAccumulation::blocked) {
    first_.assign(elements, T(0));
    second_.assign(elements, T(0));
  } else if (mode_ == StateAccumulation::fp64 && std::is_same_v<T, float>) {
    wide_.assign(elements, 0.0);
  }
  if constexpr (std::is_same_v<T, mp_t>) size_scratch(scratch_, basis_->total_size(), basis_->dim(), d_value_ + 1);
}

template <class T>
detail::SataScratch<T>& SataState<T>::scratch() const {
  if constexpr (std::is_same_v<T, mp_t>) {
    return scratch_;
  } else {
    thread_local detail::SataScratch<T> s;
    size_scratch(s, basis_->total_size(), basis_->dim(), d_value_ + 1);
    return s;
  }
}

template <class T>
void SataState<T>::append(const T* k, const T* v) {
  const auto scope = ctx_.precision_scope();
  detail::SataScratch<T>& s = scratch();
  detail::side_features(*basis_, *coefficients_, detail::FeatureSide::key, k, ctx_.round.compute, s.scaled.data(),
                        s.phi_k.data());
  std::copy(v, v + d_value_, s.v1.begin());
  s.v1[d_value_] = T(1);
  if (plain_update_for<T>(mode_)) {
    state_rows<RowPass::update>(ctx_, state_.data(), basis_->total_size(), d_value_ + 1, s.phi_k.data(),
                                static_cast<const T*>(nullptr), s.v1.data(), static_cast<T*>(nullptr));
  } else {
    update_mode(s.phi_k.data(), s.v1.data());
  }
  ++tokens_;
}

template <class T>
void SataState<T>::readout_sums(const T* q, T* num, T* den) const {
  readout_sums(q, static_cast<const T*>(nullptr), num, den);
}

template <class T>
LogitMoments<T> SataState<T>::state_moments(const T* q) const {
  const auto scope = ctx_.precision_scope();
  const SymmetricBasis& small = *moment_basis_;
  std::vector<T> scaled(small.dim()), phi(small.total_size());
  // The degrees <= 2 of the query's features: the first rows of the full
  // basis (both bases list degree by degree in the same order).
  detail::side_features(small, *coefficients_, detail::FeatureSide::query, q, ctx_.round.compute, scaled.data(),
                        phi.data());
  const std::size_t W = d_value_ + 1;
  const auto& acc = ctx_.round.accumulate;
  LogitMoments<T> moments;
  moments.count = T(static_cast<double>(tokens_));
  for (std::size_t r = small.offset(1); r < small.offset(2); ++r) {
    moments.sum = acc(moments.sum + acc(phi[r] * state_[r * W + d_value_]));
  }
  for (std::size_t r = small.offset(2); r < small.offset(3); ++r) {
    moments.sum_sq = acc(moments.sum_sq + acc(phi[r] * state_[r * W + d_value_]));
  }
  moments.sum_sq = acc(T(2) * moments.sum_sq);
  return moments;
}

template <class T>
void SataState<T>::readout_sums(const T* q, const T* m, T* num, T* den) const {
  const auto scope = ctx_.precision_scope();
  detail::SataScratch<T>& s = scratch();
  detail::side_features(*basis_, *coefficients_, detail::FeatureSide::query, q, ctx_.round.compute, s.scaled.data(),
                        s.phi_q.data());
  if (m != nullptr) {
    for (std::size_t p = 0; p < basis_->taylor_terms(); ++p) {
      for (std::size_t r = basis_->offset(p); r < basis_->offset(p + 1); ++r) s.phi_q[r] *= m[p];
    }
    ctx_.round.compute.apply(s.phi_q.data(), basis_->total_size());
  }
  std::copy(num, num + d_value_, s.sums.begin());
  s.sums[d_value_] = *den;
  // The readout pass only reads the state.
  state_rows<RowPass::readout>(ctx_, const_cast<T*>(state_.data()), basis_->total_size(), d_value_ + 1,
                               static_cast<const T*>(nullptr), s.phi_q.data(), static_cast<const T*>(nullptr),
                               s.sums.data());
  std::copy(s.sums.begin(), s.sums.begin() + static_cast<std::ptrdiff_t>(d_value_), num);
  *den = s.sums[d_value_];
}

template <class T>
void SataState<T>::query(const T* q, T* y, T* z) const {
  const auto scope = ctx_.precision_scope();
  std::vector<T> num(d_value_, T(0));
  T den = T(0);
  if (polynomial_.is_taylor()) {
    readout_sums(q, num.data(), &den);
  } else {
    std::vector<T> m(basis_->taylor_terms());
    readout_multipliers(polynomial_, basis_->taylor_terms(), state_moments(q), ctx_.round.compute, m.data());
    readout_sums(q, m.data(), num.data(), &den);
  }
  detail::finish_row(ctx_, num.data(), den, d_value_, y, z);
}

template <class T>
void SataState<T>::step(const T* q, const T* k, const T* v, T* y, T* z) {
  const auto scope = ctx_.precision_scope();
  if (!polynomial_.is_taylor()) {
    append(k, v);
    query(q, y, z);
    return;
  }
  detail::SataScratch<T>& s = scratch();
  detail::side_features(*basis_, *coefficients_, detail::FeatureSide::key, k, ctx_.round.compute, s.scaled.data(),
                        s.phi_k.data());
  detail::side_features(*basis_, *coefficients_, detail::FeatureSide::query, q, ctx_.round.compute, s.scaled.data(),
                        s.phi_q.data());
  std::copy(v, v + d_value_, s.v1.begin());
  s.v1[d_value_] = T(1);
  std::fill(s.sums.begin(), s.sums.end(), T(0));
  if (plain_update_for<T>(mode_)) {
    state_rows<RowPass::update_then_readout>(ctx_, state_.data(), basis_->total_size(), d_value_ + 1,
                                             s.phi_k.data(), s.phi_q.data(), s.v1.data(), s.sums.data());
  } else {
    // The mode's update, then the read-out of the state it leaves (the same
    // sums in the same order as the fused pass).
    update_mode(s.phi_k.data(), s.v1.data());
    state_rows<RowPass::readout>(ctx_, state_.data(), basis_->total_size(), d_value_ + 1,
                                 static_cast<const T*>(nullptr), s.phi_q.data(), static_cast<const T*>(nullptr),
                                 s.sums.data());
  }
  ++tokens_;
  detail::finish_row(ctx_, s.sums.data(), s.sums[d_value_], d_value_, y, z);
}

template <class T>
double SataState<T>::accumulation_arrays(StateAccumulation mode, const PrecisionPolicy& policy) {
  switch (mode) {
    case StateAccumulation::plain: return 1.0;
    case StateAccumulation::compensated:
    case StateAccumulation::blocked: return 3.0;
    case StateAccumulation::fp64:
      if constexpr (std::is_same_v<T, float>) return 1.0 + 8.0 / static_cast<double>(bytes_per_element(policy));
      return 1.0;
  }
  return 1.0;
}

// One pass over the rows; every product and sum rounded into the accumulate
// format (the identity where the carrier is that format), as plain's update
// (docs/architecture.md §9, SATA's state).
template <class T>
void SataState<T>::update_mode(const T* phi_k, const T* v1) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    // The fast path's sums are the carrier's own: no rounding call in the loops.
    if (ctx_.blocked()) return update_mode_with(phi_k, v1, Unrounded{});
  }
  update_mode_with(phi_k, v1, ctx_.round.accumulate);
}

template <class T>
template <class Acc>
void SataState<T>::update_mode_with(const T* phi_k, const T* v1, const Acc& acc) {
  const std::size_t rows = basis_->total_size(), W = d_value_ + 1, size = rows * W;
  // The token's products φk[r]·v1[t] rounded into the accumulate format, as
  // plain's update rounds them; then each mode's sums in one flat loop (which
  // vectorises on the fast path).
  products_.resize(size);
  T* __restrict y = products_.data();
  for (std::size_t r = 0; r < rows; ++r) {
    const T a = phi_k[r];
    for (std::size_t t = 0; t < W; ++t) y[r * W + t] = acc(a * v1[t]);
  }
  T* __restrict S = state_.data();
  switch (mode_) {
    case StateAccumulation::compensated: {
      // Neumaier: n = s + y; the part of the smaller addend the sum lost,
      // (big − n) + small, is exact in the format (round to nearest) and
      // added to the compensation; the read-out sees s + compensation.
      T* __restrict sum = first_.data();
      T* __restrict comp = second_.data();
      for (std::size_t i = 0; i < size; ++i) {
        using std::abs;
        const T old = sum[i];
        const T n = acc(old + y[i]);
        const bool old_bigger = abs(old) >= abs(y[i]);
        const T big = old_bigger ? old : y[i];
        const T small = old_bigger ? y[i] : old;
        comp[i] = acc(comp[i] + acc(acc(big - n) + small));
        sum[i] = n;
        S[i] = acc(n + comp[i]);
      }
      return;
    }
    case StateAccumulation::blocked: {
      // The open block sums its tokens from zero; the read-out sees closed
      // blocks + open block; the block's last token closes it into the state.
      T* __restrict closed = first_.data();
      T* __restrict open = second_.data();
      for (std::size_t i = 0; i < size; ++i) {
        open[i] = acc(open[i] + y[i]);
        S[i] = acc(closed[i] + open[i]);
      }
      if ((tokens_ + 1) % block_size_ == 0) {
        std::copy(state_.begin(), state_.end(), first_.begin());
        std::fill(second_.begin(), second_.end(), T(0));
      }
      return;
    }
    case StateAccumulation::fp64:
      if constexpr (std::is_same_v<T, float>) {
        // Summed in double, rounded once into the accumulate format for the read-out.
        double* __restrict wide = wide_.data();
        for (std::size_t i = 0; i < size; ++i) wide[i] += static_cast<double>(y[i]);
        round_to(wide, S, size, ctx_.policy.accumulate);
        return;
      }
      break;
    case StateAccumulation::plain: break;
  }
  throw std::logic_error("SataState::update_mode called for a plain update");
}

template <class T>
std::vector<double> SataState<T>::snapshot() const {
  if constexpr (std::is_same_v<T, mp_t>) {
    throw InvalidArgument("a SATA state snapshot needs a float or double carrier (precision " + ctx_.policy.name + ")");
  } else {
    std::vector<double> out;
    out.reserve(state_.size() + first_.size() + second_.size() + wide_.size());
    for (const auto* part : {&state_, &first_, &second_}) out.insert(out.end(), part->begin(), part->end());
    out.insert(out.end(), wide_.begin(), wide_.end());
    return out;
  }
}

template <class T>
void SataState<T>::restore(std::size_t tokens, const std::vector<double>& numbers) {
  if constexpr (std::is_same_v<T, mp_t>) {
    throw InvalidArgument("a SATA state snapshot needs a float or double carrier (precision " + ctx_.policy.name + ")");
  } else {
    const std::size_t expected = state_.size() + first_.size() + second_.size() + wide_.size();
    if (numbers.size() != expected) {
      throw InvalidArgument(fmt::format("SATA state snapshot has {} numbers (expected {} for mode {})", numbers.size(),
                                        expected, state_accumulation_name(mode_)));
    }
    std::size_t at = 0;
    for (auto* part : {&state_, &first_, &second_}) {
      for (T& x : *part) {
        const double d = numbers[at++];
        x = static_cast<T>(d);
        if (!(static_cast<double>(x) == d || (std::isnan(d) && std::isnan(static_cast<double>(x))))) {
          throw InvalidArgument(fmt::format("SATA state snapshot value {} at index {} is not a {} value", d, at - 1,
                                            std::is_same_v<T, float> ? "float32" : "float64"));
        }
      }
    }
    std::copy(numbers.begin() + static_cast<std::ptrdiff_t>(at), numbers.end(), wide_.begin());
    tokens_ = tokens;
  }
}

template <class T>
void sata_causal_prefill(SataState<T>& state, const T* q, const T* k, const T* v, std::size_t n, std::size_t chunk,
                         T* y, T* z) {
  const detail::KernelContext<T>& ctx = state.context();
  const auto scope = ctx.precision_scope();
  if constexpr (!std::is_same_v<T, mp_t>) {
    // The matrix-product prefill updates the state as plain does; the other
    // accumulation modes take the token path below (their update is append's).
    if (ctx.blocked() && plain_update_for<T>(state.accumulation())) {
      // Threads share the state's rows only when a chunk's pass over them
      // outweighs starting a parallel region (microseconds, milliseconds when
      // the cores are shared with other work); the results do not depend on it.
      const bool parallel = omp_in_parallel() == 0 && state.state_elements() >= kMinParallelPrefillStateElements;
      detail::sata_blocked(state, q, k, v, n, chunk, Mask::causal, parallel, y, z);
      return;
    }
  }
  const std::size_t d_key = state.d_key(), d_value = state.d_value();
  chunk = std::max<std::size_t>(1, chunk);
  const std::size_t P = state.taylor_terms();
  const detail::TruncatedSeries<T> rule{chunk, P};
  const bool taylor = state.polynomial().is_taylor();
  std::vector<T> num(d_value), scores(chunk), m(P);
  for (std::size_t start = 0; start < n; start += chunk) {
    const std::size_t stop = std::min(n, start + chunk);
    for (std::size_t i = start; i < stop; ++i) {
      std::fill(num.begin(), num.end(), T(0));
      T den = T(0);
      // Earlier chunks through the state, then this chunk's keys j <= i
      // through the same kernel evaluated directly (Taylor-quadratic).
      if (taylor) {
        state.readout_sums(q + i * d_key, num.data(), &den);
        detail::scalar_row(rule, ctx, q + i * d_key, k, v, start, i + 1, d_key, d_value, scores.data(), num.data(),
                           den);
      } else {
        // The moments over keys 0..i: the state's, then this chunk's.
        LogitMoments<T> moments = state.state_moments(q + i * d_key);
        for (std::size_t j = start; j <= i; ++j) {
          const T s = detail::scaled_score(q + i * d_key, k + j * d_key, d_key, ctx.c, ctx.round);
          moments.sum = ctx.round.accumulate(moments.sum + s);
          moments.sum_sq = ctx.round.accumulate(moments.sum_sq + ctx.round.accumulate(s * s));
        }
        moments.count = T(static_cast<double>(state.tokens() + i + 1 - start));
        readout_multipliers(state.polynomial(), P, moments, ctx.round.compute, m.data());
        state.readout_sums(q + i * d_key, m.data(), num.data(), &den);
        const detail::PolynomialSeries<T> series{chunk, P, m.data()};
        detail::scalar_row(series, ctx, q + i * d_key, k, v, start, i + 1, d_key, d_value, scores.data(), num.data(),
                           den);
      }
      detail::finish_row(ctx, num.data(), den, d_value, y + i * d_value, z + i);
    }
    for (std::size_t j = start; j < stop; ++j) state.append(k + j * d_key, v + j * d_value);
  }
}

template <class T>
AttentionResult<T> sata_attention(const HeadTensor<T>& q, const HeadTensor<T>& k, const HeadTensor<T>& v,
                                  const PrecisionPolicy& policy, const AttentionOptions& options) {
  check_attention_shapes(q, k, v, options);
  validate_readout_polynomial(options.polynomial, options.taylor_terms);
  const detail::CarrierPrecisionScope scope(policy);
  if (options.key_centring == KeyCentring::first_chunk) {
    AttentionOptions rest = options;
    rest.key_centring = KeyCentring::none;
    const PolicyRounders<T> round(policy);
    return sata_attention(q, centred_keys(k, options.effective_chunk(), round.input), v, policy, rest);
  }
  auto basis = std::make_shared<const SymmetricBasis>(q.dim, options.taylor_terms);
  // One state (and, on the blocked path, one workspace) per head in flight:
  // check them all before the parallel region. Heads run in parallel when
  // there are at least as many as threads; otherwise one head at a time with
  // the threads inside it (the blocked path splits the state's rows).
  const bool blocked = detail::kernel_path<T>(policy) == detail::KernelPath::blocked &&
                       plain_update_for<T>(options.state_accumulation);
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
