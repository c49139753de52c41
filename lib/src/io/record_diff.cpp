// The first difference between two results of one point (result_difference,
// io/results_file.hpp): what `satalab merge` reports for conflicting points.
#include <fmt/format.h>

#include <array>
#include <cstring>

#include "results_schema.hpp"

namespace satalab {

using namespace detail;

namespace {

struct FlatField {
  std::string name, bits, shown;
};

// The /points columns of a record as named bit patterns (timings left out).
std::vector<FlatField> flat_fields(const PointRecord& r) {
  std::vector<FlatField> out;
  record_fields(r, [&](std::string_view prefix, std::string_view name, const auto& field) {
    using T = std::remove_cvref_t<decltype(field)>;
    constexpr Kind k = kind_of<T>();
    if (name == "wall_s" || name == "truth_wall_s") return;
    Encoder e;
    std::string shown;
    if constexpr (k == Kind::str) {
      e.str(field);
      shown = "'" + field + "'";
    } else if constexpr (k == Kind::flag) {
      e.u8(field ? 1 : 0);
      shown = field ? "true" : "false";
    } else if constexpr (k == Kind::f64) {
      e.f64(field);
      shown = fmt::format("{}", field);
    } else {
      e.u64(field);
      shown = fmt::format("{}", field);
    }
    out.push_back({std::string(prefix) + std::string(name), std::move(e.bytes()), std::move(shown)});
  });
  return out;
}

std::string component_bits(const ErrorMetrics& m, bool histograms) {
  Encoder e;
  if (histograms) {
    encode_histogram(e, m.abs_histogram);
    encode_histogram(e, m.rel_histogram);
  } else {
    e.u64(m.by_position.size());
    for (const PositionSummary& b : m.by_position) {
      e.u64(b.first_token);
      e.u64(b.last_token);
      encode_quantiles(e, b.abs_error);
      encode_quantiles(e, b.rel_error);
    }
  }
  return std::move(e.bytes());
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

}  // namespace

std::string result_difference(const PointRecord& a, const PointRecord& b) {
  const std::vector<FlatField> fa = flat_fields(a), fb = flat_fields(b);
  for (std::size_t i = 0; i < fa.size(); ++i) {
    if (fa[i].bits != fb[i].bits) return fmt::format("column '{}' ({} vs {})", fa[i].name, fa[i].shown, fb[i].shown);
  }
  for (std::size_t c = 0; c < kComponentPrefix.size(); ++c) {
    const ErrorMetrics* ma = component(a, c);
    const ErrorMetrics* mb = component(b, c);
    if (ma == nullptr || mb == nullptr) continue;  // has_* columns equal: both absent
    if (component_bits(*ma, true) != component_bits(*mb, true)) {
      return fmt::format("datasets '{0}abs_hist'/'{0}rel_hist'", kComponentPrefix[c]);
    }
    if (component_bits(*ma, false) != component_bits(*mb, false)) {
      return fmt::format("datasets 'position/{}*'", kComponentPrefix[c]);
    }
  }
  const std::array<std::pair<const char*, const std::vector<double>*>, 3> oa = {
      std::pair{"y", &a.result.y}, {"y_truth", &a.result.y_truth}, {"z", &a.result.z}};
  const std::array<const std::vector<double>*, 3> ob = {&b.result.y, &b.result.y_truth, &b.result.z};
  for (std::size_t i = 0; i < oa.size(); ++i) {
    if (!oa[i].second->empty() && !ob[i]->empty() && !same_bits(*oa[i].second, *ob[i])) {
      return fmt::format("output '{}'", oa[i].first);
    }
  }
  return {};
}

}  // namespace satalab
