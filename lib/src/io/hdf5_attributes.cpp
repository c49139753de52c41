#include "hdf5_attributes.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace satalab::detail {
namespace {

constexpr std::array<std::pair<const char*, std::string BuildInfo::*>, 5> kBuildAttributes = {{
    {"build_commit", &BuildInfo::commit},
    {"build_compiler", &BuildInfo::compiler},
    {"build_flags", &BuildInfo::flags},
    {"build_isa", &BuildInfo::isa},
    {"build_exp_library", &BuildInfo::exp_library},
}};

}  // namespace

Handle utf8_string_type() {
  Handle type = type_handle(H5Tcopy(H5T_C_S1));
  if (!type.valid() || H5Tset_size(type.get(), H5T_VARIABLE) < 0 || H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0) {
    return Handle();
  }
  return type;
}

bool write_string_attribute(hid_t object, const char* name, const std::string& value) {
  Handle type = utf8_string_type();
  Handle space = space_handle(H5Screate(H5S_SCALAR));
  if (!type.valid() || !space.valid()) return false;
  Handle a = attribute_handle(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  const char* text = value.c_str();
  return a.valid() && H5Awrite(a.get(), type.get(), &text) >= 0 && a.close();
}

bool write_int_attribute(hid_t object, const char* name, std::int64_t value) {
  Handle space = space_handle(H5Screate(H5S_SCALAR));
  if (!space.valid()) return false;
  Handle a = attribute_handle(H5Acreate2(object, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  return a.valid() && H5Awrite(a.get(), H5T_NATIVE_INT64, &value) >= 0 && a.close();
}

AttributeStatus read_string_attribute(hid_t object, const char* name, std::string& out) {
  if (H5Aexists(object, name) <= 0) return AttributeStatus::missing;
  Handle a = attribute_handle(H5Aopen(object, name, H5P_DEFAULT));
  if (!a.valid()) return AttributeStatus::unreadable;
  Handle type = type_handle(H5Aget_type(a.get()));
  if (!type.valid() || H5Tget_class(type.get()) != H5T_STRING) return AttributeStatus::wrong_type;
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle mem = utf8_string_type();
    char* text = nullptr;
    if (!mem.valid() || H5Aread(a.get(), mem.get(), &text) < 0) return AttributeStatus::unreadable;
    out = text != nullptr ? text : "";
    H5free_memory(text);
    return AttributeStatus::ok;
  }
  const std::size_t size = H5Tget_size(type.get());
  out.assign(size, '\0');
  if (size > 0 && H5Aread(a.get(), type.get(), out.data()) < 0) return AttributeStatus::unreadable;
  out.erase(std::find(out.begin(), out.end(), '\0'), out.end());
  return AttributeStatus::ok;
}

AttributeStatus read_int_attribute(hid_t object, const char* name, std::int64_t& out) {
  if (H5Aexists(object, name) <= 0) return AttributeStatus::missing;
  Handle a = attribute_handle(H5Aopen(object, name, H5P_DEFAULT));
  if (!a.valid()) return AttributeStatus::unreadable;
  Handle type = type_handle(H5Aget_type(a.get()));
  if (!type.valid() || H5Tget_class(type.get()) != H5T_INTEGER) return AttributeStatus::wrong_type;
  return H5Aread(a.get(), H5T_NATIVE_INT64, &out) < 0 ? AttributeStatus::unreadable : AttributeStatus::ok;
}

const char* write_build_attributes(hid_t object, const BuildInfo& build) {
  for (const auto& [name, field] : kBuildAttributes) {
    if (!write_string_attribute(object, name, build.*field)) return name;
  }
  return nullptr;
}

std::optional<BuildInfo> read_build_attributes(hid_t object) {
  BuildInfo build;
  bool any = false;
  for (const auto& [name, field] : kBuildAttributes) {
    std::string value;
    const bool ok = read_string_attribute(object, name, value) == AttributeStatus::ok;
    any = any || ok;
    build.*field = ok ? value : "unknown";
  }
  if (!any) return std::nullopt;
  return build;
}

}  // namespace satalab::detail
