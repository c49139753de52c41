#include "satalab/basis/symmetric_basis.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {

namespace {
__extension__ typedef unsigned __int128 uint128;
}

std::uint64_t binomial(std::uint64_t n, std::uint64_t k) {
  if (k > n) return 0;
  k = std::min(k, n - k);
  // C(n, i) = C(n, i-1) * (n-k+i) / i stays integral at each step; divide
  // through a gcd-free 128-bit product to avoid spurious overflow.
  uint128 result = 1;
  for (std::uint64_t i = 1; i <= k; ++i) {
    result = result * (n - k + i) / i;
    if (result > UINT64_MAX) throw ResourceLimit(fmt::format("C({}, {}) overflows 64 bits", n, k));
  }
  return static_cast<std::uint64_t>(result);
}

std::uint64_t symmetric_basis_size(std::uint64_t d, std::uint64_t degree) {
  if (degree == 0) return 1;
  if (d == 0) return 0;
  // d + degree - 1 must not wrap around to a small binomial.
  return binomial(checked_add(d - 1, degree, "symmetric basis size"), degree);
}

std::uint64_t feature_count(std::uint64_t d, std::uint64_t taylor_terms) {
  if (taylor_terms == 0) return 0;
  if (d == 0) return 1;  // only the degree-0 feature
  return binomial(checked_add(d, taylor_terms - 1, "feature count"), taylor_terms - 1);
}

SymmetricBasis::SymmetricBasis(std::size_t d, std::size_t taylor_terms) : d_(d), taylor_terms_(taylor_terms) {
  if (d < 1) throw InvalidArgument(fmt::format("d_key = {} is invalid (must be >= 1)", d));
  // Indices are stored in 32 bits (last_); a larger d would be truncated.
  if (d > UINT32_MAX) {
    throw InvalidArgument(fmt::format("d_key = {} is invalid for the symmetric basis (allowed: 1 .. {})", d, UINT32_MAX));
  }
  if (taylor_terms < 1 || taylor_terms > kMaxTaylorTerms) {
    throw InvalidArgument(
        fmt::format("taylor_terms P = {} is invalid for SATA (allowed: 1 .. {})", taylor_terms, kMaxTaylorTerms));
  }
  const std::uint64_t total = feature_count(d, taylor_terms);
  check_memory(checked_mul(total, 2 * sizeof(std::uint32_t) + 2 * sizeof(std::uint64_t), "symmetric basis tables"),
               fmt::format("symmetric basis tables for d_key={}, P={} ({} features)", d, taylor_terms, total));
  offsets_.assign(taylor_terms + 1, 0);
  for (std::size_t p = 0; p < taylor_terms; ++p) offsets_[p + 1] = offsets_[p] + symmetric_basis_size(d, p);
  // Σ_p m_p = C(d+P-1, P-1); the tables below are filled through offsets_, so
  // a disagreement would write out of bounds.
  if (offsets_.back() != total) {
    throw std::logic_error(fmt::format("symmetric basis: degree sizes sum to {}, expected {} features",
                                       offsets_.back(), total));
  }
  last_.resize(total);
  last_run_.resize(total);
  count_factorial_.resize(total);
  parent_.resize(total);
  last_[0] = 0;
  last_run_[0] = 0;
  count_factorial_[0] = 1;
  parent_[0] = 0;
  std::size_t next = offsets_.size() > 2 ? offsets_[1] : 1;
  for (std::size_t p = 1; p < taylor_terms; ++p) {
    for (std::size_t parent = offsets_[p - 1]; parent < offsets_[p]; ++parent) {
      const std::uint32_t first = p == 1 ? 0 : last_[parent];
      for (std::uint32_t j = first; j < d; ++j, ++next) {
        last_[next] = j;
        // The child repeats j once more than the parent did if the parent ended in j.
        const std::uint32_t run = (p > 1 && last_[parent] == j) ? last_run_[parent] + 1 : 1;
        last_run_[next] = run;
        count_factorial_[next] = count_factorial_[parent] * run;
        parent_[next] = parent;
      }
    }
  }
}

std::size_t SymmetricBasis::degree_of(std::size_t feature) const {
  const auto it = std::upper_bound(offsets_.begin(), offsets_.end(), feature);
  return static_cast<std::size_t>(it - offsets_.begin()) - 1;
}

std::vector<std::uint32_t> SymmetricBasis::tuple(std::size_t feature) const {
  std::vector<std::uint32_t> t(degree_of(feature));
  for (std::size_t i = t.size(); i-- > 0;) {
    t[i] = last_[feature];
    feature = parent_[feature];
  }
  return t;
}

}  // namespace satalab
