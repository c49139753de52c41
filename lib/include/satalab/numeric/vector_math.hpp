#pragma once
// Elementwise exponentials for the kernels' weight arrays.
#include <cstddef>

namespace satalab {

// x[i] <- exp(x[i]) for i < n, in place. Vectorised with glibc's libmvec,
// whose documented error is at most 4 ulp (measured at most 3 ulp; std::exp is
// below 1 ulp); it handles overflow, underflow to subnormals and zero,
// infinities and NaN as std::exp does. The variant is chosen once, at run
// time, from the CPU: AVX-512 (8 doubles) where the CPU has it, else AVX2 (4
// doubles); std::exp element by element without libmvec or AVX2. The
// variants may differ in the last bits, which is why results record
// exp_implementation() (build_info.hpp).
void exp_in_place(double* x, std::size_t n);

// Which implementation exp_in_place uses on this CPU: "libmvec-avx512",
// "libmvec-avx2" or "std::exp".
const char* exp_implementation();

namespace detail {
// The variants themselves, for the tests. Each returns false (and leaves x
// alone) where this build or CPU cannot run it.
bool exp_in_place_avx512(double* x, std::size_t n);
bool exp_in_place_avx2(double* x, std::size_t n);
void exp_in_place_scalar(double* x, std::size_t n);
}  // namespace detail

}  // namespace satalab
