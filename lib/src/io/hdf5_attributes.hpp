#pragma once
// Scalar attributes shared by every io/ writer and reader (results, run
// outputs, bench and SATA state files), and the build provenance each file
// records (docs/results-schema.md, docs/bench-schema.md). Internal to the
// library; callers add their own file name to the messages.
#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>

#include "hdf5_handles.hpp"
#include "satalab/build_info.hpp"

namespace satalab::detail {

// A variable-length UTF-8 string type (h5py reads it as str); invalid on failure.
Handle utf8_string_type();

// Writes a scalar attribute of `object` (a file or a group). False on any
// HDF5 failure (errno as the failing call left it).
bool write_string_attribute(hid_t object, const char* name, const std::string& value);
bool write_int_attribute(hid_t object, const char* name, std::int64_t value);

enum class AttributeStatus { ok, missing, wrong_type, unreadable };
// Reads a string attribute, variable- or fixed-length.
AttributeStatus read_string_attribute(hid_t object, const char* name, std::string& out);
// Reads an integer attribute as int64.
AttributeStatus read_int_attribute(hid_t object, const char* name, std::int64_t& out);

// The build attributes: build_commit, build_compiler, build_flags, build_isa,
// build_exp_library. write_build_attributes returns the name of the one that
// could not be written, nullptr on success; read_build_attributes returns
// nullopt when the object has none of them (files older than provenance) and
// fills absent or unreadable ones with "unknown".
const char* write_build_attributes(hid_t object, const BuildInfo& build);
std::optional<BuildInfo> read_build_attributes(hid_t object);

}  // namespace satalab::detail
