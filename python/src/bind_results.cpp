// Error statistics as Python dicts, and the per-point arrays of sweep results files.
#include <fmt/format.h>

#include <algorithm>

#include "common.hpp"
#include "satalab/error.hpp"
#include "satalab/io/results_file.hpp"

namespace satalab::python {
namespace {

using namespace pybind11::literals;

void add_quantiles(py::dict& d, const std::string& stem, const Quantiles& q) {
  d[py::str(stem + "_median")] = q.median;
  d[py::str(stem + "_p05")] = q.p05;
  d[py::str(stem + "_p95")] = q.p95;
  d[py::str(stem + "_p99")] = q.p99;
  d[py::str(stem + "_max")] = q.max;
}

// The 254 columns of a results file's histogram datasets: bins, then zeros,
// underflow, overflow, non-finite.
py::array_t<std::uint64_t> histogram_array(const Log10Histogram& h) {
  py::array_t<std::uint64_t> out(kLog10Bins + 4);
  auto a = out.mutable_unchecked<1>();
  for (std::size_t i = 0; i < kLog10Bins; ++i) a(static_cast<py::ssize_t>(i)) = h.counts[i];
  a(kLog10Bins) = h.zeros;
  a(kLog10Bins + 1) = h.underflow;
  a(kLog10Bins + 2) = h.overflow;
  a(kLog10Bins + 3) = h.non_finite;
  return out;
}

py::dict position_dict(const std::vector<PositionSummary>& blocks) {
  const auto column = [&](auto field) {
    using Value = std::remove_cvref_t<decltype(field(blocks.front()))>;
    py::array_t<Value> out(static_cast<py::ssize_t>(blocks.size()));
    auto a = out.template mutable_unchecked<1>();
    for (std::size_t i = 0; i < blocks.size(); ++i)
      a(static_cast<py::ssize_t>(i)) = field(blocks[i]);
    return out;
  };
  py::dict d;
  d["first_token"] =
      column([](const PositionSummary& b) { return static_cast<std::uint64_t>(b.first_token); });
  d["last_token"] =
      column([](const PositionSummary& b) { return static_cast<std::uint64_t>(b.last_token); });
  const std::pair<const char*, double Quantiles::*> stats[] = {{"median", &Quantiles::median},
                                                               {"p05", &Quantiles::p05},
                                                               {"p95", &Quantiles::p95},
                                                               {"p99", &Quantiles::p99},
                                                               {"max", &Quantiles::max}};
  for (const auto& [name, member] : stats) {
    d[py::str(fmt::format("abs_err_{}", name))] =
        column([member](const PositionSummary& b) { return b.abs_error.*member; });
    d[py::str(fmt::format("rel_err_{}", name))] =
        column([member](const PositionSummary& b) { return b.rel_error.*member; });
  }
  return d;
}

py::array_t<double> raw_output(const std::vector<double>& values, std::vector<std::size_t> shape) {
  std::vector<double> copy(values);
  return numpy_array(std::move(copy), shape);
}

py::dict read_point(const std::filesystem::path& file, unsigned long long point_id) {
  const std::string path = file.string();
  ResultsContents contents;
  {
    py::gil_scoped_release release;
    contents = read_results(path);
  }
  const auto it = std::find_if(contents.records.begin(), contents.records.end(),
                               [&](const PointRecord& r) { return r.params.point_id == point_id; });
  if (it == contents.records.end()) {
    throw InvalidArgument(fmt::format("results file '{}': has no point {} ({} points finished)",
                                      path, point_id, contents.records.size()));
  }
  const PointResult& r = it->result;
  const PointParams& p = it->params;
  py::dict d("point_id"_a = p.point_id, "status"_a = r.status, "truth_used"_a = r.truth_used,
             "total"_a = metrics_dict(r.total), "normalisers"_a = normaliser_dict(r.normalisers));
  d["truncation"] = r.truncation ? py::object(metrics_dict(*r.truncation)) : py::none();
  d["rounding"] = r.rounding ? py::object(metrics_dict(*r.rounding)) : py::none();
  d["baseline"] = r.baseline ? py::object(metrics_dict(*r.baseline)) : py::none();
  const std::size_t rows = measured_rows(p);
  d["y"] = r.y.empty() ? py::object(py::none())
                       : py::object(raw_output(r.y, {p.heads, rows, p.d_value}));
  d["y_truth"] = r.y_truth.empty() ? py::object(py::none())
                                   : py::object(raw_output(r.y_truth, {p.heads, rows, p.d_value}));
  d["z"] = r.z.empty() ? py::object(py::none()) : py::object(raw_output(r.z, {p.heads, rows}));
  return d;
}

constexpr const char* kReadPointDoc = R"(read_point(path, point_id) -> dict

The per-point arrays of one finished point of a sweep results file (written
by `satalab sweep`), read by satalab's C++ reader:
  point_id, status, truth_used
  total, truncation, rounding, baseline  dicts as returned by
      satalab.error_metrics (quantiles, abs_hist/rel_hist on the fixed log10
      bins, position summaries), or None for components not measured
  normalisers  statistics of the method's normaliser z
  y, y_truth, z  the raw outputs (float64 [heads, rows, d_value] and
      [heads, rows]) when the sweep ran with --save-outputs, else None
The table of all points is satalab.read_results(path).)";

}  // namespace

py::dict metrics_dict(const ErrorMetrics& m) {
  py::dict d;
  d["elements"] = static_cast<std::uint64_t>(m.elements);
  add_quantiles(d, "abs_err", m.abs_error);
  add_quantiles(d, "rel_err", m.rel_error);
  add_quantiles(d, "normwise_rel_err", m.normwise_rel_error);
  d["rel_undefined_count"] = m.rel_undefined;
  d["nonfinite_count"] = m.non_finite_outputs;
  d["abs_hist"] = histogram_array(m.abs_histogram);
  d["rel_hist"] = histogram_array(m.rel_histogram);
  d["position"] = position_dict(m.by_position);
  return d;
}

py::dict normaliser_dict(const NormaliserStats& s) {
  return py::dict("normaliser_min_abs"_a = s.min_abs, "normaliser_min"_a = s.min,
                  "normaliser_nonpositive_count"_a = s.non_positive,
                  "normaliser_nonfinite_count"_a = s.non_finite);
}

void bind_results(py::module_& m) {
  m.def("read_point", &read_point, kReadPointDoc, "path"_a, "point_id"_a);
  std::vector<double> edges(kLog10Bins + 1);
  for (std::size_t i = 0; i <= kLog10Bins; ++i) edges[i] = Log10Histogram::lower_edge(i);
  m.attr("HIST_BIN_EDGES") = numpy_array(std::move(edges), {kLog10Bins + 1});
  m.attr("RESULTS_SCHEMA_VERSION") = kResultsSchemaVersion;
}

}  // namespace satalab::python
