#pragma once
// What built this binary: recorded in every results, bench and state file so
// that files written by different builds are never mixed silently (a
// different instruction set or exp library can change the last bits of the
// same computation; see docs/architecture.md, "Build and provenance").
#include <string>

namespace satalab {

struct BuildInfo {
  std::string commit;       // git commit of the source (12 hex digits, "unknown" outside git)
  std::string compiler;     // compiler and version, e.g. "GCC 12.2.0"
  std::string flags;        // build type and the code-generation flags of the library, as passed to the compiler
  std::string isa;          // instruction set compiled for: "x86-64-v3" (the default; "x86-64-v3+avx512" where
                            // the matrix products run AVX-512 kernels on this CPU) or "native (<cpu>)"
  std::string exp_library;  // the exp the kernels use on this CPU, chosen at run time (vector_math.hpp)
};

// This binary's build (computed once).
const BuildInfo& build_info();

// One line: "commit abc, GCC 12.2.0, x86-64-v3, libmvec-avx2, flags ...".
std::string describe(const BuildInfo& build);

// Empty when a and b are the same build; otherwise the first field that
// differs, as "<field> '<a>' vs '<b>'".
std::string build_difference(const BuildInfo& a, const BuildInfo& b);

}  // namespace satalab
