#pragma once
// SATA's recurrent state for one head (paper App. A2): for every feature r of
// the symmetric basis (all degrees p < P concatenated), the row
// S[r] = Σ_j a_k(r) Φ_r(k_j) v_j (d_value columns) and z[r] = Σ_j a_k(r) Φ_r(k_j),
// stored as one [features × (d_value+1)] block with z in the last column.
// Appending a token and reading out a query both cost O(features · d_value),
// independent of the number of tokens seen: this is the decode step.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "satalab/attention/detail/kernel_context.hpp"
#include "satalab/attention/options.hpp"
#include "satalab/attention/readout_polynomial.hpp"
#include "satalab/basis/feature_map.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {
namespace detail {

// Buffers of one state operation: the two feature vectors, the pre-scaled
// input, [v 1] and the readout sums.
template <class T>
struct SataScratch {
  std::vector<T> phi_q, phi_k, scaled, v1, sums;
};

}  // namespace detail

template <class T>
class SataState {
 public:
  // Throws InvalidArgument / ResourceLimit (state size checked against the
  // memory limit before allocating). For mp_t every method works at the
  // policy's precision whatever the caller's default (it sets it itself).
  SataState(std::shared_ptr<const SymmetricBasis> basis, std::size_t d_value, const PrecisionPolicy& policy,
            const AttentionOptions& options);
  // Siblings share its tables (empty_sibling): not copyable or movable.
  SataState(const SataState&) = delete;
  SataState& operator=(const SataState&) = delete;

  // A new state without tokens that shares this one's basis and coefficient
  // tables (another head of the same model: H heads then keep one copy of
  // the tables, which a decode step reads for every head).
  std::unique_ptr<SataState> empty_sibling() const;

  // Adds one token (k: d_key values, v: d_value values, in the input format).
  void append(const T* k, const T* v);
  // Output row y (d_value values) and normaliser z for query q, from the
  // tokens appended so far.
  void query(const T* q, T* y, T* z) const;
  // Unnormalised sums: num[t] = Σ_r a_q Φ_r(q) S[r][t], den = Σ_r a_q Φ_r(q) z[r].
  void readout_sums(const T* q, T* num, T* den) const;
  // The same with the read-out polynomial's multipliers m[0 .. P) (null:
  // all ones, the sums above): num[t] = Σ_p m_p Σ_{r of degree p} a_q Φ_r(q) S[r][t],
  // each feature times m_p rounded into the compute format
  // (readout_polynomial.hpp).
  void readout_sums(const T* q, const T* m, T* num, T* den) const;
  // The query's logit moments over the tokens in the state, read from the
  // degree-1 and degree-2 normalisers: Σ_j s_j = Φ_1(q)·z_1, Σ_j s_j² =
  // 2 Φ_2(q)·z_2, count = tokens() (P >= 3).
  LogitMoments<T> state_moments(const T* q) const;
  // The read-out polynomial of the options the state was built with.
  const ReadoutPolynomial& polynomial() const { return polynomial_; }

  // One decode step of causal attention: appends the token (k, v), then reads
  // out its query q from the state that now holds it, so the query attends to
  // every token so far, itself included (row t of causal attention over
  // tokens 0..t). Equal, bit for bit, to append(k, v) followed by
  // query(q, y, z): the same operations in the same order. (With a read-out
  // polynomial other than taylor it is those two calls: the multipliers
  // need the moments after the update.)
  //
  // It is one pass over the state — each row read once, updated, written
  // once and read out — with both feature vectors built degree by degree and
  // rounded with the vectorised array rounding into scratch (per thread for
  // float and double); append, query and readout_sums use the same row kernel. Where the fast
  // path applies (float or double carrier accumulating in the carrier's own
  // format: fp64, fp32, *-acc32) its sums are the carrier's own; policies
  // that round sums (fp16, bf16) and mp round every product and sum.
  void step(const T* q, const T* k, const T* v, T* y, T* z);
  // Whether append/query/step take the vectorised path for this policy.
  bool fast_path() const { return ctx_.blocked(); }

  std::size_t tokens() const { return tokens_; }
  std::size_t d_key() const { return basis_->dim(); }
  std::size_t taylor_terms() const { return basis_->taylor_terms(); }
  std::size_t d_value() const { return d_value_; }
  std::size_t features() const { return basis_->total_size(); }
  std::size_t state_elements() const { return state_.size(); }
  const std::vector<T>& values() const { return state_; }
  const PrecisionPolicy& policy() const { return ctx_.policy; }
  const T& softmax_denominator() const { return ctx_.c; }
  // The kernel context (rounders, c, path) every operation on the state uses.
  const detail::KernelContext<T>& context() const { return ctx_; }
  const SymmetricBasis& basis() const { return *basis_; }
  const FeatureCoefficients<T>& coefficients() const { return *coefficients_; }

  // For the blocked (matrix-product) kernels, which update the rows in place
  // and then account for the tokens they added.
  std::vector<T>& mutable_values() { return state_; }
  void add_tokens(std::size_t count) { tokens_ += count; }

  // Bytes of one element of the state in carrier T (mp_t counts its limbs).
  static std::uint64_t bytes_per_element(const PrecisionPolicy& policy);

  // How the state sums its tokens (AttentionOptions::state_accumulation).
  // values() is always what the read-out reads; the modes other than plain
  // keep their own arrays besides it (docs/architecture.md §9, SATA's state).
  StateAccumulation accumulation() const { return mode_; }
  std::size_t accumulation_block() const { return block_size_; }
  // State elements the mode keeps per element of values() (1 plain, 3
  // compensated and blocked, 1 + 8/sizeof(T) fp64 on a float carrier).
  static double accumulation_arrays(StateAccumulation mode, const PrecisionPolicy& policy);
  // Every number the state holds (values(), then the mode's arrays), exactly
  // as float64, and its inverse with the token count: to checkpoint a decode
  // and continue it with the same numbers. float and double carriers only
  // (InvalidArgument for mp_t; InvalidArgument if the count is wrong or a
  // value is not representable in the carrier).
  std::vector<double> snapshot() const;
  void restore(std::size_t tokens, const std::vector<double>& numbers);

 private:
  struct SiblingTag {};
  SataState(const SataState& like, SiblingTag);
  void allocate();
  detail::SataScratch<T>& scratch() const;
  // The update S += φk·[v 1] of a mode other than plain (one pass over the rows).
  void update_mode(const T* phi_k, const T* v1);
  template <class Acc>
  void update_mode_with(const T* phi_k, const T* v1, const Acc& acc);

  std::shared_ptr<const SymmetricBasis> basis_;
  std::size_t d_value_;
  detail::KernelContext<T> ctx_;
  std::shared_ptr<const FeatureCoefficients<T>> coefficients_;
  // Read-out polynomials: the polynomial, and the basis of degrees <= 2 whose
  // features give the logit moments (null for taylor).
  ReadoutPolynomial polynomial_;
  std::shared_ptr<const SymmetricBasis> moment_basis_;
  std::vector<T> state_;
  // Multiprecision only (their values carry the state's precision); float
  // and double use per-thread buffers, which stay in cache across heads.
  mutable detail::SataScratch<T> scratch_;
  std::size_t tokens_ = 0;
  // The accumulation mode's arrays (same layout as state_): compensated: the
  // running sum and its compensation; blocked: the closed blocks and the open
  // block; fp64 (float carrier): the sums in double.
  StateAccumulation mode_ = StateAccumulation::plain;
  std::size_t block_size_ = 1024;
  std::vector<T> first_, second_;
  std::vector<double> wide_;
  std::vector<T> products_;  // one token's rounded products (update scratch)
};

// Causal prefill of n tokens of one head continuing from `state`: chunks of
// `chunk` tokens, Taylor-quadratic inside a chunk, the state across chunks;
// writes y [n × d_value] and z [n] and leaves all n tokens in the state.
// Where the policy allows (float/double carrier accumulating in the carrier's
// own format) it runs as blocked matrix products over the state, spread over
// the OpenMP threads unless called inside a parallel region or the state has
// fewer than 64K elements (then one thread is faster); otherwise token
// by token with every operation rounded as the policy says.
template <class T>
void sata_causal_prefill(SataState<T>& state, const T* q, const T* k, const T* v, std::size_t n,
                         std::size_t chunk, T* y, T* z);

}  // namespace satalab
