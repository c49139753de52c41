// The kernels' vectorised exp against MPFR's correctly rounded exp: within
// libmvec's documented 4 ulp on random arguments over the whole double range,
// and exactly std::exp's special values (zeros, infinities, NaN, overflow,
// underflow to subnormals and to zero), for every array length up to a few
// vectors, without touching elements past the end. Each variant (AVX-512,
// AVX2, scalar) is checked where this CPU runs it, and the one exp_in_place
// dispatches to is the one exp_implementation() names.
#include <gtest/gtest.h>
#include <mpfr.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
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

// The variants under test: the dispatched entry point and each implementation.
enum class Variant { dispatched, avx512, avx2, scalar };

std::string variant_name(const ::testing::TestParamInfo<Variant>& info) {
  switch (info.param) {
    case Variant::dispatched: return "Dispatched";
    case Variant::avx512: return "Avx512";
    case Variant::avx2: return "Avx2";
    default: return "Scalar";
  }
}

// Runs the variant on x[0 .. n); false when this build or CPU cannot run it.
bool run(Variant variant, double* x, std::size_t n) {
  switch (variant) {
    case Variant::dispatched: exp_in_place(x, n); return true;
    case Variant::avx512: return detail::exp_in_place_avx512(x, n);
    case Variant::avx2: return detail::exp_in_place_avx2(x, n);
    default: detail::exp_in_place_scalar(x, n); return true;
  }
}

class VectorExp : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    double probe = 0.0;
    if (!run(GetParam(), &probe, 1)) GTEST_SKIP() << "this build or CPU does not run this variant";
  }
  void exp(std::vector<double>& x) const { ASSERT_TRUE(run(GetParam(), x.data(), x.size())); }
};

TEST_P(VectorExp, RandomArgumentsWithinFourUlpOfCorrectlyRounded) {
  std::mt19937_64 rng(3u);
  std::uniform_real_distribution<double> wide(-745.5, 709.9), attention(-40.0, 0.0);
  std::vector<double> x(200000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = i % 2 ? wide(rng) : attention(rng);
  std::vector<double> y = x;
  exp(y);
  std::uint64_t worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double want = correctly_rounded_exp(x[i]);
    const std::uint64_t u = ulps(y[i], want);
    worst = std::max(worst, u);
    ASSERT_LE(u, 4u) << "exp(" << x[i] << "): got " << y[i] << ", correctly rounded " << want;
  }
  RecordProperty("worst_ulp", static_cast<int>(worst));
}

TEST_P(VectorExp, SpecialValuesAsStdExp) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> x = {0.0, -0.0, inf, -inf, nan, 709.78, 710.0, 1e300, -708.0, -720.0, -744.0, -745.2,
                           -746.0, -1e300, 1e-300, -1e-300, 1.0, -1.0};
  std::vector<double> y = x;
  exp(y);
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

TEST_P(VectorExp, EveryLengthLeavesNeighboursUntouched) {
  for (std::size_t n = 0; n <= 40; ++n) {
    std::vector<double> buffer(n + 2, 7.0);
    for (std::size_t i = 0; i < n; ++i) buffer[i + 1] = -0.25 * static_cast<double>(i);
    ASSERT_TRUE(run(GetParam(), buffer.data() + 1, n));
    EXPECT_EQ(buffer.front(), 7.0);
    EXPECT_EQ(buffer.back(), 7.0);
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_LE(ulps(buffer[i + 1], correctly_rounded_exp(-0.25 * static_cast<double>(i))), 4u)
          << "n = " << n << ", i = " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, VectorExp,
                         ::testing::Values(Variant::dispatched, Variant::avx512, Variant::avx2, Variant::scalar),
                         variant_name);

TEST(VectorExpDispatch, ChoosesTheWidestVariantThisCpuHasAndNamesIt) {
  // glibc's libmvec on x86-64 (as CI has): AVX-512 where the CPU has it
  // (asked here independently of the library), else AVX2; elsewhere std::exp.
  const std::string name = exp_implementation();
#if defined(__x86_64__) && defined(__GLIBC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    EXPECT_EQ(name, "libmvec-avx512");
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    EXPECT_EQ(name, "libmvec-avx2");
  }
#endif
  // What exp_in_place computes is what the named variant computes, bit for bit.
  std::mt19937_64 rng(5u);
  std::uniform_real_distribution<double> attention(-40.0, 0.0);
  std::vector<double> x(1003);
  for (double& v : x) v = attention(rng);
  std::vector<double> dispatched = x, named = x;
  exp_in_place(dispatched.data(), dispatched.size());
  const Variant variant = name == "libmvec-avx512" ? Variant::avx512
                          : name == "libmvec-avx2" ? Variant::avx2
                          : name == "std::exp"     ? Variant::scalar
                                                   : Variant::dispatched;
  ASSERT_NE(variant, Variant::dispatched) << "unknown implementation name " << name;
  ASSERT_TRUE(run(variant, named.data(), named.size())) << name;
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(dispatched[i], named[i]) << "exp(" << x[i] << ")";
}

}  // namespace
}  // namespace satalab
