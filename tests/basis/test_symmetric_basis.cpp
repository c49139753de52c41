// The symmetric monomial basis (docs/architecture.md §2), checked against independent
// computations: a Pascal-triangle table of binomials, a brute-force recursive
// enumeration of non-decreasing index tuples, factorials of index counts taken
// from the tuples, and the multinomial theorem Σ_t p!/Π c_j! = d^p. Nothing
// here builds its expectations from the code under test.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "satalab/basis/symmetric_basis.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {
namespace {

using Tuple = std::vector<std::uint32_t>;

// C(n, k) for n < kRows, k < kCols by Pascal's rule C(n,k) = C(n-1,k-1) + C(n-1,k).
// Columns are limited so every entry fits 64 bits (C(99, 12) < 2^64).
constexpr std::size_t kRows = 100, kCols = 13;
std::uint64_t pascal(std::size_t n, std::size_t k) {
  static const std::vector<std::vector<std::uint64_t>> table = [] {
    std::vector<std::vector<std::uint64_t>> t(kRows, std::vector<std::uint64_t>(kCols, 0));
    for (std::size_t r = 0; r < kRows; ++r) {
      t[r][0] = 1;
      for (std::size_t c = 1; c < kCols && c <= r; ++c) t[r][c] = t[r - 1][c - 1] + t[r - 1][c];
    }
    return t;
  }();
  if (n >= kRows || k >= kCols) ADD_FAILURE() << "Pascal table too small for C(" << n << ", " << k << ")";
  return table.at(n).at(k);
}

// Every non-decreasing tuple of length p over {0..d-1}, in lexicographic order,
// by recursion on the position (the natural nested-loop order is lexicographic).
void enumerate(std::size_t d, std::size_t p, Tuple& prefix, std::vector<Tuple>& out) {
  if (prefix.size() == p) {
    out.push_back(prefix);
    return;
  }
  const std::uint32_t start = prefix.empty() ? 0 : prefix.back();
  for (std::uint32_t j = start; j < d; ++j) {
    prefix.push_back(j);
    enumerate(d, p, prefix, out);
    prefix.pop_back();
  }
}
std::vector<Tuple> brute_force_tuples(std::size_t d, std::size_t p) {
  std::vector<Tuple> out;
  Tuple prefix;
  enumerate(d, p, prefix, out);
  return out;
}

std::uint64_t factorial(std::uint64_t n) {
  std::uint64_t f = 1;
  for (std::uint64_t i = 2; i <= n; ++i) f *= i;
  return f;
}

// Π_j c_j! where c_j counts index j in the tuple.
std::uint64_t count_factorials_of(const Tuple& t) {
  std::map<std::uint32_t, std::uint64_t> counts;
  for (std::uint32_t i : t) ++counts[i];
  std::uint64_t product = 1;
  for (const auto& [index, count] : counts) product *= factorial(count);
  return product;
}

struct Shape {
  std::size_t d, taylor_terms;
};
void PrintTo(const Shape& s, std::ostream* os) { *os << "d" << s.d << "_P" << s.taylor_terms; }

std::vector<Shape> shapes() {
  std::vector<Shape> out;
  for (std::size_t d = 1; d <= 6; ++d)
    for (std::size_t P = 1; P <= 7; ++P) out.push_back({d, P});
  out.push_back({64, 4});
  out.push_back({8, 9});
  return out;
}

class SymmetricBasisShapes : public ::testing::TestWithParam<Shape> {};

TEST_P(SymmetricBasisShapes, SizeOfEachDegreeEqualsPascalBinomial) {
  const auto [d, P] = GetParam();
  const SymmetricBasis basis(d, P);
  EXPECT_EQ(basis.dim(), d);
  EXPECT_EQ(basis.taylor_terms(), P);
  for (std::size_t p = 0; p < P; ++p) {
    EXPECT_EQ(basis.size(p), pascal(d + p - 1, p)) << "p=" << p;
    EXPECT_EQ(symmetric_basis_size(d, p), pascal(d + p - 1, p)) << "p=" << p;
  }
}

TEST_P(SymmetricBasisShapes, TotalSizeEqualsBinomialDPlusPMinus1ChoosePMinus1) {
  const auto [d, P] = GetParam();
  const SymmetricBasis basis(d, P);
  EXPECT_EQ(basis.total_size(), pascal(d + P - 1, P - 1));
  EXPECT_EQ(feature_count(d, P), pascal(d + P - 1, P - 1));
  // Also the sum of the per-degree Pascal sizes (hockey-stick identity).
  std::uint64_t sum = 0;
  for (std::size_t p = 0; p < P; ++p) sum += pascal(d + p - 1, p);
  EXPECT_EQ(basis.total_size(), sum);
}

TEST_P(SymmetricBasisShapes, OffsetsAreCumulativeSizesAndDegreeOfInvertsThem) {
  const auto [d, P] = GetParam();
  const SymmetricBasis basis(d, P);
  std::size_t expected_offset = 0;
  for (std::size_t p = 0; p < P; ++p) {
    EXPECT_EQ(basis.offset(p), expected_offset) << "p=" << p;
    expected_offset += pascal(d + p - 1, p);
  }
  EXPECT_EQ(basis.offset(P), expected_offset);
  for (std::size_t p = 0; p < P; ++p) {
    for (std::size_t f = basis.offset(p); f < basis.offset(p + 1); ++f) {
      ASSERT_EQ(basis.degree_of(f), p) << "feature " << f;
      ASSERT_EQ(basis.tuple(f).size(), p) << "feature " << f;
    }
  }
}

TEST_P(SymmetricBasisShapes, TuplesOfEachDegreeEqualBruteForceNonDecreasingEnumerationInLexOrder) {
  const auto [d, P] = GetParam();
  const SymmetricBasis basis(d, P);
  for (std::size_t p = 0; p < P; ++p) {
    const std::vector<Tuple> expected = brute_force_tuples(d, p);
    ASSERT_EQ(basis.size(p), expected.size()) << "p=" << p;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const std::size_t f = basis.offset(p) + i;
      ASSERT_EQ(basis.tuple(f), expected[i]) << "p=" << p << " position " << i;
      const std::uint32_t expected_last = p == 0 ? 0 : expected[i].back();
      ASSERT_EQ(basis.last_index(f), expected_last) << "p=" << p << " position " << i;
    }
  }
}

TEST_P(SymmetricBasisShapes, CountFactorialProductMatchesProductOfCountFactorialsOfTuple) {
  const auto [d, P] = GetParam();
  const SymmetricBasis basis(d, P);
  for (std::size_t p = 0; p < P; ++p) {
    const std::vector<Tuple> expected = brute_force_tuples(d, p);
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(basis.count_factorial_product(basis.offset(p) + i), count_factorials_of(expected[i]))
          << "p=" << p << " position " << i;
    }
  }
}

TEST_P(SymmetricBasisShapes, MultinomialCountsOfEachDegreeSumToDPowerP) {
  const auto [d, P] = GetParam();
  const SymmetricBasis basis(d, P);
  for (std::size_t p = 0; p < P; ++p) {
    // d^p and p! fit 64 bits for every shape here (64^3, 8^8, 6^6).
    std::uint64_t d_power = 1;
    for (std::size_t i = 0; i < p; ++i) d_power *= d;
    const std::uint64_t p_factorial = factorial(p);
    std::uint64_t sum = 0;
    for (std::size_t f = basis.offset(p); f < basis.offset(p + 1); ++f) {
      const std::uint64_t cfp = basis.count_factorial_product(f);
      ASSERT_GT(cfp, 0u);
      ASSERT_EQ(p_factorial % cfp, 0u) << "Π c_j! must divide p! (feature " << f << ")";
      sum += p_factorial / cfp;
    }
    EXPECT_EQ(sum, d_power) << "p=" << p;
  }
}

TEST_P(SymmetricBasisShapes, ParentPrefixAppearsEarlierAndChildrenAreContiguousInParentOrder) {
  const auto [d, P] = GetParam();
  const SymmetricBasis basis(d, P);
  for (std::size_t p = 1; p < P; ++p) {
    // Position of each degree-(p-1) tuple.
    std::map<Tuple, std::size_t> parent_position;
    for (std::size_t f = basis.offset(p - 1); f < basis.offset(p); ++f) parent_position[basis.tuple(f)] = f;
    ASSERT_EQ(parent_position.size(), basis.size(p - 1)) << "degree " << p - 1 << " tuples are not distinct";

    std::size_t previous_parent = 0;
    bool first = true;
    std::vector<std::size_t> children_of(basis.size(p - 1), 0);
    for (std::size_t f = basis.offset(p); f < basis.offset(p + 1); ++f) {
      const Tuple t = basis.tuple(f);
      const Tuple prefix(t.begin(), t.end() - 1);
      const auto it = parent_position.find(prefix);
      ASSERT_NE(it, parent_position.end()) << "prefix of feature " << f << " is not a degree-" << p - 1 << " tuple";
      const std::size_t parent = it->second;
      ASSERT_LT(parent, f) << "the parent must appear earlier";
      // Parents never decrease, and a parent's children form one run: once
      // we move past a parent, we never return to it.
      if (!first) {
        ASSERT_GE(parent, previous_parent) << "children out of parent order at feature " << f;
        if (parent != previous_parent) {
          ASSERT_EQ(children_of[parent - basis.offset(p - 1)], 0u);
        }
      }
      ++children_of[parent - basis.offset(p - 1)];
      previous_parent = parent;
      first = false;
      // The child extends the parent with an index >= the parent's last one.
      const std::uint32_t parent_last = p == 1 ? 0 : basis.last_index(parent);
      ASSERT_GE(t.back(), parent_last);
    }
    // Each parent has exactly d - last(parent) children (d for the empty tuple).
    for (std::size_t parent = basis.offset(p - 1); parent < basis.offset(p); ++parent) {
      const std::size_t expected = p == 1 ? d : d - basis.tuple(parent).back();
      EXPECT_EQ(children_of[parent - basis.offset(p - 1)], expected) << "parent " << parent;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, SymmetricBasisShapes, ::testing::ValuesIn(shapes()),
                         [](const ::testing::TestParamInfo<Shape>& info) {
                           return "d" + std::to_string(info.param.d) + "_P" + std::to_string(info.param.taylor_terms);
                         });

// The largest allowed degree, 20: Π c_j! must still be exact (20! < 2^63).
TEST(SymmetricBasis, CountFactorialProductIsExactAtTheMaximumDegree) {
  ASSERT_EQ(SymmetricBasis::kMaxTaylorTerms, 21u);
  const SymmetricBasis basis(3, SymmetricBasis::kMaxTaylorTerms);
  const std::size_t p = 20;
  const std::vector<Tuple> expected = brute_force_tuples(3, p);
  ASSERT_EQ(basis.size(p), expected.size());
  ASSERT_EQ(basis.size(p), pascal(22, 2));  // C(22, 20) = C(22, 2)
  std::uint64_t sum = 0;
  std::uint64_t d_power = 1;
  for (std::size_t i = 0; i < p; ++i) d_power *= 3;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const std::size_t f = basis.offset(p) + i;
    ASSERT_EQ(basis.tuple(f), expected[i]);
    ASSERT_EQ(basis.count_factorial_product(f), count_factorials_of(expected[i]));
    sum += factorial(p) / count_factorials_of(expected[i]);
  }
  EXPECT_EQ(sum, d_power);
  // d = 1: the single degree-20 tuple (0,...,0) has Π c_j! = 20!.
  const SymmetricBasis line(1, SymmetricBasis::kMaxTaylorTerms);
  EXPECT_EQ(line.count_factorial_product(line.offset(p)), 2432902008176640000ull);
}

// ---------------------------------------------------------------------------
// Binomials and limits.

TEST(Binomial, MatchesPascalTableAndKnownValues) {
  EXPECT_EQ(binomial(67, 3), 47905u);
  EXPECT_EQ(binomial(0, 0), 1u);
  EXPECT_EQ(binomial(5, 7), 0u);
  for (std::size_t n = 0; n < kRows; ++n)
    for (std::size_t k = 0; k < kCols && k <= n; ++k) ASSERT_EQ(binomial(n, k), pascal(n, k)) << n << " " << k;
  // Symmetry C(n, k) = C(n, n-k) reaches the same value through the other side.
  EXPECT_EQ(binomial(99, 87), pascal(99, 12));
  // C(67, 33) = 14226520737620288370 is the largest central binomial below 2^64.
  EXPECT_EQ(binomial(67, 33), 14226520737620288370ull);
  EXPECT_THROW(binomial(68, 34), ResourceLimit);
}

TEST(SymmetricBasisLimits, ConstructorRejectsZeroDimensionZeroTermsAndTooManyTerms) {
  EXPECT_THROW(SymmetricBasis(0, 4), InvalidArgument);
  EXPECT_THROW(SymmetricBasis(4, 0), InvalidArgument);
  EXPECT_THROW(SymmetricBasis(4, 22), InvalidArgument);
  EXPECT_NO_THROW(SymmetricBasis(4, 21));
}

TEST(SymmetricBasisLimits, DimensionBeyondThe32BitIndexTableIsRefusedBeforeAllocating) {
  // last_index is stored in 32 bits; a larger d must be refused, not truncated
  // (and refused as a bad argument, whatever the machine's memory limit).
  const std::size_t d = std::size_t{std::numeric_limits<std::uint32_t>::max()} + 2;
  EXPECT_THROW(SymmetricBasis(d, 2), InvalidArgument);
  EXPECT_THROW(SymmetricBasis(d, 1), InvalidArgument);
}

TEST(SymmetricBasisLimits, FeatureCountThatOverflows64BitsThrowsResourceLimit) {
  EXPECT_THROW(feature_count(1000000, 21), ResourceLimit);
  EXPECT_THROW(SymmetricBasis(1000000, 21), ResourceLimit);
  // d + P - 1 itself overflowing must not wrap around to a small count.
  EXPECT_THROW(feature_count(std::numeric_limits<std::uint64_t>::max(), 2), ResourceLimit);
  EXPECT_THROW(symmetric_basis_size(std::numeric_limits<std::uint64_t>::max(), 2), ResourceLimit);
}

class MemoryLimitGuard {
 public:
  explicit MemoryLimitGuard(std::uint64_t bytes) : previous_(memory_limit_bytes()) { set_memory_limit_bytes(bytes); }
  ~MemoryLimitGuard() { set_memory_limit_bytes(previous_); }
  MemoryLimitGuard(const MemoryLimitGuard&) = delete;
  MemoryLimitGuard& operator=(const MemoryLimitGuard&) = delete;

 private:
  std::uint64_t previous_;
};

TEST(SymmetricBasisLimits, TablesLargerThanTheMemoryLimitThrowResourceLimitNamingTheByteCount) {
  const std::uint64_t previous = memory_limit_bytes();
  {
    const MemoryLimitGuard guard(1u << 20);
    // Per feature: two 32-bit tables (last index, run) and two 64-bit tables
    // (Π c_j!, parent) = 2·4 + 2·8 bytes.
    const std::uint64_t features = pascal(64 + 8 - 1, 8 - 1);
    const std::uint64_t bytes = features * (2 * 4 + 2 * 8);
    try {
      SymmetricBasis basis(64, 8);
      ADD_FAILURE() << "expected ResourceLimit";
    } catch (const ResourceLimit& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(std::to_string(bytes)), std::string::npos) << message;
      EXPECT_NE(message.find(std::to_string(1u << 20)), std::string::npos) << message;
    }
    // A small basis still fits under the same limit: 24·C(7, 3) bytes.
    EXPECT_NO_THROW(SymmetricBasis(4, 4));
  }
  EXPECT_EQ(memory_limit_bytes(), previous);
}

}  // namespace
}  // namespace satalab
