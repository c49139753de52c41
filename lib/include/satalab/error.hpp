#pragma once
// Errors the library raises. Messages are one line and name the bad value and
// what is allowed; the CLI turns InvalidArgument and ResourceLimit into exit 2.
#include <stdexcept>
#include <string>

namespace satalab {

// Input that the caller can fix: an unknown name, P < 1, mismatched shapes,
// NaN/Inf in imported data, a missing dataset.
class InvalidArgument : public std::invalid_argument {
 public:
  explicit InvalidArgument(const std::string& message) : std::invalid_argument(message) {}
};

// A request that is well formed but would not fit: a state or buffer larger
// than the memory limit, a size that overflows 64 bits.
class ResourceLimit : public std::runtime_error {
 public:
  explicit ResourceLimit(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace satalab
