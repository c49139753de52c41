// numpy arrays in and out, and argument checks.
#include <fmt/format.h>
#include <omp.h>

#include <cmath>
#include <numeric>

#include "common.hpp"
#include "satalab/attention/kernels.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/precision_policy.hpp"

namespace satalab::python {

std::string shape_text(const std::vector<std::size_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

Float64Array float64_array(const py::handle& object, const char* name) {
  py::array array;
  try {
    array = py::array::ensure(object);
  } catch (const py::error_already_set&) {
    array = py::array();
  }
  if (!array) {
    throw py::type_error(
        fmt::format("{} must be a numpy array of float16, float32 or float64 (got {})", name,
                    std::string(py::str(py::type::of(object).attr("__name__")))));
  }
  const py::dtype dtype = array.dtype();
  if (dtype.kind() != 'f' ||
      (dtype.itemsize() != 2 && dtype.itemsize() != 4 && dtype.itemsize() != 8)) {
    throw py::type_error(
        fmt::format("{} has dtype {}; allowed: float16, float32, float64 (convert it explicitly, "
                    "e.g. {}.astype(numpy.float32))",
                    name, std::string(py::str(dtype.attr("name"))), name));
  }
  Float64Array out;
  for (py::ssize_t i = 0; i < array.ndim(); ++i)
    out.shape.push_back(static_cast<std::size_t>(array.shape(i)));
  const std::size_t count = std::accumulate(out.shape.begin(), out.shape.end(), std::size_t{1},
                                            std::multiplies<std::size_t>());
  check_memory(checked_mul(count, sizeof(double), name),
               fmt::format("{} as float64 {}", name, shape_text(out.shape)));
  // numpy widens float16 and float32 to float64 exactly, whatever the strides.
  const auto contiguous =
      py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(array);
  if (!contiguous) throw py::error_already_set();
  out.values.assign(contiguous.data(), contiguous.data() + count);
  return out;
}

void check_finite(const Float64Array& array, const char* name) {
  for (std::size_t i = 0; i < array.values.size(); ++i) {
    const double x = array.values[i];
    if (std::isnan(x))
      throw InvalidArgument(fmt::format("{} contains NaN at flat index {}", name, i));
    if (std::isinf(x))
      throw InvalidArgument(
          fmt::format("{} contains {} at flat index {}", name, x > 0 ? "Inf" : "-Inf", i));
  }
}

HeadArrays head_arrays(Float64Array&& array, const char* name) {
  HeadArrays out;
  if (array.shape.size() == 2) {
    out.heads = 1;
    out.n_tokens = array.shape[0];
    out.dim = array.shape[1];
  } else if (array.shape.size() == 3) {
    out.heads = array.shape[0];
    out.n_tokens = array.shape[1];
    out.dim = array.shape[2];
  } else {
    throw InvalidArgument(
        fmt::format("{} has rank {} (shape {}) but must be rank 2 [n_tokens, d] or rank 3 "
                    "[heads, n_tokens, d]",
                    name, array.shape.size(), shape_text(array.shape)));
  }
  out.data = std::move(array.values);
  return out;
}

py::array_t<double> numpy_array(std::vector<double>&& values,
                                const std::vector<std::size_t>& shape) {
  auto* owned = new std::vector<double>(std::move(values));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<double>*>(p); });
  return py::array_t<double>(shape, owned->data(), free_when_done);
}

std::size_t count_argument(long long value, const char* name, long long minimum) {
  if (value < minimum)
    throw InvalidArgument(fmt::format("{} = {} is invalid (must be >= {})", name, value, minimum));
  return static_cast<std::size_t>(value);
}

AttentionOptions attention_options(long long taylor_terms, bool causal,
                                   const std::optional<long long>& chunk,
                                   const std::optional<double>& softmax_scale,
                                   const std::string& placement) {
  AttentionOptions options;
  if (taylor_terms < 1) {
    throw InvalidArgument(
        fmt::format("taylor_terms P = {} is invalid (must be >= 1)", taylor_terms));
  }
  options.taylor_terms = static_cast<std::size_t>(taylor_terms);
  options.mask = causal ? Mask::causal : Mask::none;
  if (chunk) options.chunk = count_argument(*chunk, "chunk");
  if (softmax_scale) {
    if (!(std::isfinite(*softmax_scale) && *softmax_scale > 0)) {
      throw InvalidArgument(
          fmt::format("softmax_scale = {} is invalid (must be finite and > 0)", *softmax_scale));
    }
    options.softmax_denominator = 1.0 / *softmax_scale;
  }
  options.placement = placement_by_name(placement);
  return options;
}

// ---------------------------------------------------------------- GIL, Ctrl-C

void check_signals() {
  py::gil_scoped_acquire acquire;
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

std::mutex& mp_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::unique_lock<std::mutex> mp_lock(const PrecisionPolicy& policy) {
  if (policy.carrier != Carrier::mp) return {};
  return std::unique_lock<std::mutex>(mp_mutex());
}

namespace {

HeadArrays head_slice(const HeadArrays& a, std::size_t first, std::size_t count) {
  HeadArrays out{count, a.n_tokens, a.dim, {}};
  const std::size_t per_head = a.n_tokens * a.dim;
  out.data.assign(a.data.begin() + static_cast<std::ptrdiff_t>(first * per_head),
                  a.data.begin() + static_cast<std::ptrdiff_t>((first + count) * per_head));
  return out;
}

}  // namespace

AttentionOutput compute_interruptible(Method method, const QkvArrays& inputs,
                                      const PrecisionPolicy& policy,
                                      const AttentionOptions& options) {
  const auto lock = mp_lock(policy);
  const std::size_t heads = inputs.q.heads;
  const std::size_t group =
      std::max<std::size_t>(1, static_cast<std::size_t>(omp_get_max_threads()));
  // exact-kvquant calibrates per-tensor scales over all heads at once, so it
  // cannot run in groups of heads (each group would get its own scale).
  if (heads <= group || method == Method::exact_kvquant) return compute_attention(method, inputs, policy, options);
  // The whole call is refused as compute_attention would refuse it, before any group runs.
  check_memory(attention_memory_bytes(method, inputs, policy, options),
               fmt::format("{} attention at {} (heads={}, n_tokens={}, d_key={}, d_value={}, P={})",
                           method_name(method), policy.name, heads, inputs.q.n_tokens, inputs.q.dim,
                           inputs.v.dim, options.taylor_terms));
  AttentionOutput out;
  out.y = HeadArrays{heads, inputs.q.n_tokens, inputs.v.dim, {}};
  out.y.data.reserve(out.y.size());
  out.z.reserve(heads * inputs.q.n_tokens);
  for (std::size_t first = 0; first < heads; first += group) {
    const std::size_t count = std::min(group, heads - first);
    const QkvArrays slice{head_slice(inputs.q, first, count), head_slice(inputs.k, first, count),
                          head_slice(inputs.v, first, count)};
    const AttentionOutput part = compute_attention(method, slice, policy, options);
    out.y.n_tokens = part.y.n_tokens;  // query_rows may select fewer rows
    out.y.data.insert(out.y.data.end(), part.y.data.begin(), part.y.data.end());
    out.z.insert(out.z.end(), part.z.begin(), part.z.end());
    check_signals();
  }
  return out;
}

}  // namespace satalab::python
