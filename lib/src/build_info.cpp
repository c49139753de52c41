#include "satalab/build_info.hpp"

#include <fmt/format.h>

#include "satalab/numeric/vector_math.hpp"
#include "satalab/version.hpp"

#ifndef SATALAB_BUILD_FLAGS
#define SATALAB_BUILD_FLAGS "unknown"
#endif

namespace satalab {
namespace {

std::string compiled_isa() {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
  return "x86-64-v4";
#elif defined(__AVX2__) && defined(__FMA__)
  return "x86-64-v3";
#elif defined(__SSE4_2__)
  return "x86-64-v2";
#elif defined(__x86_64__)
  return "x86-64";
#else
  return "other";
#endif
}

std::string compiler() {
#if defined(__clang__)
  return fmt::format("Clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  return fmt::format("GCC {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

}  // namespace

const BuildInfo& build_info() {
  static const BuildInfo info{git_commit(), compiler(), SATALAB_BUILD_FLAGS, compiled_isa(), exp_implementation()};
  return info;
}

std::string describe(const BuildInfo& build) {
  return fmt::format("commit {}, {}, {}, {}, flags '{}'", build.commit, build.compiler, build.isa, build.exp_library,
                     build.flags);
}

std::string build_difference(const BuildInfo& a, const BuildInfo& b) {
  const auto differ = [](const char* field, const std::string& x, const std::string& y) {
    return x == y ? std::string() : fmt::format("{} '{}' vs '{}'", field, x, y);
  };
  for (const std::string& d : {differ("commit", a.commit, b.commit), differ("compiler", a.compiler, b.compiler),
                               differ("instruction set", a.isa, b.isa),
                               differ("exp library", a.exp_library, b.exp_library),
                               differ("flags", a.flags, b.flags)}) {
    if (!d.empty()) return d;
  }
  return {};
}

}  // namespace satalab
