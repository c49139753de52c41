// build_info.hpp: what the binary records about its own build.
#include <gtest/gtest.h>

#include <string>

#include "satalab/build_info.hpp"
#include "satalab/numeric/vector_math.hpp"
#include "satalab/version.hpp"

namespace satalab {
namespace {

TEST(BuildInfo, RecordsTheCommitCompilerFlagsInstructionSetAndExpLibraryOfThisBinary) {
  const BuildInfo& b = build_info();
  EXPECT_EQ(b.commit, git_commit());
  EXPECT_EQ(b.exp_library, exp_implementation());
#if defined(__GNUC__) && !defined(__clang__)
  EXPECT_EQ(b.compiler, "GCC " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
                            std::to_string(__GNUC_PATCHLEVEL__));
#endif
  EXPECT_NE(b.flags.find("-ffp-contract=off"), std::string::npos) << b.flags;
  EXPECT_NE(b.flags.find("-DEIGEN_GEMM_TO_COEFFBASED_THRESHOLD=0"), std::string::npos) << b.flags;
  EXPECT_EQ(b.flags.find("-W"), std::string::npos) << "warning options change no code: " << b.flags;
#if defined(__x86_64__)
  // This test is compiled with the library's flags: the instruction set its
  // own predefined macros show is the one recorded.
  if (b.isa.rfind("native", 0) == 0) {
    EXPECT_NE(b.flags.find("-march=native"), std::string::npos) << b.flags;
  } else {
    // "+avx512": the portable build's matrix products run their AVX-512
    // kernels, exactly where this CPU has AVX-512 (asked independently here).
    const std::string suffix = "+avx512";
    const bool wide = b.isa.size() > suffix.size() && b.isa.ends_with(suffix);
    const std::string compiled = wide ? b.isa.substr(0, b.isa.size() - suffix.size()) : b.isa;
    if (b.flags.find("-DEIGEN_USE_BLAS") != std::string::npos) {
      __builtin_cpu_init();
      EXPECT_EQ(wide, __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
          << b.isa;
    } else {
      EXPECT_FALSE(wide) << b.isa;
    }
    EXPECT_NE(b.flags.find("-march=" + compiled + " "), std::string::npos) << b.flags;
    const std::string& isa = compiled;
#if defined(__AVX512F__)
    EXPECT_EQ(isa, "x86-64-v4");
#elif defined(__AVX2__) && defined(__FMA__)
    EXPECT_EQ(isa, "x86-64-v3");
#elif defined(__SSE4_2__)
    EXPECT_EQ(isa, "x86-64-v2");
#endif
  }
#endif
}

TEST(BuildInfo, DifferenceNamesTheFirstFieldThatDiffersAndIsEmptyForTheSameBuild) {
  BuildInfo a{"abc", "GCC 12.2.0", "-O2", "x86-64-v3", "libmvec-avx2"};
  EXPECT_EQ(build_difference(a, a), "");
  BuildInfo b = a;
  b.isa = "x86-64-v4";
  EXPECT_EQ(build_difference(a, b), "instruction set 'x86-64-v3' vs 'x86-64-v4'");
  b.commit = "def";
  EXPECT_EQ(build_difference(a, b), "commit 'abc' vs 'def'");
  EXPECT_NE(describe(a).find("x86-64-v3"), std::string::npos);
}

}  // namespace
}  // namespace satalab
