// The kernels' vectorised exp against MPFR's correctly rounded exp: within
// libmvec's documented 4 ulp on random arguments over the whole double range,
// and exactly std::exp's special values (zeros, infinities, NaN, overflow,
// underflow to subnormals and to zero), for every array length up to a few
// vectors, without touching elements past the end.
#include <gtest/gtest.h>
#include <mpfr.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "satalab/numeric/vector_math.hpp"

namespace satalab {
namespace {

double correctly_rounded_exp(double x) {
  // 200 bits, then one rounding into double (mpfr_get_d rounds correctly,
  // subnormals included); the 200-bit step cannot move a double rounding.
  mpfr_t m;
  mpfr_init2(m, 200);
  mpfr_set_d(m, x, MPFR_RNDN);
  mpfr_exp(m, m, MPFR_RNDN);
  const double out = mpfr_get_d(m, MPFR_RNDN);
  mpfr_clear(m);
  return out;
}

// Distance in units in the last place between two finite non-negative doubles.
std::uint64_t ulps(double a, double b) {
  std::uint64_t ia = 0, ib = 0;
  std::memcpy(&ia, &a, sizeof a);
  std::memcpy(&ib, &b, sizeof b);
  return ia > ib ? ia - ib : ib - ia;
}

TEST(VectorExp, RandomArgumentsWithinFourUlpOfCorrectlyRounded) {
  std::mt19937_64 rng(3u);
  std::uniform_real_distribution<double> wide(-745.5, 709.9), attention(-40.0, 0.0);
  std::vector<double> x(200000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = i % 2 ? wide(rng) : attention(rng);
  std::vector<double> y = x;
  exp_in_place(y.data(), y.size());
  std::uint64_t worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double want = correctly_rounded_exp(x[i]);
    const std::uint64_t u = ulps(y[i], want);
    worst = std::max(worst, u);
    ASSERT_LE(u, 4u) << "exp(" << x[i] << "): got " << y[i] << ", correctly rounded " << want << " ("
                     << exp_implementation() << ")";
  }
  RecordProperty("worst_ulp", static_cast<int>(worst));
}

TEST(VectorExp, SpecialValuesAsStdExp) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> x = {0.0, -0.0, inf, -inf, nan, 709.78, 710.0, 1e300, -708.0, -720.0, -744.0, -745.2,
                           -746.0, -1e300, 1e-300, -1e-300, 1.0, -1.0};
  std::vector<double> y = x;
  exp_in_place(y.data(), y.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp(x[i]);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(y[i])) << x[i];
    } else if (want == 0 || std::isinf(want) || want == 1) {
      EXPECT_EQ(y[i], want) << "exp(" << x[i] << ")";
    } else {
      EXPECT_LE(ulps(y[i], correctly_rounded_exp(x[i])), 4u) << "exp(" << x[i] << ") = " << y[i];
    }
  }
}

TEST(VectorExp, EveryLengthLeavesNeighboursUntouched) {
  for (std::size_t n = 0; n <= 40; ++n) {
    std::vector<double> buffer(n + 2, 7.0);
    for (std::size_t i = 0; i < n; ++i) buffer[i + 1] = -0.25 * static_cast<double>(i);
    exp_in_place(buffer.data() + 1, n);
    EXPECT_EQ(buffer.front(), 7.0);
    EXPECT_EQ(buffer.back(), 7.0);
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_LE(ulps(buffer[i + 1], correctly_rounded_exp(-0.25 * static_cast<double>(i))), 4u) << "n = " << n << ", i = " << i;
    }
  }
}

TEST(VectorExp, BuildUsesTheVectorLibraryWhereAvailable) {
  // On x86-64 builds with AVX2 or AVX-512 and glibc's libmvec (as CI has),
  // the vector routine is what the kernels run; elsewhere std::exp.
#if (defined(__AVX512F__) || defined(__AVX2__)) && defined(__GLIBC__)
  EXPECT_NE(std::string(exp_implementation()), "std::exp");
#endif
  SUCCEED() << exp_implementation();
}

}  // namespace
}  // namespace satalab
