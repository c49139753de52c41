// Benchmark results file (bench_file.hpp; layout in docs/bench-schema.md,
// keep the two in step).
#include "satalab/io/bench_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <hdf5.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "atomic_file.hpp"
#include "hdf5_attributes.hpp"
#include "hdf5_handles.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {
namespace {

using detail::attribute_handle;
using detail::dataset_handle;
using detail::file_handle;
using detail::Handle;
using detail::plist_handle;
using detail::QuietHdf5Errors;
using detail::space_handle;
using detail::type_handle;

// The columns of /bench in table order; `f(name, field)` gets a reference to
// each field (Row is BenchRow or const BenchRow).
template <class Row, class F>
void row_fields(Row& r, F&& f) {
  f("kind", r.kind);
  f("method", r.method);
  f("precision", r.precision);
  f("d_key", r.d_key);
  f("d_value", r.d_value);
  f("taylor_terms", r.taylor_terms);
  f("heads", r.heads);
  f("chunk", r.chunk);
  f("threads", r.threads);
  f("context_tokens", r.context_tokens);
  f("tokens_processed", r.tokens_processed);
  f("status", r.status);
  f("repeats", r.repeats);
  f("steps", r.steps);
  f("seconds_median", r.seconds_median);
  f("seconds_min", r.seconds_min);
  f("seconds_per_token_head", r.seconds_per_token_head);
  f("tokens_per_second", r.tokens_per_second);
  f("bytes_per_unit", r.bytes_per_unit);
  f("bytes_per_second", r.bytes_per_second);
  f("flops_per_unit", r.flops_per_unit);
  f("flops_per_second", r.flops_per_second);
  f("cores_used", r.cores_used);
  f("memory_bytes", r.memory_bytes);
  f("memory_bytes_format", r.memory_bytes_format);
  f("rss_bytes", r.rss_bytes);
}

struct Column {
  std::string name;
  hid_t native;  // H5T_NATIVE_* (0 for strings)
  std::size_t offset, size;
};

// Native layout of one row in the transfer buffer: every field at its natural alignment.
std::vector<Column> columns(std::size_t& row_size) {
  std::vector<Column> out;
  std::size_t offset = 0;
  const BenchRow dummy;
  row_fields(dummy, [&](const char* name, const auto& field) {
    using T = std::remove_cvref_t<decltype(field)>;
    std::size_t size = 8;
    hid_t native = 0;
    if constexpr (std::is_same_v<T, std::string>) {
      size = sizeof(char*);
    } else if constexpr (std::is_same_v<T, double>) {
      native = H5T_NATIVE_DOUBLE;
    } else if constexpr (std::is_same_v<T, std::uint32_t>) {
      size = 4;
      native = H5T_NATIVE_UINT32;
    } else {
      static_assert(std::is_same_v<T, std::uint64_t>, "unsupported column type");
      native = H5T_NATIVE_UINT64;
    }
    offset = (offset + size - 1) / size * size;
    out.push_back({name, native, offset, size});
    offset += size;
  });
  row_size = (offset + 7) / 8 * 8;
  return out;
}

Handle row_type(const std::vector<Column>& cols, std::size_t row_size, const Handle& str) {
  Handle type = type_handle(H5Tcreate(H5T_COMPOUND, row_size));
  if (!type.valid()) return type;
  for (const Column& c : cols) {
    if (H5Tinsert(type.get(), c.name.c_str(), c.offset, c.native != 0 ? c.native : str.get()) < 0) return Handle();
  }
  return type;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw InvalidArgument(fmt::format("bench file '{}': {}", path, what));
}

void string_attribute(hid_t file, const std::string& path, const char* name, const std::string& value) {
  if (!detail::write_string_attribute(file, name, value)) fail(path, fmt::format("attribute '{}' cannot be written", name));
}

void int_attribute(hid_t file, const std::string& path, const char* name, std::int64_t value) {
  if (!detail::write_int_attribute(file, name, value)) fail(path, fmt::format("attribute '{}' cannot be written", name));
}

void write_contents(hid_t file, const std::string& path, const BenchMetadata& m, const std::vector<BenchRow>& rows) {
  int_attribute(file, path, "bench_schema_version", kBenchSchemaVersion);
  string_attribute(file, path, "satalab_version", m.satalab_version);
  string_attribute(file, path, "git_commit", m.git_commit);
  string_attribute(file, path, "command_line", m.command_line);
  string_attribute(file, path, "start_time", m.start_time);
  string_attribute(file, path, "cpu_model", m.cpu_model);
  int_attribute(file, path, "threads", static_cast<std::int64_t>(m.threads));
  int_attribute(file, path, "llc_bytes", static_cast<std::int64_t>(m.llc_bytes));
  int_attribute(file, path, "memory_limit_bytes", static_cast<std::int64_t>(m.memory_limit_bytes));
  int_attribute(file, path, "physical_memory_bytes", static_cast<std::int64_t>(m.physical_memory_bytes));
  if (const char* name = detail::write_build_attributes(file, build_info())) {
    fail(path, fmt::format("attribute '{}' cannot be written", name));
  }

  std::size_t row_size = 0;
  const std::vector<Column> cols = columns(row_size);
  Handle str = detail::utf8_string_type();
  Handle mem = row_type(cols, row_size, str);
  Handle packed = type_handle(mem.valid() ? H5Tcopy(mem.get()) : H5I_INVALID_HID);
  if (!packed.valid() || H5Tpack(packed.get()) < 0) fail(path, "dataset '/bench': type cannot be created");
  std::vector<unsigned char> buffer(rows.size() * row_size, 0);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::size_t c = 0;
    row_fields(rows[i], [&](const char*, const auto& field) {
      using T = std::remove_cvref_t<decltype(field)>;
      unsigned char* at = buffer.data() + i * row_size + cols[c++].offset;
      if constexpr (std::is_same_v<T, std::string>) {
        const char* text = field.c_str();  // HDF5 only reads through it
        std::memcpy(at, &text, sizeof text);
      } else {
        std::memcpy(at, &field, sizeof field);
      }
    });
  }
  Handle dcpl = plist_handle(H5Pcreate(H5P_DATASET_CREATE));
  const hsize_t dims[1] = {rows.size()};
  Handle space = space_handle(H5Screate_simple(1, dims, nullptr));
  if (!dcpl.valid() || H5Pset_obj_track_times(dcpl.get(), false) < 0 || !space.valid()) {
    fail(path, "dataset '/bench': cannot be created");
  }
  Handle ds = dataset_handle(H5Dcreate2(file, "bench", packed.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
  if (!ds.valid()) fail(path, "dataset '/bench': cannot be created");
  if (!rows.empty() && H5Dwrite(ds.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) < 0) {
    fail(path, "dataset '/bench': cannot be written");
  }
}

}  // namespace

void write_bench_file(const std::string& path, const BenchMetadata& metadata, const std::vector<BenchRow>& rows,
                      bool overwrite) {
  QuietHdf5Errors quiet;
  if (path.empty()) throw InvalidArgument("bench file '': the path is empty");
  std::error_code ec;
  if (!overwrite && std::filesystem::exists(path, ec)) fail(path, "already exists (refusing to overwrite it)");
  for (const BenchRow& r : rows) {
    row_fields(r, [&](const char* name, const auto& field) {
      if constexpr (std::is_same_v<std::remove_cvref_t<decltype(field)>, std::string>) {
        if (field.find('\0') != std::string::npos) fail(path, fmt::format("column '{}' contains a NUL byte", name));
      }
    });
  }
  detail::AtomicWrite how;
  how.label = "bench file";
  how.replace = overwrite;
  how.track_times = false;
  detail::write_hdf5_atomically(path, how, [&](hid_t file) { write_contents(file, path, metadata, rows); });
}

namespace {

void check_read(detail::AttributeStatus status, const std::string& path, const char* name) {
  if (status == detail::AttributeStatus::missing) {
    fail(path, fmt::format("attribute '{}' is missing (not a satalab bench file?)", name));
  }
  if (status != detail::AttributeStatus::ok) fail(path, fmt::format("attribute '{}' cannot be read", name));
}

std::string read_string_attribute(hid_t file, const std::string& path, const char* name) {
  std::string out;
  check_read(detail::read_string_attribute(file, name, out), path, name);
  return out;
}

std::int64_t read_int_attribute(hid_t file, const std::string& path, const char* name) {
  std::int64_t v = 0;
  check_read(detail::read_int_attribute(file, name, v), path, name);
  return v;
}

}  // namespace

BenchContents read_bench_file(const std::string& path) {
  QuietHdf5Errors quiet;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail(path, "does not exist");
  Handle file = file_handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) fail(path, "cannot be opened as HDF5");
  BenchContents out;
  out.schema_version = static_cast<int>(read_int_attribute(file.get(), path, "bench_schema_version"));
  if (out.schema_version != kBenchSchemaVersion) {
    fail(path, fmt::format("bench_schema_version is {}, this build reads {}", out.schema_version, kBenchSchemaVersion));
  }
  BenchMetadata& m = out.metadata;
  m.satalab_version = read_string_attribute(file.get(), path, "satalab_version");
  m.git_commit = read_string_attribute(file.get(), path, "git_commit");
  m.command_line = read_string_attribute(file.get(), path, "command_line");
  m.start_time = read_string_attribute(file.get(), path, "start_time");
  m.cpu_model = read_string_attribute(file.get(), path, "cpu_model");
  m.threads = static_cast<std::uint64_t>(read_int_attribute(file.get(), path, "threads"));
  m.llc_bytes = static_cast<std::uint64_t>(read_int_attribute(file.get(), path, "llc_bytes"));
  m.memory_limit_bytes = static_cast<std::uint64_t>(read_int_attribute(file.get(), path, "memory_limit_bytes"));
  m.physical_memory_bytes = static_cast<std::uint64_t>(read_int_attribute(file.get(), path, "physical_memory_bytes"));
  out.build = detail::read_build_attributes(file.get());

  if (H5Lexists(file.get(), "bench", H5P_DEFAULT) <= 0) fail(path, "dataset '/bench' is missing");
  Handle ds = dataset_handle(H5Dopen2(file.get(), "bench", H5P_DEFAULT));
  Handle space = space_handle(ds.valid() ? H5Dget_space(ds.get()) : H5I_INVALID_HID);
  hsize_t dims[1] = {0};
  if (!space.valid() || H5Sget_simple_extent_ndims(space.get()) != 1 ||
      H5Sget_simple_extent_dims(space.get(), dims, nullptr) < 0) {
    fail(path, "dataset '/bench' is not a 1-D table");
  }
  std::size_t row_size = 0;
  const std::vector<Column> cols = columns(row_size);
  Handle file_type = type_handle(H5Dget_type(ds.get()));
  for (const Column& c : cols) {
    if (!file_type.valid() || H5Tget_member_index(file_type.get(), c.name.c_str()) < 0) {
      fail(path, fmt::format("dataset '/bench' has no column '{}'", c.name));
    }
  }
  Handle str = detail::utf8_string_type();
  Handle mem = row_type(cols, row_size, str);
  const auto rows = static_cast<std::size_t>(dims[0]);
  check_memory(checked_mul(rows, row_size, "bench table"), "bench table");
  std::vector<unsigned char> buffer(rows * row_size, 0);
  if (rows > 0 && H5Dread(ds.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) < 0) {
    fail(path, "dataset '/bench' cannot be read");
  }
  out.rows.resize(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    std::size_t c = 0;
    row_fields(out.rows[i], [&](const char*, auto& field) {
      using T = std::remove_cvref_t<decltype(field)>;
      const unsigned char* at = buffer.data() + i * row_size + cols[c++].offset;
      if constexpr (std::is_same_v<T, std::string>) {
        const char* text = nullptr;
        std::memcpy(&text, at, sizeof text);
        field = text != nullptr ? text : "";
      } else {
        std::memcpy(&field, at, sizeof field);
      }
    });
  }
  if (rows > 0) (void)H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, buffer.data());
  return out;
}

}  // namespace satalab
