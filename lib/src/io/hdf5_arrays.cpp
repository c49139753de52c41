#include "atomic_file.hpp"
#include "hdf5_attributes.hpp"
#include "hdf5_handles.hpp"
#include "satalab/io/hdf5_arrays.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <hdf5.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <utility>

#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {
namespace {

using detail::Handle;
using detail::QuietHdf5Errors;
using detail::file_handle;
using detail::dataset_handle;
using detail::space_handle;
using detail::type_handle;
using detail::attribute_handle;

std::string shape_string(const std::vector<hsize_t>& dims) {
  std::string out = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(dims[i]);
  }
  return out + "]";
}

std::string describe_type(hid_t type) {
  const std::size_t bytes = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_FLOAT:
      return fmt::format("float{}", 8 * bytes);
    case H5T_INTEGER:
      return fmt::format("{}int{}", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", 8 * bytes);
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_ARRAY:
      return "array";
    case H5T_VLEN:
      return "variable-length";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_REFERENCE:
      return "reference";
    case H5T_TIME:
      return "time";
    default:
      return "unknown";
  }
}

// ---------------------------------------------------------------------------
// Reading.

constexpr std::string_view kQkvShapeHint = "need q, k, v of shape [heads, n_tokens, d]";

struct OpenDataset {
  Handle dataset;
  std::vector<hsize_t> dims;  // exactly 3 entries, all >= 1
  bool is_float32 = false;
};

OpenDataset open_qkv_dataset(hid_t file, const std::string& path, const char* name) {
  const std::string where = fmt::format("input file '{}': dataset '{}'", path, name);
  const htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
  if (exists <= 0) throw InvalidArgument(fmt::format("{} is missing ({})", where, kQkvShapeHint));
  OpenDataset out;
  {
    Handle object(H5Oopen(file, name, H5P_DEFAULT), H5Oclose);
    if (!object.valid()) throw InvalidArgument(fmt::format("{} cannot be opened", where));
    if (H5Iget_type(object.get()) != H5I_DATASET) {
      throw InvalidArgument(fmt::format("{} is not a dataset ({})", where, kQkvShapeHint));
    }
  }
  out.dataset = dataset_handle(H5Dopen2(file, name, H5P_DEFAULT));
  if (!out.dataset.valid()) throw InvalidArgument(fmt::format("{} cannot be opened", where));

  Handle space = space_handle(H5Dget_space(out.dataset.get()));
  if (!space.valid()) throw InvalidArgument(fmt::format("{} has an unreadable dataspace", where));
  const H5S_class_t space_class = H5Sget_simple_extent_type(space.get());
  const int rank = space_class == H5S_SIMPLE ? H5Sget_simple_extent_ndims(space.get()) : 0;
  if (rank < 0) throw InvalidArgument(fmt::format("{} has an unreadable dataspace", where));
  out.dims.assign(static_cast<std::size_t>(rank), 0);
  if (rank > 0 && H5Sget_simple_extent_dims(space.get(), out.dims.data(), nullptr) < 0) {
    throw InvalidArgument(fmt::format("{} has an unreadable dataspace", where));
  }
  if (rank != 3) {
    throw InvalidArgument(fmt::format("{} has rank {} (shape {}) but must be rank 3 ({})", where, rank,
                                      shape_string(out.dims), kQkvShapeHint));
  }
  for (hsize_t d : out.dims) {
    if (d == 0) {
      throw InvalidArgument(
          fmt::format("{} has shape {}; every dimension must be at least 1", where, shape_string(out.dims)));
    }
  }

  Handle type = type_handle(H5Dget_type(out.dataset.get()));
  if (!type.valid()) throw InvalidArgument(fmt::format("{} has an unreadable datatype", where));
  const std::size_t bytes = H5Tget_size(type.get());
  if (H5Tget_class(type.get()) != H5T_FLOAT || (bytes != 4 && bytes != 8)) {
    throw InvalidArgument(
        fmt::format("{} has type {} but must be float32 or float64", where, describe_type(type.get())));
  }
  out.is_float32 = bytes == 4;
  return out;
}

HeadArrays read_values(OpenDataset& ds, const std::string& path, const char* name) {
  const std::string where = fmt::format("input file '{}': dataset '{}'", path, name);
  HeadArrays out;
  out.heads = static_cast<std::size_t>(ds.dims[0]);
  out.n_tokens = static_cast<std::size_t>(ds.dims[1]);
  out.dim = static_cast<std::size_t>(ds.dims[2]);
  const std::string what = fmt::format("{} {}", where, shape_string(ds.dims));
  const std::uint64_t count = checked_mul(checked_mul(out.heads, out.n_tokens, what), out.dim, what);
  // A float32 dataset is read into a float buffer first (alongside the doubles).
  check_memory(checked_mul(count, ds.is_float32 ? 12 : 8, what), what);

  out.data.resize(static_cast<std::size_t>(count));
  if (ds.is_float32) {
    // Read as native float and widen in C++: every float32 is exactly a double.
    std::vector<float> buffer(static_cast<std::size_t>(count));
    if (H5Dread(ds.dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) < 0) {
      throw InvalidArgument(fmt::format("{} cannot be read", where));
    }
    for (std::size_t i = 0; i < buffer.size(); ++i) out.data[i] = static_cast<double>(buffer[i]);
  } else if (H5Dread(ds.dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data.data()) < 0) {
    throw InvalidArgument(fmt::format("{} cannot be read", where));
  }

  for (std::size_t i = 0; i < out.data.size(); ++i) {
    const double x = out.data[i];
    if (std::isnan(x)) throw InvalidArgument(fmt::format("{} contains NaN at flat index {}", where, i));
    if (std::isinf(x)) {
      throw InvalidArgument(fmt::format("{} contains {} at flat index {}", where, x > 0 ? "Inf" : "-Inf", i));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Writing.

void check_array(const HeadArrays& a, const std::string& file, const char* name) {
  const std::string what = fmt::format("output file '{}': dataset '{}'", file, name);
  const std::uint64_t expected = checked_mul(checked_mul(a.heads, a.n_tokens, what), a.dim, what);
  if (a.data.size() != expected) {
    throw InvalidArgument(fmt::format("{} has shape [{}, {}, {}] ({} elements) but holds {} values", what, a.heads,
                                      a.n_tokens, a.dim, expected, a.data.size()));
  }
}

void write_dataset(hid_t file, const std::string& path, const char* name, const std::vector<hsize_t>& dims,
                   const double* values) {
  const std::string where = fmt::format("output file '{}': dataset '{}'", path, name);
  Handle space = space_handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  if (!space.valid()) throw InvalidArgument(fmt::format("{} {}: cannot create dataspace", where, shape_string(dims)));
  Handle dataset = dataset_handle(
      H5Dcreate2(file, name, H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!dataset.valid()) throw InvalidArgument(fmt::format("{} cannot be created", where));
  std::uint64_t count = 1;
  for (hsize_t d : dims) count *= d;
  if (count > 0 && H5Dwrite(dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0) {
    throw InvalidArgument(fmt::format("{} cannot be written", where));
  }
  if (!dataset.close()) throw InvalidArgument(fmt::format("{} cannot be closed", where));
}

void write_string_attribute(hid_t file, const std::string& path, const std::string& name, const std::string& value) {
  if (!detail::write_string_attribute(file, name.c_str(), value)) {
    throw InvalidArgument(fmt::format("output file '{}': attribute '{}' cannot be written", path, name));
  }
}

// Creates `path` atomically (atomic_file.hpp): `fill` writes the HDF5 file.
template <typename Fill>
void write_atomically(const std::string& path, bool overwrite, Fill&& fill) {
  detail::AtomicWrite how;
  how.label = "output file";
  how.replace = overwrite;
  detail::write_hdf5_atomically(path, how, fill);
}

}  // namespace

QkvArrays read_qkv(const std::string& path) {
  QuietHdf5Errors quiet;
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    throw InvalidArgument(fmt::format("input file '{}': does not exist ({})", path, kQkvShapeHint));
  }
  if (std::filesystem::is_directory(status)) {
    throw InvalidArgument(fmt::format("input file '{}': is a directory, not an HDF5 file", path));
  }
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 < 0) throw InvalidArgument(fmt::format("input file '{}': cannot be read", path));
  if (is_hdf5 == 0) throw InvalidArgument(fmt::format("input file '{}': is not an HDF5 file", path));
  Handle file = file_handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) throw InvalidArgument(fmt::format("input file '{}': cannot be opened as HDF5", path));

  OpenDataset q = open_qkv_dataset(file.get(), path, "q");
  OpenDataset k = open_qkv_dataset(file.get(), path, "k");
  OpenDataset v = open_qkv_dataset(file.get(), path, "v");

  const auto check_heads_tokens = [&](const OpenDataset& ds, const char* name) {
    if (ds.dims[0] != q.dims[0] || ds.dims[1] != q.dims[1]) {
      throw InvalidArgument(fmt::format("input file '{}': dataset '{}' has shape {} but q has heads={}, n_tokens={}",
                                        path, name, shape_string(ds.dims), q.dims[0], q.dims[1]));
    }
  };
  check_heads_tokens(k, "k");
  check_heads_tokens(v, "v");
  if (k.dims[2] != q.dims[2]) {
    throw InvalidArgument(fmt::format("input file '{}': dataset 'k' has shape {} but q has d={} (q and k need the same d)",
                                      path, shape_string(k.dims), q.dims[2]));
  }

  QkvArrays out;
  out.q = read_values(q, path, "q");
  out.k = read_values(k, path, "k");
  out.v = read_values(v, path, "v");
  return out;
}

void write_qkv(const std::string& path, const QkvArrays& qkv, bool overwrite) {
  const std::pair<const char*, const HeadArrays*> arrays[] = {{"q", &qkv.q}, {"k", &qkv.k}, {"v", &qkv.v}};
  for (const auto& [name, a] : arrays) check_array(*a, path, name);
  write_atomically(path, overwrite, [&](hid_t file) {
    for (const auto& [name, a] : arrays) write_dataset(file, path, name, {a->heads, a->n_tokens, a->dim}, a->data.data());
  });
}

void write_run_output(const std::string& path, const HeadArrays& y, const HeadArrays& y_truth,
                      std::span<const double> z, const std::map<std::string, std::string>& attributes,
                      bool overwrite) {
  check_array(y, path, "y");
  check_array(y_truth, path, "y_truth");
  if (y.heads != y_truth.heads || y.n_tokens != y_truth.n_tokens || y.dim != y_truth.dim) {
    throw InvalidArgument(fmt::format("output file '{}': dataset 'y_truth' has shape [{}, {}, {}] but y has [{}, {}, {}]",
                                      path, y_truth.heads, y_truth.n_tokens, y_truth.dim, y.heads, y.n_tokens, y.dim));
  }
  if (z.size() != y.heads * y.n_tokens) {
    throw InvalidArgument(fmt::format("output file '{}': dataset 'z' has {} values but needs heads*n_tokens = {}*{} = {}",
                                      path, z.size(), y.heads, y.n_tokens, y.heads * y.n_tokens));
  }
  for (const auto& [name, value] : attributes) {
    if (name.empty()) throw InvalidArgument(fmt::format("output file '{}': an attribute name is empty", path));
    if (name.find('\0') != std::string::npos || value.find('\0') != std::string::npos) {
      throw InvalidArgument(fmt::format("output file '{}': attribute '{}' contains a NUL byte", path, name.c_str()));
    }
  }
  write_atomically(path, overwrite, [&](hid_t file) {
    write_dataset(file, path, "y", {y.heads, y.n_tokens, y.dim}, y.data.data());
    write_dataset(file, path, "y_truth", {y_truth.heads, y_truth.n_tokens, y_truth.dim}, y_truth.data.data());
    write_dataset(file, path, "z", {y.heads, y.n_tokens}, z.data());
    for (const auto& [name, value] : attributes) write_string_attribute(file, path, name, value);
    if (const char* name = detail::write_build_attributes(file, build_info())) {
      throw InvalidArgument(fmt::format("output file '{}': attribute '{}' cannot be written", path, name));
    }
  });
}

}  // namespace satalab
