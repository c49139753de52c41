#pragma once
// The symmetric (tightly packed) monomial basis of Heinsen & Kozachkov (2026),
// §2.3-2.4: for degree p, the non-decreasing index tuples i_1 <= ... <= i_p
// over d indices, m_p = C(d+p-1, p) of them, in lexicographic order.
//
// (q·k)^p / p! = Σ_t w(t) q^t k^t with q^t = Π_j q_{i_j} and w(t) = 1/Π_j(c_j!)
// where c_j counts index j in t (the multinomial count of the tuple, the
// paper's C_p, divided by p!).
//
// Degrees 0..max_degree are stored concatenated (degree 0 is the empty tuple,
// feature value 1). Every degree-p tuple is its parent (a degree-(p-1) tuple)
// plus one last index >= the parent's last index, and lexicographic order
// makes the children of each parent a contiguous range, in parent order. So
// walking the parents of degree p-1 in order and, for each, the indices
// last(parent)..d-1, produces the degree-p features in order with one
// multiply each (feature_map.hpp).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace satalab {

// C(n, k) with a ResourceLimit on 64-bit overflow.
std::uint64_t binomial(std::uint64_t n, std::uint64_t k);
// m_p = C(d+p-1, p), checked.
std::uint64_t symmetric_basis_size(std::uint64_t d, std::uint64_t degree);
// Σ_{p<P} m_p = C(d+P-1, P-1): features of all degrees below P (P Taylor terms).
std::uint64_t feature_count(std::uint64_t d, std::uint64_t taylor_terms);

class SymmetricBasis {
 public:
  // Degrees 0..taylor_terms-1. Throws InvalidArgument for d < 1 or
  // taylor_terms < 1 or > kMaxTaylorTerms, ResourceLimit when the index tables
  // would exceed the memory limit (checked before allocating).
  SymmetricBasis(std::size_t d, std::size_t taylor_terms);

  // Π c_j! must fit 64 bits exactly: p <= 20.
  static constexpr std::size_t kMaxTaylorTerms = 21;

  std::size_t dim() const { return d_; }
  std::size_t taylor_terms() const { return taylor_terms_; }
  std::size_t size(std::size_t degree) const { return offsets_[degree + 1] - offsets_[degree]; }
  std::size_t offset(std::size_t degree) const { return offsets_[degree]; }
  std::size_t total_size() const { return offsets_.back(); }

  // Per feature (global index over all degrees): its last index (0 for degree 0).
  std::uint32_t last_index(std::size_t feature) const { return last_[feature]; }
  // Π_j c_j! of the feature's tuple (1 for degree 0); w(t) = 1 / this.
  std::uint64_t count_factorial_product(std::size_t feature) const { return count_factorial_[feature]; }
  std::size_t degree_of(std::size_t feature) const;
  // The index tuple of a feature, reconstructed (for tests and diagnostics).
  std::vector<std::uint32_t> tuple(std::size_t feature) const;

 private:
  std::size_t d_, taylor_terms_;
  std::vector<std::size_t> offsets_;        // taylor_terms_+1 entries
  std::vector<std::uint32_t> last_;         // last index of each feature
  std::vector<std::uint32_t> last_run_;     // how many times the last index repeats at the end
  std::vector<std::uint64_t> count_factorial_;
  std::vector<std::uint64_t> parent_;       // global index of the parent (degree 0: itself)
};

}  // namespace satalab
