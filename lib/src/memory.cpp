#include "satalab/memory.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>

#include "satalab/error.hpp"

namespace satalab {
namespace {
std::atomic<std::uint64_t> g_limit{0};  // 0: not set, use the default
}

std::uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
}

std::uint64_t memory_limit_bytes() {
  const std::uint64_t set = g_limit.load();
  if (set != 0) return set;
  return physical_memory_bytes() / 10 * 8;
}

void set_memory_limit_bytes(std::uint64_t bytes) { g_limit.store(bytes); }

void check_memory(std::uint64_t bytes, std::string_view what) {
  const std::uint64_t limit = memory_limit_bytes();
  if (bytes > limit) {
    throw ResourceLimit(fmt::format("{} needs {} bytes ({:.3g} GiB), more than the memory limit of {} bytes ({:.3g} GiB)",
                                    what, bytes, static_cast<double>(bytes) / (1ull << 30), limit,
                                    static_cast<double>(limit) / (1ull << 30)));
  }
}

std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) throw ResourceLimit(fmt::format("{} overflows 64 bits ({} x {})", what, a, b));
  return r;
}

std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) throw ResourceLimit(fmt::format("{} overflows 64 bits ({} + {})", what, a, b));
  return r;
}

}  // namespace satalab
