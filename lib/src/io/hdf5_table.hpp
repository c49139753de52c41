#pragma once
// HDF5 tables, datasets and attributes of the results file (internal to
// io/): a Writer into a temporary file whose every failure names the file, the
// object and the temporary, and a Reader whose every failure names the file
// and what is missing or malformed.
#include <fmt/format.h>
#include <hdf5.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "atomic_file.hpp"
#include "hdf5_attributes.hpp"
#include "hdf5_handles.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab::detail {

// Variable-length UTF-8 strings (h5py reads them as str).
inline Handle string_type() { return utf8_string_type(); }

// h5py's boolean convention: an int8 enum {FALSE = 0, TRUE = 1} reads as numpy bool.
Handle bool_type() {
  Handle type = type_handle(H5Tenum_create(H5T_NATIVE_INT8));
  if (!type.valid()) return type;
  const std::int8_t f = 0, t = 1;
  if (H5Tenum_insert(type.get(), "FALSE", &f) < 0 || H5Tenum_insert(type.get(), "TRUE", &t) < 0) return Handle();
  return type;
}

class Writer {
 public:
  Writer(hid_t file, std::string path, std::string tmp) : file_(file), path_(std::move(path)), tmp_(std::move(tmp)) {
    // No modification times in object headers: equal contents give equal bytes.
    dcpl_ = plist_handle(H5Pcreate(H5P_DATASET_CREATE));
    gcpl_ = plist_handle(H5Pcreate(H5P_GROUP_CREATE));
    if (!dcpl_.valid() || !gcpl_.valid() || H5Pset_obj_track_times(dcpl_.get(), false) < 0 ||
        H5Pset_obj_track_times(gcpl_.get(), false) < 0) {
      fail("property lists", "cannot be created");
    }
  }

  [[noreturn]] void fail(const std::string& what, const char* problem) const {
    const int err = errno;
    std::string hint;
    if (err == ENOSPC || err == EFBIG || err == EDQUOT) hint = fmt::format(" ({})", errno_text(err));
    throw InvalidArgument(
        fmt::format("results file '{}': {} {} in temporary file '{}'{}", path_, what, problem, tmp_, hint));
  }

  void group(const std::string& name) {
    errno = 0;
    Handle g = group_handle(H5Gcreate2(file_, name.c_str(), H5P_DEFAULT, gcpl_.get(), H5P_DEFAULT));
    if (!g.valid()) fail(fmt::format("group '/{}'", name), "cannot be created");
    if (!g.close()) fail(fmt::format("group '/{}'", name), "cannot be closed");
  }

  void dataset(const std::string& name, hid_t file_type, hid_t mem_type, const std::vector<hsize_t>& dims,
               const void* data) {
    const std::string what = fmt::format("dataset '/{}'", name);
    errno = 0;
    Handle space = space_handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    if (!space.valid()) fail(what, "dataspace cannot be created");
    Handle ds = dataset_handle(
        H5Dcreate2(file_, name.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl_.get(), H5P_DEFAULT));
    if (!ds.valid()) fail(what, "cannot be created");
    hsize_t count = 1;
    for (hsize_t d : dims) count *= d;
    if (count > 0 && H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
      fail(what, "cannot be written");
    }
    if (!ds.close()) fail(what, "cannot be closed");
  }

  void doubles(const std::string& name, const std::vector<hsize_t>& dims, const double* data) {
    dataset(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, dims, data);
  }
  void u64s(const std::string& name, const std::vector<hsize_t>& dims, const std::uint64_t* data) {
    dataset(name, H5T_STD_U64LE, H5T_NATIVE_UINT64, dims, data);
  }

  void string_attribute(const char* name, const std::string& value) {
    const std::string what = fmt::format("attribute '{}'", name);
    errno = 0;
    Handle type = string_type();
    Handle space = space_handle(H5Screate(H5S_SCALAR));
    if (!type.valid() || !space.valid()) fail(what, "type cannot be created");
    Handle a = attribute_handle(H5Acreate2(file_, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    if (!a.valid()) fail(what, "cannot be created");
    const char* text = value.c_str();
    if (H5Awrite(a.get(), type.get(), &text) < 0) fail(what, "cannot be written");
    if (!a.close()) fail(what, "cannot be closed");
  }

  void build_attributes(const BuildInfo& build) {
    errno = 0;
    if (const char* name = detail::write_build_attributes(file_, build)) {
      fail(fmt::format("attribute '{}'", name), "cannot be written");
    }
  }

  void int_attribute(const char* name, std::int64_t value) {
    const std::string what = fmt::format("attribute '{}'", name);
    errno = 0;
    Handle space = space_handle(H5Screate(H5S_SCALAR));
    if (!space.valid()) fail(what, "dataspace cannot be created");
    Handle a = attribute_handle(H5Acreate2(file_, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    if (!a.valid()) fail(what, "cannot be created");
    if (H5Awrite(a.get(), H5T_NATIVE_INT64, &value) < 0) fail(what, "cannot be written");
    if (!a.close()) fail(what, "cannot be closed");
  }

 private:
  hid_t file_;
  std::string path_, tmp_;
  Handle dcpl_, gcpl_;
};

class Reader {
 public:
  Reader(hid_t file, std::string path) : file_(file), path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw InvalidArgument(fmt::format("results file '{}': {}", path_, message));
  }

  bool exists(const std::string& name) const {
    // Checks each component of the path, as H5Lexists requires.
    std::size_t pos = 0;
    while (true) {
      const std::size_t slash = name.find('/', pos);
      const std::string prefix = name.substr(0, slash);
      if (H5Lexists(file_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
      if (slash == std::string::npos) return true;
      pos = slash + 1;
    }
  }

  Handle open_dataset(const std::string& name, std::vector<hsize_t>& dims) const {
    if (!exists(name)) fail(fmt::format("dataset '/{}' is missing", name));
    Handle ds = dataset_handle(H5Dopen2(file_, name.c_str(), H5P_DEFAULT));
    if (!ds.valid()) fail(fmt::format("dataset '/{}' cannot be opened", name));
    Handle space = space_handle(H5Dget_space(ds.get()));
    const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
    if (rank < 0) fail(fmt::format("dataset '/{}' has an unreadable dataspace", name));
    dims.assign(static_cast<std::size_t>(rank), 0);
    if (rank > 0 && H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0) {
      fail(fmt::format("dataset '/{}' has an unreadable dataspace", name));
    }
    return ds;
  }

  static std::string dims_text(const std::vector<hsize_t>& dims) {
    std::string out = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) out += (i > 0 ? ", " : "") + std::to_string(dims[i]);
    return out + "]";
  }

  // A dataset of the given shape and type class, read in full.
  template <class T>
  std::vector<T> read(const std::string& name, const std::vector<hsize_t>& expected, H5T_class_t cls,
                      hid_t mem_type) const {
    std::vector<hsize_t> dims;
    Handle ds = open_dataset(name, dims);
    if (dims != expected) {
      fail(fmt::format("dataset '/{}' has shape {} but should have {}", name, dims_text(dims), dims_text(expected)));
    }
    check_type(ds, name, cls);
    return read_all<T>(ds, name, dims, mem_type);
  }

  // A float64 dataset of any shape, read in full.
  std::vector<double> read_any_doubles(const std::string& name) const {
    std::vector<hsize_t> dims;
    Handle ds = open_dataset(name, dims);
    check_type(ds, name, H5T_FLOAT);
    return read_all<double>(ds, name, dims, H5T_NATIVE_DOUBLE);
  }

  void check_type(const Handle& ds, const std::string& name, H5T_class_t cls) const {
    Handle type = type_handle(H5Dget_type(ds.get()));
    if (!type.valid() || H5Tget_class(type.get()) != cls) {
      fail(fmt::format("dataset '/{}' has the wrong element type (expected {})", name,
                       cls == H5T_FLOAT ? "float64" : "uint64"));
    }
  }

  template <class T>
  std::vector<T> read_all(const Handle& ds, const std::string& name, const std::vector<hsize_t>& dims,
                          hid_t mem_type) const {
    std::uint64_t count = 1;
    const std::string what = fmt::format("results file '{}': dataset '/{}'", path_, name);
    for (hsize_t d : dims) count = checked_mul(count, d, what);
    check_memory(checked_mul(count, sizeof(T), what), what);
    std::vector<T> out(static_cast<std::size_t>(count));
    if (count > 0 && H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
      fail(fmt::format("dataset '/{}' cannot be read", name));
    }
    return out;
  }

  std::int64_t int_attribute(const char* name) const {
    std::int64_t v = 0;
    check_attribute(detail::read_int_attribute(file_, name, v), name, "an integer");
    return v;
  }

  std::string string_attribute(const char* name) const {
    std::string out;
    check_attribute(detail::read_string_attribute(file_, name, out), name, "a string");
    return out;
  }

  void check_attribute(AttributeStatus status, const char* name, const char* type) const {
    if (status == AttributeStatus::missing) {
      fail(fmt::format("attribute '{}' is missing (not a satalab results file?)", name));
    }
    if (status == AttributeStatus::wrong_type) fail(fmt::format("attribute '{}' is not {}", name, type));
    if (status != AttributeStatus::ok) fail(fmt::format("attribute '{}' cannot be read", name));
  }

 private:
  hid_t file_;
  std::string path_;
};

}  // namespace satalab::detail
