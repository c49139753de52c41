#include "satalab/build_info.hpp"

#include <fmt/format.h>

#include "satalab/numeric/vector_math.hpp"
#include "satalab/version.hpp"
// SATALAB_BUILD_FLAGS and SATALAB_ISA, written by lib/CMakeLists.txt.
#include "build_config.hpp"
#if SATALAB_WIDE_PRODUCTS_ACTIVE
#include "gemm_variants.hpp"
#endif

namespace satalab {
namespace {

std::string compiler() {
#if defined(__clang__)
  return fmt::format("Clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  return fmt::format("GCC {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

// The compiled instruction set, and "+avx512" when the matrix products run
// their AVX-512 kernels on this CPU (lib/gemm/dispatch.cpp).
std::string isa() {
#if SATALAB_WIDE_PRODUCTS_ACTIVE
  if (gemm::wide_products()) return SATALAB_ISA "+avx512";
#endif
  return SATALAB_ISA;
}

}  // namespace

const BuildInfo& build_info() {
  static const BuildInfo info{git_commit(), compiler(), SATALAB_BUILD_FLAGS, isa(), exp_implementation()};
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
