#pragma once
// Elementwise exponentials for the kernels' weight arrays.
#include <cstddef>

namespace satalab {

// x[i] <- exp(x[i]) for i < n, in place. Vectorised with glibc's libmvec
// (AVX-512 or AVX2 variant, as the build targets), whose documented error is
// at most 4 ulp (measured at most 3 ulp; std::exp is below 1 ulp); it handles
// overflow, underflow to subnormals and zero, infinities and NaN as std::exp
// does. Without libmvec (or without AVX2) this is std::exp element by element.
void exp_in_place(double* x, std::size_t n);

// Which implementation exp_in_place uses: "libmvec-avx512", "libmvec-avx2" or "std::exp".
const char* exp_implementation();

}  // namespace satalab
