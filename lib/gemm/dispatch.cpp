// Eigen's float and double matrix products, chosen at run time by the CPU
// (docs/architecture.md, "Build and provenance").
//
// Eigen picks its vector width at compile time: compiled for the portable
// baseline (x86-64-v3, AVX2) its products run at about 0.7x of an AVX-512
// build on an AVX-512 machine. With EIGEN_USE_BLAS every float/double product
// of the library calls the BLAS routines ?gemm_/?gemv_, which lib/CMakeLists.txt
// renames to the satalab_?gemm/satalab_?gemv defined here (so no BLAS
// library is involved or overridden); they run Eigen's own kernels compiled for
// AVX-512 where the CPU has it, else for the baseline (gemm_variant.cpp).
// Same kernels and blocking as an Eigen product compiled for that instruction
// set: a portable binary on an AVX-512 machine computes what a native build
// does.
//
// The routines implement the BLAS semantics in full (alpha, beta, transposes,
// increments), although Eigen only calls them with beta = 1 and unit
// increments.
#include <cstddef>
#include <vector>

#include "gemm_variants.hpp"

namespace satalab::gemm {
namespace {

bool use_avx512() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2");
  }();
  return yes;
}

bool transposed(const char* t) { return *t == 'T' || *t == 't' || *t == 'C' || *t == 'c'; }

// C[m x n] (column-major, leading dimension ldc) *= beta.
template <class T>
void scale(std::ptrdiff_t m, std::ptrdiff_t n, T beta, T* c, std::ptrdiff_t ldc) {
  if (beta == T(1)) return;
  for (std::ptrdiff_t j = 0; j < n; ++j) {
    for (std::ptrdiff_t i = 0; i < m; ++i) c[i + j * ldc] = beta == T(0) ? T(0) : beta * c[i + j * ldc];
  }
}

template <class T>
void gemm(const char* transa, const char* transb, const int* m, const int* n, const int* k, const T* alpha,
          const T* a, const int* lda, const T* b, const int* ldb, const T* beta, T* c, const int* ldc) {
  if (*m <= 0 || *n <= 0) return;
  scale<T>(*m, *n, *beta, c, *ldc);
  if (*k <= 0 || *alpha == T(0)) return;
  const bool ta = transposed(transa), tb = transposed(transb);
  if (use_avx512()) {
    avx512::gemm(ta, tb, *m, *n, *k, *alpha, a, *lda, b, *ldb, c, *ldc);
  } else {
    baseline::gemm(ta, tb, *m, *n, *k, *alpha, a, *lda, b, *ldb, c, *ldc);
  }
}

template <class T>
void gemv(const char* trans, const int* m, const int* n, const T* alpha, const T* a, const int* lda, const T* x,
          const int* incx, const T* beta, T* y, const int* incy) {
  if (*m <= 0 || *n <= 0) return;
  const bool ta = transposed(trans);
  const std::ptrdiff_t ny = ta ? *n : *m, nx = ta ? *m : *n;
  // Eigen's kernels read x and write y contiguously: copy other strides.
  std::vector<T> x_copy, y_copy;
  const T* xs = x;
  std::ptrdiff_t xi = *incx;
  if (xi != 1) {
    x_copy.resize(static_cast<std::size_t>(nx));
    for (std::ptrdiff_t i = 0; i < nx; ++i) x_copy[static_cast<std::size_t>(i)] = x[(xi > 0 ? i : i - nx + 1) * xi];
    xs = x_copy.data();
    xi = 1;
  }
  T* ys = y;
  std::ptrdiff_t yi = *incy;
  const auto y_at = [&](std::ptrdiff_t i) -> T& { return y[(*incy > 0 ? i : i - ny + 1) * *incy]; };
  if (yi != 1) {
    y_copy.resize(static_cast<std::size_t>(ny));
    for (std::ptrdiff_t i = 0; i < ny; ++i) y_copy[static_cast<std::size_t>(i)] = y_at(i);
    ys = y_copy.data();
    yi = 1;
  }
  scale<T>(ny, 1, *beta, ys, ny);
  if (*alpha != T(0)) {
    if (use_avx512()) {
      avx512::gemv(ta, *m, *n, *alpha, a, *lda, xs, xi, ys, yi);
    } else {
      baseline::gemv(ta, *m, *n, *alpha, a, *lda, xs, xi, ys, yi);
    }
  }
  if (!y_copy.empty()) {
    for (std::ptrdiff_t i = 0; i < ny; ++i) y_at(i) = y_copy[static_cast<std::size_t>(i)];
  }
}

}  // namespace

bool wide_products() { return use_avx512(); }

}  // namespace satalab::gemm

// The BLAS entry points Eigen calls (prototypes as Eigen's blas.h declares them).
extern "C" {

int satalab_sgemm(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
                  const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
                  const int* ldc) {
  satalab::gemm::gemm<float>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  return 0;
}

int satalab_dgemm(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
                  const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
                  const int* ldc) {
  satalab::gemm::gemm<double>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  return 0;
}

int satalab_sgemv(const char* t, const int* m, const int* n, const float* alpha, const float* a, const int* lda,
                  const float* x, const int* incx, const float* beta, float* y, const int* incy) {
  satalab::gemm::gemv<float>(t, m, n, alpha, a, lda, x, incx, beta, y, incy);
  return 0;
}

int satalab_dgemv(const char* t, const int* m, const int* n, const double* alpha, const double* a, const int* lda,
                  const double* x, const int* incx, const double* beta, double* y, const int* incy) {
  satalab::gemm::gemv<double>(t, m, n, alpha, a, lda, x, incx, beta, y, incy);
  return 0;
}

}  // extern "C"
