#pragma once
// Correct rounding (to nearest, ties to even) of a carrier value into a format,
// in one step: never through an intermediate format (double -> float -> half
// rounds twice and is wrong for some inputs). Overflow follows the format's
// rule; underflow goes to subnormals (or zero when the format has none).
// float and double share one algorithm (round_native in rounding.cpp); the
// float fast paths (encoding bits, F16C for fp16) and the array routines are
// vectorised forms of it with the same results, which the exhaustive tests
// check against the enumeration of every format's grid.
#include <cstddef>

#include "satalab/numeric/format.hpp"

namespace satalab {

double round_to(double x, const Format& format);
float round_to(float x, const Format& format);
// The multiprecision overload, round_to(const mp_t&, const Format&), is in
// multiprecision.hpp, so that only code computing in MPFR includes Boost's
// MPFR header.

// out[i] = round_to(in[i], format) for i < n (in may equal out): the same
// results, vectorised for the kernels' feature and weight arrays.
void round_to(const float* in, float* out, std::size_t n, const Format& format);
void round_to(const double* in, double* out, std::size_t n, const Format& format);
// out[i] = round_to(in[i], format) for a format that float holds (no wider than
// fp32): one rounding of the double, stored in a float carrier.
void round_to(const double* in, float* out, std::size_t n, const Format& format);

}  // namespace satalab
