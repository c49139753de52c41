// Formats, rounding, precision policies, names, cost formulas, memory limit.
#include <fmt/format.h>

#include "common.hpp"
#include "satalab/basis/feature_map.hpp"
#include "satalab/cost/cost.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"
#include "satalab/numeric/format.hpp"
#include "satalab/numeric/precision_policy.hpp"
#include "satalab/numeric/rounding.hpp"

namespace satalab::python {
namespace {

using namespace pybind11::literals;

py::object round_to_binding(const py::handle& x, const std::string& format_name) {
  const Format format = format_by_name(format_name);
  Float64Array a = float64_array(x, "x");
  {
    py::gil_scoped_release release;
    for (double& value : a.values) value = round_to(value, format);
  }
  if (a.shape.empty()) return py::float_(a.values[0]);
  return numpy_array(std::move(a.values), a.shape);
}

const char* overflow_name(OverflowRule rule) {
  switch (rule) {
    case OverflowRule::infinity:
      return "infinity";
    case OverflowRule::nan:
      return "nan";
    case OverflowRule::saturate:
      return "saturate";
  }
  return "?";
}

py::dict format_info(const std::string& name) {
  const Format f = format_by_name(name);
  return py::dict("name"_a = f.name, "precision_bits"_a = f.precision_bits, "emin"_a = f.emin,
                  "emax"_a = f.emax, "subnormals"_a = f.subnormals,
                  "overflow"_a = overflow_name(f.overflow), "max_finite"_a = f.max_finite,
                  "unit_roundoff"_a = f.unit_roundoff(), "multiprecision"_a = f.multiprecision);
}

py::dict precision_info(const std::string& name) {
  const PrecisionPolicy p = precision_policy(name);
  const char* carrier = p.carrier == Carrier::f32   ? "float32"
                        : p.carrier == Carrier::f64 ? "float64"
                                                    : "mpfr";
  return py::dict("name"_a = p.name, "input"_a = p.input.name, "compute"_a = p.compute.name,
                  "accumulate"_a = p.accumulate.name, "carrier"_a = carrier,
                  "mp_bits"_a = p.mp_bits);
}

py::dict cost_binding(long long d_key, long long d_value, long long taylor_terms,
                      long long n_tokens) {
  const std::uint64_t dk = count_argument(d_key, "d_key"), dv = count_argument(d_value, "d_value");
  const std::uint64_t P = count_argument(taylor_terms, "taylor_terms"),
                      n = count_argument(n_tokens, "n_tokens");
  const SataCost c = sata_cost(dk, dv, P);
  return py::dict(
      "features"_a = c.features, "state_elements"_a = c.state_elements,
      "flops_per_token"_a = c.flops_per_token,
      "flops_per_token_closed_form"_a = static_cast<double>(sata_flops_closed_form(dk, dv, P)),
      "kv_cache_elements"_a = kv_cache_elements(dk, dv, n),
      "conventional_flops_per_token"_a = conventional_flops_per_token(dk, dv, n));
}

void set_memory_limit(long long bytes) {
  set_memory_limit_bytes(count_argument(bytes, "memory limit (bytes)"));
}

constexpr const char* kRoundToDoc = R"(round_to(x, fmt) -> float64 array (or float for a scalar)

Rounds every value of x (float16, float32 or float64; a scalar or an array of
any shape and strides) correctly into the format `fmt` -- to nearest, ties to
even, in one step from the exact value, never through an intermediate format
-- with the format's overflow rule (inf, NaN for e4m3, saturation for e4m3sat)
and subnormals. The results are values of the format, carried in float64.
fmt: "fp64", "fp32", "bf16", "fp16", "e4m3", "e4m3sat", "e5m2" or "mp<bits>"
(see satalab.formats(), satalab.format_info()).)";

constexpr const char* kCostDoc = R"(cost(d_key, d_value, taylor_terms, n_tokens) -> dict

Cost formulas of Heinsen & Kozachkov (2026), exact in 64-bit integers:
  features                      C(d_key+P-1, P-1), basis functions of degrees < P
  state_elements                (d_value+1) * features, SATA's state per head (eq. 13)
  flops_per_token               SATA's FLOPs per token (eq. 14-15, summed exactly)
  flops_per_token_closed_form   eq. 15 evaluated in floating point
  kv_cache_elements             n_tokens * (d_key + d_value), a KV cache at context n_tokens
  conventional_flops_per_token  n_tokens * (2 d_key + 2 d_value + 3), exact attention at n_tokens
All arguments >= 1. ValueError on overflow of 64 bits.)";

}  // namespace

void bind_numeric(py::module_& m) {
  m.def("round_to", &round_to_binding, kRoundToDoc, "x"_a, "fmt"_a);
  m.def("formats", &format_names,
        "formats() -> list of str\n\nNames of the number formats round_to and the precision "
        "policies use "
        "(\"mp<bits>\" stands for any MPFR precision, e.g. \"mp256\").");
  m.def("format_info", &format_info,
        "format_info(name) -> dict\n\nThe parameters of a format: precision_bits (p, including the "
        "hidden bit), "
        "emin, emax (exponents of the smallest normal and the largest binade), subnormals, "
        "overflow (\"infinity\", "
        "\"nan\" or \"saturate\"), max_finite, unit_roundoff (2^-p), multiprecision.",
        "name"_a);
  m.def("precisions", &precision_names,
        "precisions() -> list of str\n\nNames of the precision policies (input, compute and "
        "accumulate formats; "
        "\"mp<bits>\" for any MPFR precision).");
  m.def("precision_info", &precision_info,
        "precision_info(name) -> dict\n\nA precision policy: its input, compute and accumulate "
        "formats, the carrier "
        "type the arithmetic runs in (\"float32\", \"float64\" or \"mpfr\") and mp_bits.",
        "name"_a);
  m.def("methods", &method_names,
        "methods() -> list of str\n\nThe attention methods: sata, taylor-quadratic, exact.");
  m.def("placements", &placement_names,
        "placements() -> list of str\n\nWhere SATA puts the coefficient w(t)/c^p of each feature: "
        "paper (alpha_p on "
        "keys, counts on queries), symmetric (sqrt on both), query, key, prescaled (q/sqrt(c), "
        "k/sqrt(c)).");
  m.def("cost", &cost_binding, kCostDoc, "d_key"_a, "d_value"_a, "taylor_terms"_a, "n_tokens"_a);
  m.def("memory_limit", &memory_limit_bytes,
        "memory_limit() -> int\n\nBytes of working memory a call may use (default 80% of physical "
        "memory); larger "
        "work is refused with ValueError before anything is allocated.");
  m.def("set_memory_limit", &set_memory_limit,
        "set_memory_limit(bytes)\n\nSets the limit of memory_limit() for this process (the CLI's "
        "--memory-limit).",
        "bytes"_a);
  m.def("physical_memory", &physical_memory_bytes,
        "physical_memory() -> int\n\nBytes of physical memory.");
}

}  // namespace satalab::python
