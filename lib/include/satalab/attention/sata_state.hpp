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

#include "satalab/attention/options.hpp"
#include "satalab/basis/feature_map.hpp"
#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab {

template <class T>
class SataState {
 public:
  // Throws InvalidArgument / ResourceLimit (state size checked against the
  // memory limit before allocating).
  SataState(std::shared_ptr<const SymmetricBasis> basis, std::size_t d_value, const PrecisionPolicy& policy,
            const AttentionOptions& options);
  // The rounders point into policy_: not copyable or movable.
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

  // One decode step of causal attention: appends the token (k, v), then reads
  // out its query q from the state that now holds it, so the query attends to
  // every token so far, itself included (row t of causal attention over
  // tokens 0..t). Equal, bit for bit, to append(k, v) followed by
  // query(q, y, z): the same operations in the same order.
  //
  // Where the fast path applies (float or double carrier accumulating in the
  // carrier's own format: fp64, fp32, *-acc32), it is one pass over the state
  // — each row read once, updated, written once and read out — with both
  // feature vectors built degree by degree and rounded with the vectorised
  // array rounding into per-thread scratch; append, query and readout_sums
  // use the same row kernel.
  // Policies that round sums (fp16, bf16) and mp run operation by operation.
  void step(const T* q, const T* k, const T* v, T* y, T* z);
  // Whether append/query/step take the vectorised path for this policy.
  bool fast_path() const { return fast_; }

  std::size_t tokens() const { return tokens_; }
  std::size_t d_key() const { return basis_->dim(); }
  std::size_t taylor_terms() const { return basis_->taylor_terms(); }
  std::size_t d_value() const { return d_value_; }
  std::size_t features() const { return basis_->total_size(); }
  std::size_t state_elements() const { return state_.size(); }
  const std::vector<T>& values() const { return state_; }
  const PrecisionPolicy& policy() const { return policy_; }
  const T& softmax_denominator() const { return c_; }
  const SymmetricBasis& basis() const { return *basis_; }
  const FeatureCoefficients<T>& coefficients() const { return *coefficients_; }

  // For the blocked (matrix-product) kernels, which update the rows in place
  // and then account for the tokens they added.
  std::vector<T>& mutable_values() { return state_; }
  void add_tokens(std::size_t count) { tokens_ += count; }

  // Bytes of one state in carrier T (mp_t counts its limbs).
  static std::uint64_t bytes_per_element(const PrecisionPolicy& policy);

 private:
  struct SiblingTag {};
  SataState(const SataState& like, SiblingTag);
  void allocate();
  void features(const T* x, const std::vector<T>& coefficient, bool coefficient_is_one, T* out) const;
  void finish_readout(const T* num, T den, T* y, T* z) const;

  std::shared_ptr<const SymmetricBasis> basis_;
  std::size_t d_value_;
  PrecisionPolicy policy_;
  PolicyRounders<T> round_;
  T c_;
  std::shared_ptr<const FeatureCoefficients<T>> coefficients_;
  std::vector<T> state_;
  // Token-by-token path only (the fast path uses per-thread scratch).
  mutable std::vector<T> scratch_features_, scratch_input_;
  std::size_t tokens_ = 0;
  bool fast_ = false;
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
