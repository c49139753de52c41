// The results file's HDF5 layout (docs/results-schema.md): writing a complete
// file atomically from records, and reading it back.
#include <fcntl.h>
#include <fmt/format.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "hdf5_table.hpp"
#include "results_schema.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {
namespace detail {
namespace {

namespace fs = std::filesystem;

// The in-memory compound type of a /points row (native layout of row_layout()).
Handle row_memory_type() {
  const RowLayout& l = row_layout();
  Handle type = type_handle(H5Tcreate(H5T_COMPOUND, l.size));
  Handle str = string_type();
  Handle flag = bool_type();
  if (!type.valid() || !str.valid() || !flag.valid()) return Handle();
  for (const Column& c : l.columns) {
    hid_t member = H5T_NATIVE_UINT64;
    switch (c.kind) {
      case Kind::u64:
        member = H5T_NATIVE_UINT64;
        break;
      case Kind::u32:
        member = H5T_NATIVE_UINT32;
        break;
      case Kind::f64:
        member = H5T_NATIVE_DOUBLE;
        break;
      case Kind::str:
        member = str.get();
        break;
      case Kind::flag:
        member = flag.get();
        break;
    }
    if (H5Tinsert(type.get(), c.name.c_str(), c.offset, member) < 0) return Handle();
  }
  return type;
}

void write_points_table(Writer& w, const std::vector<const PointRecord*>& rows) {
  const RowLayout& l = row_layout();
  Handle mem = row_memory_type();
  if (!mem.valid()) w.fail("dataset '/points'", "type cannot be created");
  Handle file_type = type_handle(H5Tcopy(mem.get()));
  if (!file_type.valid() || H5Tpack(file_type.get()) < 0) w.fail("dataset '/points'", "type cannot be created");

  std::vector<unsigned char> buffer(rows.size() * l.size, 0);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    unsigned char* row = buffer.data() + i * l.size;
    std::size_t col = 0;
    record_fields(*rows[i], [&](std::string_view, std::string_view, const auto& field) {
      using T = std::remove_cvref_t<decltype(field)>;
      constexpr Kind k = kind_of<T>();
      unsigned char* at = row + l.columns[col++].offset;
      if constexpr (k == Kind::str) {
        const char* text = field.c_str();  // HDF5 only reads through it
        std::memcpy(at, &text, sizeof text);
      } else if constexpr (k == Kind::flag) {
        const std::int8_t v = field ? 1 : 0;
        std::memcpy(at, &v, 1);
      } else if constexpr (k == Kind::f64) {
        std::memcpy(at, &field, 8);
      } else if constexpr (k == Kind::u32) {
        std::memcpy(at, &field, 4);
      } else {
        const std::uint64_t v = field;
        std::memcpy(at, &v, 8);
      }
    });
  }
  w.dataset("points", file_type.get(), mem.get(), {rows.size()}, buffer.data());
}

void write_component_arrays(Writer& w, const std::vector<const PointRecord*>& rows, std::size_t c) {
  const std::string prefix = kComponentPrefix[c];
  const std::size_t n = rows.size();
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();

  std::vector<std::uint64_t> abs_hist(n * kHistColumns, 0), rel_hist(n * kHistColumns, 0);
  const auto put_hist = [](std::uint64_t* out, const Log10Histogram& h) {
    std::copy(h.counts.begin(), h.counts.end(), out);
    out[kLog10Bins] = h.zeros;
    out[kLog10Bins + 1] = h.underflow;
    out[kLog10Bins + 2] = h.overflow;
    out[kLog10Bins + 3] = h.non_finite;
  };
  const std::size_t cells = n * kPositionBlocks;
  std::vector<std::uint64_t> first(cells, kNoBlock), last(cells, kNoBlock);
  std::array<std::vector<double>, 10> q;  // abs median..max, rel median..max
  for (auto& v : q) v.assign(cells, nan);

  for (std::size_t i = 0; i < n; ++i) {
    const ErrorMetrics* m = component(*rows[i], c);
    if (m == nullptr) continue;
    put_hist(abs_hist.data() + i * kHistColumns, m->abs_histogram);
    put_hist(rel_hist.data() + i * kHistColumns, m->rel_histogram);
    for (std::size_t b = 0; b < m->by_position.size(); ++b) {
      const PositionSummary& s = m->by_position[b];
      const std::size_t at = i * kPositionBlocks + b;
      first[at] = s.first_token;
      last[at] = s.last_token;
      const std::array<double, 10> values = {s.abs_error.median, s.abs_error.p05, s.abs_error.p95, s.abs_error.p99,
                                             s.abs_error.max,    s.rel_error.median, s.rel_error.p05,
                                             s.rel_error.p95,    s.rel_error.p99,    s.rel_error.max};
      for (std::size_t k = 0; k < 10; ++k) q[k][at] = values[k];
    }
  }
  w.u64s(prefix + "abs_hist", {n, kHistColumns}, abs_hist.data());
  w.u64s(prefix + "rel_hist", {n, kHistColumns}, rel_hist.data());
  const std::vector<hsize_t> dims = {n, kPositionBlocks};
  w.u64s("position/" + prefix + "first_token", dims, first.data());
  w.u64s("position/" + prefix + "last_token", dims, last.data());
  static constexpr std::array<const char*, 5> kStats = {"median", "p05", "p95", "p99", "max"};
  for (std::size_t k = 0; k < 10; ++k) {
    const std::string name =
        fmt::format("position/{}{}_err_{}", prefix, k < 5 ? "abs" : "rel", kStats[k % 5]);
    w.doubles(name, dims, q[k].data());
  }
}

// The compound type of a /builds row: five variable-length strings.
Handle builds_type() {
  Handle type = type_handle(H5Tcreate(H5T_COMPOUND, kBuildColumns.size() * sizeof(char*)));
  Handle str = string_type();
  if (!type.valid() || !str.valid()) return Handle();
  for (std::size_t i = 0; i < kBuildColumns.size(); ++i) {
    if (H5Tinsert(type.get(), kBuildColumns[i].first, i * sizeof(char*), str.get()) < 0) return Handle();
  }
  return type;
}

// /builds (one row per build that computed points) and /point_build (the
// /builds row of each /points row).
void write_builds(Writer& w, const std::vector<BuildInfo>& builds, const std::vector<const PointRecord*>& rows) {
  Handle type = builds_type();
  if (!type.valid()) w.fail("dataset '/builds'", "type cannot be created");
  std::vector<const char*> cells;
  for (const BuildInfo& b : builds) {
    for (const auto& [name, field] : kBuildColumns) cells.push_back((b.*field).c_str());
  }
  w.dataset("builds", type.get(), type.get(), {builds.size()}, cells.data());
  std::vector<std::uint32_t> index(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) index[i] = rows[i]->build;
  w.dataset("point_build", H5T_STD_U32LE, H5T_NATIVE_UINT32, {rows.size()}, index.data());
}

void write_contents(Writer& w, const SweepMetadata& m, const std::vector<const PointRecord*>& rows) {
  w.int_attribute("schema_version", kResultsSchemaVersion);
  w.string_attribute("satalab_version", m.satalab_version);
  w.string_attribute("git_commit", m.git_commit);
  w.string_attribute("command_line", m.command_line);
  w.string_attribute("config_text", m.config_text);
  w.string_attribute("start_time", m.start_time);
  w.int_attribute("total_points", static_cast<std::int64_t>(m.total_points));
  w.string_attribute("sweep_id", sweep_id(m.config_text));
  w.int_attribute("shard_index", static_cast<std::int64_t>(m.shard_index));
  w.int_attribute("shard_count", static_cast<std::int64_t>(m.shard_count));
  w.int_attribute("shard_points", static_cast<std::int64_t>(m.shard_points));
  w.build_attributes(build_info());

  write_points_table(w, rows);
  write_builds(w, m.builds, rows);
  std::vector<double> edges(kLog10Bins + 1);
  for (std::size_t i = 0; i <= kLog10Bins; ++i) edges[i] = Log10Histogram::lower_edge(i);
  w.doubles("hist_bin_edges", {edges.size()}, edges.data());
  w.group("position");
  for (std::size_t c = 0; c < kComponentPrefix.size(); ++c) write_component_arrays(w, rows, c);

  bool any_outputs = false;
  for (const PointRecord* r : rows) {
    const PointResult& s = r->result;
    if (s.y.empty() && s.y_truth.empty() && s.z.empty()) continue;
    if (!any_outputs) w.group("outputs");
    any_outputs = true;
    const std::string g = fmt::format("outputs/{}", r->params.point_id);
    w.group(g);
    const PointParams& p = r->params;
    const std::vector<hsize_t> out_dims = {p.heads, measured_rows(p), p.d_value};
    if (!s.y.empty()) w.doubles(g + "/y", out_dims, s.y.data());
    if (!s.y_truth.empty()) w.doubles(g + "/y_truth", out_dims, s.y_truth.data());
    if (!s.z.empty()) w.doubles(g + "/z", {p.heads, measured_rows(p)}, s.z.data());
  }
}

// Writes `path` atomically: a temporary file in the same directory, fsync'd,
// then renamed over `path`. On failure `path` is untouched and the temporary
// file removed.
}  // namespace

void write_results_atomically(const std::string& path, const SweepMetadata& m,
                              const std::vector<const PointRecord*>& rows) {
  AtomicWrite how;
  how.label = "results file";
  how.replace = true;
  how.track_times = false;
  how.strict_sync = true;
  write_hdf5_atomically(path, how, [&](hid_t file) {
    Writer w(file, path, fmt::format("{}.tmp.{}", path, static_cast<long>(::getpid())));
    write_contents(w, m, rows);
  });
}

namespace {

std::vector<PointRecord> read_points_table(const Reader& r) {
  std::vector<hsize_t> dims;
  Handle ds = r.open_dataset("points", dims);
  if (dims.size() != 1) r.fail(fmt::format("dataset '/points' has shape {} but must be 1-D", Reader::dims_text(dims)));
  Handle ftype = type_handle(H5Dget_type(ds.get()));
  if (!ftype.valid() || H5Tget_class(ftype.get()) != H5T_COMPOUND) r.fail("dataset '/points' is not a compound table");
  const RowLayout& l = row_layout();
  for (const Column& c : l.columns) {
    if (H5Tget_member_index(ftype.get(), c.name.c_str()) < 0) {
      r.fail(fmt::format("dataset '/points' has no column '{}'", c.name));
    }
  }
  Handle mem = row_memory_type();
  if (!mem.valid()) r.fail("dataset '/points': cannot create the row type");
  const std::size_t rows = static_cast<std::size_t>(dims[0]);
  const std::string what = fmt::format("results file: dataset '/points' ({} rows)", rows);
  check_memory(checked_mul(rows, l.size, what), what);
  std::vector<unsigned char> buffer(rows * l.size, 0);
  if (rows > 0 && H5Dread(ds.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) < 0) {
    r.fail("dataset '/points' cannot be read");
  }
  std::vector<PointRecord> out(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    const unsigned char* row = buffer.data() + i * l.size;
    std::size_t col = 0;
    record_fields(out[i], [&](std::string_view, std::string_view, auto& field) {
      using T = std::remove_cvref_t<decltype(field)>;
      constexpr Kind k = kind_of<T>();
      const unsigned char* at = row + l.columns[col++].offset;
      if constexpr (k == Kind::str) {
        const char* text = nullptr;
        std::memcpy(&text, at, sizeof text);
        field = text != nullptr ? text : "";
      } else if constexpr (k == Kind::flag) {
        std::int8_t v = 0;
        std::memcpy(&v, at, 1);
        field = v != 0;
      } else if constexpr (k == Kind::f64) {
        std::memcpy(&field, at, 8);
      } else if constexpr (k == Kind::u32) {
        std::memcpy(&field, at, 4);
      } else {
        std::uint64_t v = 0;
        std::memcpy(&v, at, 8);
        field = static_cast<T>(v);
      }
    });
  }
  if (rows > 0) {
    Handle space = space_handle(H5Dget_space(ds.get()));
    (void)H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, buffer.data());
  }
  return out;
}

// /builds and /point_build into metadata.builds and each record's build;
// files without them (written before builds were recorded): one unknown build.
void read_builds(const Reader& r, SweepMetadata& metadata, std::vector<PointRecord>& records) {
  if (!r.exists("builds")) {
    metadata.builds = {unknown_build()};
    return;
  }
  std::vector<hsize_t> dims;
  Handle ds = r.open_dataset("builds", dims);
  if (dims.size() != 1) r.fail(fmt::format("dataset '/builds' has shape {} but must be 1-D", Reader::dims_text(dims)));
  Handle type = builds_type();
  if (!type.valid()) r.fail("dataset '/builds': cannot create the row type");
  const std::size_t n = static_cast<std::size_t>(dims[0]);
  std::vector<char*> cells(n * kBuildColumns.size(), nullptr);
  if (n > 0 && H5Dread(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, cells.data()) < 0) {
    r.fail("dataset '/builds' cannot be read");
  }
  metadata.builds.assign(n, BuildInfo{});
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < kBuildColumns.size(); ++c) {
      const char* text = cells[i * kBuildColumns.size() + c];
      metadata.builds[i].*kBuildColumns[c].second = text != nullptr ? text : "";
    }
  }
  if (n > 0) {
    Handle space = space_handle(H5Dget_space(ds.get()));
    (void)H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, cells.data());
  }
  const auto index =
      r.read<std::uint32_t>("point_build", {records.size()}, H5T_INTEGER, H5T_NATIVE_UINT32);
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (index[i] >= n) {
      r.fail(fmt::format("dataset '/point_build' gives point {} build {} but '/builds' has {} rows",
                         records[i].params.point_id, index[i], n));
    }
    records[i].build = index[i];
  }
}

void read_component_arrays(const Reader& r, std::vector<PointRecord>& records, std::size_t c) {
  const std::string prefix = kComponentPrefix[c];
  const std::size_t n = records.size();
  const auto abs_hist = r.read<std::uint64_t>(prefix + "abs_hist", {n, kHistColumns}, H5T_INTEGER, H5T_NATIVE_UINT64);
  const auto rel_hist = r.read<std::uint64_t>(prefix + "rel_hist", {n, kHistColumns}, H5T_INTEGER, H5T_NATIVE_UINT64);
  const std::vector<hsize_t> dims = {n, kPositionBlocks};
  const auto first =
      r.read<std::uint64_t>("position/" + prefix + "first_token", dims, H5T_INTEGER, H5T_NATIVE_UINT64);
  const auto last = r.read<std::uint64_t>("position/" + prefix + "last_token", dims, H5T_INTEGER, H5T_NATIVE_UINT64);
  static constexpr std::array<const char*, 5> kStats = {"median", "p05", "p95", "p99", "max"};
  std::array<std::vector<double>, 10> q;
  for (std::size_t k = 0; k < 10; ++k) {
    q[k] = r.read<double>(fmt::format("position/{}{}_err_{}", prefix, k < 5 ? "abs" : "rel", kStats[k % 5]), dims,
                          H5T_FLOAT, H5T_NATIVE_DOUBLE);
  }
  const auto get_hist = [](const std::uint64_t* in, Log10Histogram& h) {
    std::copy(in, in + kLog10Bins, h.counts.begin());
    h.zeros = in[kLog10Bins];
    h.underflow = in[kLog10Bins + 1];
    h.overflow = in[kLog10Bins + 2];
    h.non_finite = in[kLog10Bins + 3];
  };
  for (std::size_t i = 0; i < n; ++i) {
    ErrorMetrics* m = component(records[i], c);
    if (m == nullptr) continue;
    get_hist(abs_hist.data() + i * kHistColumns, m->abs_histogram);
    get_hist(rel_hist.data() + i * kHistColumns, m->rel_histogram);
    m->by_position.clear();
    for (std::size_t b = 0; b < kPositionBlocks; ++b) {
      const std::size_t at = i * kPositionBlocks + b;
      if (first[at] == kNoBlock) break;
      PositionSummary s;
      s.first_token = static_cast<std::size_t>(first[at]);
      s.last_token = static_cast<std::size_t>(last[at]);
      s.abs_error = {q[0][at], q[1][at], q[2][at], q[3][at], q[4][at]};
      s.rel_error = {q[5][at], q[6][at], q[7][at], q[8][at], q[9][at]};
      m->by_position.push_back(s);
    }
  }
}

}  // namespace
}  // namespace detail

using namespace detail;

ResultsContents read_results(const std::string& path) {
  QuietHdf5Errors quiet;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw InvalidArgument(fmt::format("results file '{}': does not exist", path));
  if (fs::is_directory(status)) throw InvalidArgument(fmt::format("results file '{}': is a directory", path));
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InvalidArgument(fmt::format("results file '{}': is not an HDF5 file", path));
  Handle file = file_handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) throw InvalidArgument(fmt::format("results file '{}': cannot be opened as HDF5", path));
  const Reader r(file.get(), path);

  ResultsContents out;
  const std::int64_t version = r.int_attribute("schema_version");
  if (version != kResultsSchemaVersion) {
    r.fail(fmt::format("schema_version {} is not supported (this build reads schema_version {})", version,
                       kResultsSchemaVersion));
  }
  out.schema_version = static_cast<int>(version);
  out.metadata.satalab_version = r.string_attribute("satalab_version");
  out.metadata.git_commit = r.string_attribute("git_commit");
  out.metadata.command_line = r.string_attribute("command_line");
  out.metadata.config_text = r.string_attribute("config_text");
  out.metadata.start_time = r.string_attribute("start_time");
  const std::int64_t total = r.int_attribute("total_points");
  if (total < 0) r.fail(fmt::format("attribute 'total_points' is negative ({})", total));
  out.metadata.total_points = static_cast<std::uint64_t>(total);
  const auto non_negative = [&](const char* name) {
    const std::int64_t v = r.int_attribute(name);
    if (v < 0) r.fail(fmt::format("attribute '{}' is negative ({})", name, v));
    return static_cast<std::uint64_t>(v);
  };
  out.metadata.shard_index = non_negative("shard_index");
  out.metadata.shard_count = non_negative("shard_count");
  out.metadata.shard_points = non_negative("shard_points");
  if (out.metadata.shard_index < 1 || out.metadata.shard_index > out.metadata.shard_count) {
    r.fail(fmt::format("attributes shard_index {} and shard_count {} are inconsistent (need 1 <= index <= count)",
                       out.metadata.shard_index, out.metadata.shard_count));
  }
  const std::string id = r.string_attribute("sweep_id");
  if (id != sweep_id(out.metadata.config_text)) {
    r.fail(fmt::format("attribute 'sweep_id' is '{}' but its config_text hashes to '{}' (the file was modified)", id,
                       sweep_id(out.metadata.config_text)));
  }

  out.records = read_points_table(r);
  read_builds(r, out.metadata, out.records);
  out.writer = detail::read_build_attributes(file.get());
  (void)r.read<double>("hist_bin_edges", {kLog10Bins + 1}, H5T_FLOAT, H5T_NATIVE_DOUBLE);
  for (std::size_t c = 0; c < kComponentPrefix.size(); ++c) read_component_arrays(r, out.records, c);

  if (r.exists("outputs")) {
    for (PointRecord& rec : out.records) {
      const std::string g = fmt::format("outputs/{}", rec.params.point_id);
      if (!r.exists(g)) continue;
      if (r.exists(g + "/y")) rec.result.y = r.read_any_doubles(g + "/y");
      if (r.exists(g + "/y_truth")) rec.result.y_truth = r.read_any_doubles(g + "/y_truth");
      if (r.exists(g + "/z")) rec.result.z = r.read_any_doubles(g + "/z");
    }
  }
  return out;
}

void write_results(const std::string& path, const SweepMetadata& given, std::vector<PointRecord> records) {
  SweepMetadata metadata = given;
  if (metadata.builds.empty()) metadata.builds = {build_info()};
  validate_metadata(path, metadata);
  for (const PointRecord& r : records) {
    if (r.build >= metadata.builds.size()) {
      throw InvalidArgument(fmt::format("results file '{}': point {} names build {} of {}", path, r.params.point_id,
                                        r.build, metadata.builds.size()));
    }
  }
  std::sort(records.begin(), records.end(),
            [](const PointRecord& x, const PointRecord& y) { return x.params.point_id < y.params.point_id; });
  std::vector<const PointRecord*> rows;
  rows.reserve(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    validate_record(path, records[i]);
    if (i > 0 && records[i].params.point_id == records[i - 1].params.point_id) {
      throw InvalidArgument(
          fmt::format("results file '{}': point {} appears twice", path, records[i].params.point_id));
    }
    rows.push_back(&records[i]);
  }
  write_results_atomically(path, metadata, rows);
}

}  // namespace satalab
