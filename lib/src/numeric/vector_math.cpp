// exp over arrays through glibc's vector math library (libmvec): the kernels
// call exp once per (query, key) weight, and the scalar std::exp was a third
// of exact attention's time.
#include "satalab/numeric/vector_math.hpp"

#include <cmath>

#if defined(SATALAB_HAVE_LIBMVEC) && (defined(__AVX512F__) || defined(__AVX2__))
#include <immintrin.h>
#define SATALAB_VECTOR_EXP 1
// libmvec's x86_64 variants, by the vector ABI's mangled names: 'e' is
// AVX-512 (8 doubles), 'd' AVX2 (4 doubles); N = unmasked, v = vector argument.
extern "C" __m512d _ZGVeN8v_exp(__m512d);
extern "C" __m256d _ZGVdN4v_exp(__m256d);
#endif

namespace satalab {

void exp_in_place(double* x, std::size_t n) {
  std::size_t i = 0;
#if defined(SATALAB_VECTOR_EXP) && defined(__AVX512F__)
  for (; i + 8 <= n; i += 8) _mm512_storeu_pd(x + i, _ZGVeN8v_exp(_mm512_loadu_pd(x + i)));
  if (i < n) {
    // The tail through one masked vector: lanes past n read as 0 and are not stored.
    const auto mask = static_cast<__mmask8>((1u << (n - i)) - 1);
    _mm512_mask_storeu_pd(x + i, mask, _ZGVeN8v_exp(_mm512_maskz_loadu_pd(mask, x + i)));
    i = n;
  }
#elif defined(SATALAB_VECTOR_EXP)
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(x + i, _ZGVdN4v_exp(_mm256_loadu_pd(x + i)));
#endif
  for (; i < n; ++i) x[i] = std::exp(x[i]);
}

const char* exp_implementation() {
#if defined(SATALAB_VECTOR_EXP) && defined(__AVX512F__)
  return "libmvec-avx512";
#elif defined(SATALAB_VECTOR_EXP)
  return "libmvec-avx2";
#else
  return "std::exp";
#endif
}

}  // namespace satalab
