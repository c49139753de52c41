// build_info.hpp: what the binary records about its own build.
#include <gtest/gtest.h>

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
  EXPECT_EQ(b.compiler.rfind("GCC ", 0), 0u) << b.compiler;
#endif
  EXPECT_NE(b.flags.find("-ffp-contract=off"), std::string::npos) << b.flags;
  EXPECT_EQ(b.isa.rfind("x86-64", 0), 0u) << b.isa;
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
