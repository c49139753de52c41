#pragma once
// Shared helpers of the Python bindings (internal to the module): numpy
// arrays in and out, argument checks with the library's one-line messages,
// the GIL and Ctrl-C.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <cstddef>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "satalab/attention/compute.hpp"
#include "satalab/attention/options.hpp"
#include "satalab/metrics/error_metrics.hpp"

namespace satalab::python {

namespace py = pybind11;

// ---------------------------------------------------------------- arrays

// A numpy array read as float64, C order, with its logical shape. Accepts
// float16, float32 and float64 arrays (any strides; converted exactly);
// anything else raises TypeError naming the dtype (never a silent cast).
struct Float64Array {
  std::vector<std::size_t> shape;
  std::vector<double> values;  // row-major
};
Float64Array float64_array(const py::handle& object, const char* name);

// Raises ValueError "<name> contains NaN at flat index i" (or Inf, -Inf).
void check_finite(const Float64Array& array, const char* name);

// "[2, 3, 4]"
std::string shape_text(const std::vector<std::size_t>& shape);

// A head-major array [heads, n_tokens, dim] from a rank-2 [n_tokens, dim]
// (one head) or rank-3 array; ValueError for other ranks.
HeadArrays head_arrays(Float64Array&& array, const char* name);

// A new numpy float64 array of the given shape that takes over `values`.
py::array_t<double> numpy_array(std::vector<double>&& values,
                                const std::vector<std::size_t>& shape);

// ---------------------------------------------------------------- arguments

// Python ints as counts: ValueError "<name> = <v> is invalid (must be >= <minimum>)".
std::size_t count_argument(long long value, const char* name, long long minimum = 1);

// AttentionOptions from the Python arguments. softmax_scale multiplies q·k
// (s = softmax_scale · q·k); the library takes c = 1 / softmax_scale.
AttentionOptions attention_options(long long taylor_terms, bool causal,
                                   const std::optional<long long>& chunk,
                                   const std::optional<double>& softmax_scale,
                                   const std::string& placement);

// ---------------------------------------------------------------- GIL, Ctrl-C

// Acquires the GIL and raises KeyboardInterrupt (or whatever a Python signal
// handler raised) if a signal arrived. Call with the GIL released.
void check_signals();

// compute_attention with the GIL released, in groups of heads (as many heads
// as OpenMP threads per group; heads are independent, so the numbers are the
// same as one call), checking for Ctrl-C between groups. Call with the GIL released.
AttentionOutput compute_interruptible(Method method, const QkvArrays& inputs,
                                      const PrecisionPolicy& policy,
                                      const AttentionOptions& options);

// MPFR's default precision is process-wide (Boost 1.74): the library's entry
// points set the precision they need, but two different precisions in two
// threads at once would conflict, so one mp computation at a time (taken with
// the GIL released).
std::unique_lock<std::mutex> mp_lock(const PrecisionPolicy& policy);
std::mutex& mp_mutex();

// ---------------------------------------------------------------- results

py::dict metrics_dict(const ErrorMetrics& metrics);
py::dict normaliser_dict(const NormaliserStats& stats);

// ---------------------------------------------------------------- bindings

void bind_numeric(py::module_& m);
void bind_attention(py::module_& m);
void bind_state(py::module_& m);
void bind_results(py::module_& m);

}  // namespace satalab::python
