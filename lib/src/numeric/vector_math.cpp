// exp over arrays through glibc's vector math library (libmvec): the kernels
// call exp once per (query, key) weight, and the scalar std::exp was a third
// of exact attention's time.
//
// The library is compiled for a baseline instruction set (x86-64-v3 by
// default, docs/architecture.md "Build and provenance"); the AVX-512 variant
// is compiled for AVX-512 alone (a target attribute) and called only where the
// CPU has it, so the same binary runs everywhere and is as fast as a native
// build on AVX-512 machines.
#include "satalab/numeric/vector_math.hpp"

#include <cmath>

#if defined(SATALAB_HAVE_LIBMVEC) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SATALAB_VECTOR_EXP 1
#include <immintrin.h>
// libmvec's x86_64 variants, by the vector ABI's mangled names: 'e' is
// AVX-512 (8 doubles), 'd' AVX2 (4 doubles); N = unmasked, v = vector
// argument. Declared under the instruction set their arguments need.
#pragma GCC push_options
#pragma GCC target("avx512f")
extern "C" __m512d _ZGVeN8v_exp(__m512d);
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
extern "C" __m256d _ZGVdN4v_exp(__m256d);
#pragma GCC pop_options
#endif

namespace satalab {
namespace {

enum class ExpPath { avx512, avx2, scalar };

#if defined(SATALAB_VECTOR_EXP)
__attribute__((target("avx512f"))) void exp_avx512(double* x, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm512_storeu_pd(x + i, _ZGVeN8v_exp(_mm512_loadu_pd(x + i)));
  if (i < n) {
    // The tail through one masked vector: lanes past n read as 0 and are not stored.
    const auto mask = static_cast<__mmask8>((1u << (n - i)) - 1);
    _mm512_mask_storeu_pd(x + i, mask, _ZGVeN8v_exp(_mm512_maskz_loadu_pd(mask, x + i)));
  }
}

__attribute__((target("avx2,fma"))) void exp_avx2(double* x, std::size_t n) {
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(x + i, _ZGVdN4v_exp(_mm256_loadu_pd(x + i)));
  for (; i < n; ++i) x[i] = std::exp(x[i]);
}
#endif

ExpPath choose_path() {
#if defined(SATALAB_VECTOR_EXP)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return ExpPath::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ExpPath::avx2;
#endif
  return ExpPath::scalar;
}

ExpPath exp_path() {
  static const ExpPath path = choose_path();
  return path;
}

}  // namespace

namespace detail {

bool exp_in_place_avx512(double* x, std::size_t n) {
#if defined(SATALAB_VECTOR_EXP)
  if (exp_path() == ExpPath::avx512) {
    exp_avx512(x, n);
    return true;
  }
#endif
  (void)x, (void)n;
  return false;
}

bool exp_in_place_avx2(double* x, std::size_t n) {
#if defined(SATALAB_VECTOR_EXP)
  if (exp_path() != ExpPath::scalar) {
    exp_avx2(x, n);
    return true;
  }
#endif
  (void)x, (void)n;
  return false;
}

void exp_in_place_scalar(double* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
}

}  // namespace detail

void exp_in_place(double* x, std::size_t n) {
  switch (exp_path()) {
#if defined(SATALAB_VECTOR_EXP)
    case ExpPath::avx512: exp_avx512(x, n); return;
    case ExpPath::avx2: exp_avx2(x, n); return;
#endif
    default: detail::exp_in_place_scalar(x, n); return;
  }
}

const char* exp_implementation() {
  switch (exp_path()) {
    case ExpPath::avx512: return "libmvec-avx512";
    case ExpPath::avx2: return "libmvec-avx2";
    default: return "std::exp";
  }
}

}  // namespace satalab
