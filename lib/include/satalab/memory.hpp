#pragma once
// Memory budget: every large allocation is sized first and refused with the
// number of bytes when it exceeds the limit (default 80% of physical memory).
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace satalab {

std::uint64_t physical_memory_bytes();
// The current limit in bytes (default: 80% of physical memory).
std::uint64_t memory_limit_bytes();
void set_memory_limit_bytes(std::uint64_t bytes);

// Throws ResourceLimit("<what> needs N bytes (X GiB), more than the memory
// limit of M bytes (Y GiB)") when bytes > memory_limit_bytes().
void check_memory(std::uint64_t bytes, std::string_view what);

// a*b and a+b with a ResourceLimit naming `what` on 64-bit overflow.
std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view what);
std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, std::string_view what);

}  // namespace satalab
