// Eigen's matrix products for one instruction set (gemm_variants.hpp).
// Compiled once per variant by lib/CMakeLists.txt with
//   -DSATALAB_GEMM_VARIANT=<baseline|avx512> -DEigen=satalab_eigen_<variant>
// and that variant's -march; without EIGEN_USE_BLAS, so these are Eigen's
// built-in kernels, the very code an Eigen product compiled for that
// instruction set runs.
#include <Eigen/Core>

#include "gemm_variants.hpp"

namespace satalab::gemm::SATALAB_GEMM_VARIANT {
namespace {

using Eigen::ColMajor;
using Eigen::Dynamic;
using Eigen::Index;
using Eigen::RowMajor;
using Eigen::internal::const_blas_data_mapper;
using Eigen::internal::gemm_blocking_space;
using Eigen::internal::general_matrix_matrix_product;
using Eigen::internal::general_matrix_vector_product;

template <class T>
void gemm_impl(bool ta, bool tb, Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b, Index ldb,
               T* c, Index ldc) {
  // The blocking an Eigen product with a dynamic-size column-major destination
  // computes (a row-major destination is its transpose, as here).
  gemm_blocking_space<ColMajor, T, T, Dynamic, Dynamic, Dynamic> blocking(m, n, k, 1, true);
  if (!ta && !tb) {
    general_matrix_matrix_product<Index, T, ColMajor, false, T, ColMajor, false, ColMajor, 1>::run(
        m, n, k, a, lda, b, ldb, c, 1, ldc, alpha, blocking, nullptr);
  } else if (ta && !tb) {
    general_matrix_matrix_product<Index, T, RowMajor, false, T, ColMajor, false, ColMajor, 1>::run(
        m, n, k, a, lda, b, ldb, c, 1, ldc, alpha, blocking, nullptr);
  } else if (!ta && tb) {
    general_matrix_matrix_product<Index, T, ColMajor, false, T, RowMajor, false, ColMajor, 1>::run(
        m, n, k, a, lda, b, ldb, c, 1, ldc, alpha, blocking, nullptr);
  } else {
    general_matrix_matrix_product<Index, T, RowMajor, false, T, RowMajor, false, ColMajor, 1>::run(
        m, n, k, a, lda, b, ldb, c, 1, ldc, alpha, blocking, nullptr);
  }
}

template <class T>
void gemv_impl(bool ta, Index m, Index n, T alpha, const T* a, Index lda, const T* x, Index incx, T* y,
               Index incy) {
  if (!ta) {
    // y[m] += alpha A[m x n] x[n], A column-major (Eigen's column-major kernel).
    using Lhs = const_blas_data_mapper<T, Index, ColMajor>;
    using Rhs = const_blas_data_mapper<T, Index, RowMajor>;
    general_matrix_vector_product<Index, T, Lhs, ColMajor, false, T, Rhs, false>::run(m, n, Lhs(a, lda),
                                                                                      Rhs(x, incx), y, incy, alpha);
  } else {
    // y[n] += alpha A^T x[m]: A^T is row-major [n x m] (Eigen's row-major kernel).
    using Lhs = const_blas_data_mapper<T, Index, RowMajor>;
    using Rhs = const_blas_data_mapper<T, Index, ColMajor>;
    general_matrix_vector_product<Index, T, Lhs, RowMajor, false, T, Rhs, false>::run(n, m, Lhs(a, lda),
                                                                                      Rhs(x, incx), y, incy, alpha);
  }
}

}  // namespace

void gemm(bool ta, bool tb, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, float alpha, const float* a,
          std::ptrdiff_t lda, const float* b, std::ptrdiff_t ldb, float* c, std::ptrdiff_t ldc) {
  gemm_impl<float>(ta, tb, m, n, k, alpha, a, lda, b, ldb, c, ldc);
}
void gemm(bool ta, bool tb, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, double alpha, const double* a,
          std::ptrdiff_t lda, const double* b, std::ptrdiff_t ldb, double* c, std::ptrdiff_t ldc) {
  gemm_impl<double>(ta, tb, m, n, k, alpha, a, lda, b, ldb, c, ldc);
}
void gemv(bool ta, std::ptrdiff_t m, std::ptrdiff_t n, float alpha, const float* a, std::ptrdiff_t lda,
          const float* x, std::ptrdiff_t incx, float* y, std::ptrdiff_t incy) {
  gemv_impl<float>(ta, m, n, alpha, a, lda, x, incx, y, incy);
}
void gemv(bool ta, std::ptrdiff_t m, std::ptrdiff_t n, double alpha, const double* a, std::ptrdiff_t lda,
          const double* x, std::ptrdiff_t incx, double* y, std::ptrdiff_t incy) {
  gemv_impl<double>(ta, m, n, alpha, a, lda, x, incx, y, incy);
}

}  // namespace satalab::gemm::SATALAB_GEMM_VARIANT
