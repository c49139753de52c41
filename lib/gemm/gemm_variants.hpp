#pragma once
// Matrix products of one instruction set, for the runtime dispatch in
// dispatch.cpp. Each is Eigen's own product (general_matrix_matrix_product,
// general_matrix_vector_product with the blocking Eigen computes), compiled
// in gemm_variant.cpp once per instruction set with Eigen's namespace renamed,
// so that the copies never meet at link time.
//   gemm: C += alpha · op(A) · op(B), column-major, op = transpose if t*.
//   gemv: y += alpha · op(A) · x.
#include <cstddef>

namespace satalab::gemm {

#define SATALAB_GEMM_VARIANT_FUNCTIONS(variant)                                                                   \
  namespace variant {                                                                                             \
  void gemm(bool ta, bool tb, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, float alpha, const float* a,  \
            std::ptrdiff_t lda, const float* b, std::ptrdiff_t ldb, float* c, std::ptrdiff_t ldc);                \
  void gemm(bool ta, bool tb, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, double alpha, const double* a, \
            std::ptrdiff_t lda, const double* b, std::ptrdiff_t ldb, double* c, std::ptrdiff_t ldc);              \
  void gemv(bool ta, std::ptrdiff_t m, std::ptrdiff_t n, float alpha, const float* a, std::ptrdiff_t lda,          \
            const float* x, std::ptrdiff_t incx, float* y, std::ptrdiff_t incy);                                  \
  void gemv(bool ta, std::ptrdiff_t m, std::ptrdiff_t n, double alpha, const double* a, std::ptrdiff_t lda,       \
            const double* x, std::ptrdiff_t incx, double* y, std::ptrdiff_t incy);                                \
  }

SATALAB_GEMM_VARIANT_FUNCTIONS(baseline)
SATALAB_GEMM_VARIANT_FUNCTIONS(avx512)

// True when the products run the AVX-512 kernels (this CPU has AVX-512F, DQ,
// BW and VL); dispatch.cpp.
bool wide_products();

}  // namespace satalab::gemm
