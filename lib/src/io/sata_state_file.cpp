#include "satalab/io/sata_state_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <hdf5.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <system_error>
#include <vector>

#include "atomic_file.hpp"
#include "hdf5_attributes.hpp"
#include "hdf5_handles.hpp"
#include "satalab/error.hpp"
#include "satalab/version.hpp"

namespace satalab {
namespace {

using detail::Handle;

constexpr const char* kFormat = "satalab SATA state";
constexpr const char* kFormatVersion = "1";

Handle string_type() {
  Handle type = detail::utf8_string_type();
  if (!type.valid()) throw InvalidArgument("SATA state file: cannot create an HDF5 string type");
  return type;
}

void write_string_attribute(hid_t file, const std::string& path, const std::string& name,
                            const std::string& value) {
  if (!detail::write_string_attribute(file, name.c_str(), value)) {
    throw InvalidArgument(
        fmt::format("SATA state file '{}': attribute '{}' cannot be written", path, name));
  }
}

std::string read_string_attribute(hid_t file, const std::string& path, const char* name) {
  if (H5Aexists(file, name) <= 0) {
    throw InvalidArgument(
        fmt::format("SATA state file '{}': attribute '{}' is missing", path, name));
  }
  Handle attribute = detail::attribute_handle(H5Aopen(file, name, H5P_DEFAULT));
  Handle stored = detail::type_handle(attribute.valid() ? H5Aget_type(attribute.get()) : -1);
  if (!stored.valid() || H5Tget_class(stored.get()) != H5T_STRING ||
      H5Tis_variable_str(stored.get()) <= 0) {
    throw InvalidArgument(
        fmt::format("SATA state file '{}': attribute '{}' is not a string", path, name));
  }
  Handle type = string_type();
  char* text = nullptr;
  if (H5Aread(attribute.get(), type.get(), &text) < 0 || text == nullptr) {
    throw InvalidArgument(
        fmt::format("SATA state file '{}': attribute '{}' cannot be read", path, name));
  }
  std::string out(text);
  H5free_memory(text);
  return out;
}

std::size_t parse_size(const std::string& text, const std::string& path, const char* name) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || text[0] == '-') {
    throw InvalidArgument(fmt::format("SATA state file '{}': attribute '{}' = '{}' is not a count",
                                      path, name, text));
  }
  return static_cast<std::size_t>(value);
}

void write_dataset(hid_t file, const std::string& path, const char* name, hid_t file_type,
                   hid_t memory_type, const hsize_t (&dims)[2], const void* values) {
  Handle space = detail::space_handle(H5Screate_simple(2, dims, nullptr));
  Handle dataset =
      detail::dataset_handle(space.valid() ? H5Dcreate2(file, name, file_type, space.get(),
                                                        H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                                           : -1);
  if (!dataset.valid() ||
      H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0 ||
      !dataset.close()) {
    throw InvalidArgument(
        fmt::format("SATA state file '{}': dataset '{}' cannot be written", path, name));
  }
}

// Opens dataset `name` and checks it is [rows, cols] of the given class.
Handle open_dataset(hid_t file, const std::string& path, const char* name, H5T_class_t type_class,
                    hsize_t rows, hsize_t cols) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
    throw InvalidArgument(fmt::format("SATA state file '{}': dataset '{}' is missing", path, name));
  }
  Handle dataset = detail::dataset_handle(H5Dopen2(file, name, H5P_DEFAULT));
  Handle space = detail::space_handle(dataset.valid() ? H5Dget_space(dataset.get()) : -1);
  Handle type = detail::type_handle(dataset.valid() ? H5Dget_type(dataset.get()) : -1);
  hsize_t dims[2] = {0, 0};
  if (!space.valid() || !type.valid() || H5Sget_simple_extent_ndims(space.get()) != 2 ||
      H5Sget_simple_extent_dims(space.get(), dims, nullptr) < 0 ||
      H5Tget_class(type.get()) != type_class) {
    throw InvalidArgument(fmt::format("SATA state file '{}': dataset '{}' is not a 2-d {} array",
                                      path, name, type_class == H5T_STRING ? "string" : "float"));
  }
  if (dims[0] != rows || dims[1] != cols) {
    throw InvalidArgument(
        fmt::format("SATA state file '{}': dataset '{}' has shape [{}, {}] but the attributes need "
                    "[{}, {}] (features, d_value+1)",
                    path, name, dims[0], dims[1], rows, cols));
  }
  return dataset;
}

RuntimeSataState read_values(hid_t f, const std::string& path, RuntimeSataState state,
                             std::size_t tokens) {
  const hsize_t rows = state.features(), cols = state.d_value() + 1;
  if (state.policy().carrier == Carrier::mp) {
    Handle dataset = open_dataset(f, path, "state_hex", H5T_STRING, rows, cols);
    Handle type = string_type();
    std::vector<char*> text(state.state_elements(), nullptr);
    if (H5Dread(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data()) < 0) {
      throw InvalidArgument(
          fmt::format("SATA state file '{}': dataset 'state_hex' cannot be read", path));
    }
    std::vector<std::string> hex(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
      hex[i] = text[i] ? text[i] : "";
      H5free_memory(text[i]);
    }
    state.restore(tokens, hex);
  } else {
    Handle dataset = open_dataset(f, path, "state", H5T_FLOAT, rows, cols);
    std::vector<double> values(state.state_elements());
    if (H5Dread(dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) <
        0) {
      throw InvalidArgument(
          fmt::format("SATA state file '{}': dataset 'state' cannot be read", path));
    }
    state.restore(tokens, values);
  }
  return state;
}

}  // namespace

void write_sata_state(const std::string& path, const RuntimeSataState& state, bool overwrite) {
  detail::QuietHdf5Errors quiet;
  if (path.empty()) throw InvalidArgument("SATA state file '': the path is empty");
  if (!overwrite && detail::path_exists(path)) {
    throw InvalidArgument(
        fmt::format("SATA state file '{}': already exists (refusing to overwrite it)", path));
  }
  const AttentionOptions& options = state.options();
  const std::map<std::string, std::string> attributes{
      {"format", kFormat},
      {"format_version", kFormatVersion},
      {"satalab_version", satalab::version()},
      {"git_commit", satalab::git_commit()},
      {"d_key", std::to_string(state.d_key())},
      {"d_value", std::to_string(state.d_value())},
      {"taylor_terms", std::to_string(state.taylor_terms())},
      {"tokens", std::to_string(state.tokens())},
      {"precision", state.policy().name},
      {"coefficient_placement", std::string(placement_name(options.placement))},
      {"chunk", std::to_string(options.effective_chunk())},
      {"softmax_denominator", options.softmax_denominator
                                  ? fmt::format("{:.17g}", *options.softmax_denominator)
                                  : "sqrt(d_key)"},
  };
  const hsize_t dims[2] = {state.features(), state.d_value() + 1};
  detail::AtomicWrite how;
  how.label = "SATA state file";
  how.replace = overwrite;
  detail::write_hdf5_atomically(path, how, [&](hid_t file) {
    const std::vector<double> values = state.values();
    if (state.policy().carrier == Carrier::f32) {
      const std::vector<float> narrow(values.begin(), values.end());  // exact: float carrier values
      write_dataset(file, path, "state", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims,
                    narrow.data());
    } else {
      write_dataset(file, path, "state", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, dims,
                    values.data());
    }
    if (state.policy().carrier == Carrier::mp) {
      const std::vector<std::string> hex = state.values_hex();
      std::vector<const char*> text(hex.size());
      for (std::size_t i = 0; i < hex.size(); ++i) text[i] = hex[i].c_str();
      Handle type = string_type();
      write_dataset(file, path, "state_hex", type.get(), type.get(), dims, text.data());
    }
    for (const auto& [name, value] : attributes)
      write_string_attribute(file, path, name, value);
    if (const char* name = detail::write_build_attributes(file, build_info())) {
      throw InvalidArgument(
          fmt::format("SATA state file '{}': attribute '{}' cannot be written", path, name));
    }
  });
}
RuntimeSataState read_sata_state(const std::string& path) {
  detail::QuietHdf5Errors quiet;
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    throw InvalidArgument(fmt::format("SATA state file '{}': does not exist", path));
  }
  if (std::filesystem::is_directory(status) || H5Fis_hdf5(path.c_str()) <= 0) {
    throw InvalidArgument(fmt::format("SATA state file '{}': is not an HDF5 file", path));
  }
  Handle file = detail::file_handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid())
    throw InvalidArgument(fmt::format("SATA state file '{}': cannot be opened as HDF5", path));
  const hid_t f = file.get();
  if (H5Aexists(f, "format") <= 0 || read_string_attribute(f, path, "format") != kFormat) {
    throw InvalidArgument(fmt::format(
        "SATA state file '{}': is not a SATA state (no attribute format = '{}')", path, kFormat));
  }
  if (const std::string version = read_string_attribute(f, path, "format_version");
      version != kFormatVersion) {
    throw InvalidArgument(fmt::format(
        "SATA state file '{}': format_version '{}' is not supported (this satalab reads {})", path,
        version, kFormatVersion));
  }
  AttentionOptions options;
  options.taylor_terms =
      parse_size(read_string_attribute(f, path, "taylor_terms"), path, "taylor_terms");
  options.chunk = parse_size(read_string_attribute(f, path, "chunk"), path, "chunk");
  options.placement = placement_by_name(read_string_attribute(f, path, "coefficient_placement"));
  if (const std::string c = read_string_attribute(f, path, "softmax_denominator");
      c != "sqrt(d_key)") {
    char* end = nullptr;
    options.softmax_denominator = std::strtod(c.c_str(), &end);
    if (c.empty() || *end != '\0') {
      throw InvalidArgument(fmt::format(
          "SATA state file '{}': attribute 'softmax_denominator' = '{}' is not a number", path, c));
    }
  }
  const std::size_t d_key = parse_size(read_string_attribute(f, path, "d_key"), path, "d_key");
  const std::size_t d_value =
      parse_size(read_string_attribute(f, path, "d_value"), path, "d_value");
  const std::size_t tokens = parse_size(read_string_attribute(f, path, "tokens"), path, "tokens");
  const std::string precision = read_string_attribute(f, path, "precision");
  try {
    return read_values(
        f, path, RuntimeSataState(d_key, d_value, precision_policy(precision), options), tokens);
  } catch (const InvalidArgument& e) {
    if (std::string_view(e.what()).starts_with("SATA state file")) throw;
    throw InvalidArgument(fmt::format("SATA state file '{}': {}", path, e.what()));
  }
}

}  // namespace satalab
