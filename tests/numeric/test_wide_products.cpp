// The matrix products chosen at run time (lib/gemm/): Eigen's own kernels
// compiled for the baseline and for AVX-512, behind the BLAS routines Eigen
// calls in a portable build. Each variant against a long double reference
// within the classical error bound, the BLAS semantics Eigen does not use
// (beta, increments), and every Eigen product running the variant this CPU
// selects, bit for bit.
#include <gtest/gtest.h>

#include <Eigen/Core>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#if defined(EIGEN_USE_BLAS)
#include "../../lib/gemm/gemm_variants.hpp"
#endif

namespace satalab {
namespace {

#if defined(EIGEN_USE_BLAS)

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

template <class T>
std::vector<T> random_values(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<T> x(n);
  for (T& v : x) v = static_cast<T>(u(rng));
  return x;
}

// A column-major [rows x cols] with leading dimension ld: element (i, j).
template <class T>
T at(const std::vector<T>& a, std::ptrdiff_t ld, std::ptrdiff_t i, std::ptrdiff_t j) {
  return a[static_cast<std::size_t>(i + j * ld)];
}

template <class T>
using Gemm = void (*)(bool, bool, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, T, const T*, std::ptrdiff_t,
                      const T*, std::ptrdiff_t, T*, std::ptrdiff_t);

// C += alpha op(A) op(B) against long double sums; |error| <= k u sum|a b| (+ the rounding of C).
template <class T>
void check_gemm(Gemm<T> gemm, const char* variant) {
  const T u = std::numeric_limits<T>::epsilon() / 2;
  for (const std::ptrdiff_t m : {1, 7, 33, 130}) {
    for (const std::ptrdiff_t n : {1, 5, 64}) {
      for (const std::ptrdiff_t k : {1, 9, 300}) {
        for (const bool ta : {false, true}) {
          for (const bool tb : {false, true}) {
            const std::ptrdiff_t lda = (ta ? k : m) + 3, ldb = (tb ? n : k) + 1, ldc = m + 2;
            const auto a = random_values<T>(static_cast<std::size_t>(lda * (ta ? m : k)), 1);
            const auto b = random_values<T>(static_cast<std::size_t>(ldb * (tb ? k : n)), 2);
            auto c = random_values<T>(static_cast<std::size_t>(ldc * n), 3);
            const auto c0 = c;
            const T alpha = T(0.75);
            gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, c.data(), ldc);
            for (std::ptrdiff_t i = 0; i < m; ++i) {
              for (std::ptrdiff_t j = 0; j < n; ++j) {
                long double sum = 0, magnitude = 0;
                for (std::ptrdiff_t p = 0; p < k; ++p) {
                  const long double x = ta ? at(a, lda, p, i) : at(a, lda, i, p);
                  const long double y = tb ? at(b, ldb, j, p) : at(b, ldb, p, j);
                  sum += x * y;
                  magnitude += std::fabs(x * y);
                }
                const long double want = at(c0, ldc, i, j) + alpha * sum;
                const long double bound = (k + 2) * u * (std::fabs(at(c0, ldc, i, j)) + alpha * magnitude);
                ASSERT_LE(std::fabs(at(c, ldc, i, j) - want), bound)
                    << variant << " m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " tb=" << tb
                    << " (" << i << ", " << j << ")";
              }
            }
          }
        }
      }
    }
  }
}

TEST(WideProducts, BaselineGemmWithinTheErrorBoundForEveryShapeAndTranspose) {
  check_gemm<float>(gemm::baseline::gemm, "baseline float");
  check_gemm<double>(gemm::baseline::gemm, "baseline double");
}

TEST(WideProducts, Avx512GemmWithinTheErrorBoundForEveryShapeAndTranspose) {
  if (!cpu_has_avx512()) GTEST_SKIP() << "this CPU has no AVX-512";
  check_gemm<float>(gemm::avx512::gemm, "avx512 float");
  check_gemm<double>(gemm::avx512::gemm, "avx512 double");
}

TEST(WideProducts, BlasEntryPointsHonourBetaTransposesAndIncrements) {
  // C = alpha A^T B + beta C with beta = 0 (C's NaNs discarded) and beta = 2.
  const int m = 3, n = 2, k = 4, lda = 4, ldb = 4, ldc = 3;
  const std::vector<double> a = random_values<double>(lda * m, 4), b = random_values<double>(ldb * n, 5);
  for (const double beta : {0.0, 2.0}) {
    std::vector<double> c = random_values<double>(ldc * n, 6);
    const std::vector<double> c0 = c;
    if (beta == 0.0) c.assign(c.size(), std::numeric_limits<double>::quiet_NaN());
    const double alpha = 1.5;
    satalab_dgemm("T", "N", &m, &n, &k, &alpha, a.data(), &lda, b.data(), &ldb, &beta, c.data(), &ldc);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        double want = 0;
        for (int p = 0; p < k; ++p) want += a[p + i * lda] * b[p + j * ldb];
        want = alpha * want + beta * c0[i + j * ldc];
        EXPECT_NEAR(c[i + j * ldc], want, 1e-14) << "beta " << beta << " (" << i << ", " << j << ")";
      }
    }
  }
  // y = alpha op(A) x + beta y with strided x and y, both transposes.
  const int rows = 5, cols = 3, ld = 6, incx = 2, incy = 3;
  const std::vector<float> mat = random_values<float>(ld * cols, 7);
  for (const char* trans : {"N", "T"}) {
    const bool t = trans[0] == 'T';
    const int nx = t ? rows : cols, ny = t ? cols : rows;
    const std::vector<float> x = random_values<float>(nx * incx, 8);
    std::vector<float> y = random_values<float>(ny * incy, 9);
    const std::vector<float> y0 = y;
    const float alpha = 0.5f, beta = -1.0f;
    satalab_sgemv(trans, &rows, &cols, &alpha, mat.data(), &ld, x.data(), &incx, &beta, y.data(), &incy);
    for (int i = 0; i < ny * incy; ++i) {
      if (i % incy != 0) {
        EXPECT_EQ(y[i], y0[i]) << trans << ": element " << i << " between the strided ones changed";
        continue;
      }
      double want = 0;
      for (int p = 0; p < nx; ++p) want += double(t ? mat[p + (i / incy) * ld] : mat[i / incy + p * ld]) * x[p * incx];
      EXPECT_NEAR(y[i], alpha * want + beta * y0[i], 1e-5) << trans << " y[" << i / incy << "]";
    }
  }
}

TEST(WideProducts, EigenProductsRunTheVariantThisCpuSelectsBitForBit) {
  // An Eigen product in this (portable) build goes through satalab_sgemm to
  // the AVX-512 kernels exactly where the CPU has them.
  const bool wide = cpu_has_avx512();
  EXPECT_EQ(gemm::wide_products(), wide);
  const std::ptrdiff_t m = 70, n = 33, k = 129;
  const auto a = random_values<float>(static_cast<std::size_t>(m * k), 10);
  const auto b = random_values<float>(static_cast<std::size_t>(k * n), 11);
  Eigen::Map<const Eigen::MatrixXf> A(a.data(), m, k), B(b.data(), k, n);
  Eigen::MatrixXf C = Eigen::MatrixXf::Zero(m, n);
  C.noalias() += A * B;
  std::vector<float> c(static_cast<std::size_t>(m * n), 0.0f);
  const Gemm<float> selected = wide ? static_cast<Gemm<float>>(gemm::avx512::gemm)
                                   : static_cast<Gemm<float>>(gemm::baseline::gemm);
  selected(false, false, m, n, k, 1.0f, a.data(), m, b.data(), k, c.data(), m);
  for (std::ptrdiff_t j = 0; j < n; ++j) {
    for (std::ptrdiff_t i = 0; i < m; ++i) ASSERT_EQ(C(i, j), c[static_cast<std::size_t>(i + j * m)]) << i << ", " << j;
  }
}

#else

TEST(WideProducts, NotInThisBuild) { GTEST_SKIP() << "Eigen's products are compiled inline (native or non-x86 build)"; }

#endif

}  // namespace
}  // namespace satalab
