// `satalab drift` end to end: a tiny run writes its file and removes its
// checkpoint; bad input (N below the first truth position, an unknown mode,
// a checkpoint of another configuration) exits 2 with one line and writes nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "../support/satalab_test.hpp"
#include "satalab/experiment/drift.hpp"
#include "satalab/io/drift_file.hpp"

namespace {

namespace fs = std::filesystem;
using satalab::test::line_count;

satalab::test::CommandResult drift(const std::string& arguments) {
  return satalab::test::run_command(std::string(SATALAB_BINARY) + " drift " + arguments);
}

const std::string kTiny = "-N 2500 --heads 2 --d-key 4 --d-value 3 -P 3 --first-position 100 --positions 4 ";

TEST(DriftCli, ATinyRunWritesItsFileAndLeavesNoCheckpoint) {
  satalab::test::TempDir dir;
  const std::string out = dir.file("drift.h5");
  const auto r = drift(kTiny + "--checkpoint-tokens 1000 -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".checkpoint.h5"));
  // An existing file is not replaced without --force.
  const auto again = drift(kTiny + "-o " + out);
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_EQ(line_count(again.output), 1u) << again.output;
}

TEST(DriftCli, BadInputExitsTwoWithOneLineAndWritesNothing) {
  satalab::test::TempDir dir;
  const std::string out = dir.file("drift.h5");
  struct Case {
    std::string arguments, needle;
  };
  const Case cases[] = {
      {"-N 100 --first-position 1000", "tokens N = 100 is invalid"},
      {kTiny + "--modes plain,kahan", "unknown state accumulation mode 'kahan'"},
      {kTiny + "--precision mp128", "precision 'mp128' is invalid for drift"},
      {kTiny + "--resume", "does not exist (nothing to resume)"},
  };
  for (const Case& c : cases) {
    const auto r = drift(c.arguments + " -o " + out);
    EXPECT_EQ(r.exit_code, 2) << c.arguments << "\n" << r.output;
    EXPECT_EQ(line_count(r.output), 1u) << r.output;
    EXPECT_NE(r.output.find(c.needle), std::string::npos) << "expected '" << c.needle << "' in: " << r.output;
    EXPECT_FALSE(fs::exists(out)) << c.arguments;
  }
  // A checkpoint of another configuration (another seed) is refused and left as it was.
  satalab::DriftConfig other;
  other.tokens = 2500;
  other.heads = 2;
  other.d_key = 4;
  other.d_value = 3;
  other.taylor_terms = 3;
  other.first_position = 100;
  other.positions = 4;
  other.seed = 2;
  satalab::DriftRun run(other);
  run.advance(500);
  const std::string checkpoint = out + ".checkpoint.h5";
  satalab::write_drift_checkpoint(checkpoint, run, 0.0);
  const std::string before = satalab::test::read_bytes(checkpoint);
  const auto r = drift(kTiny + "--resume -o " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(line_count(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("seed=2 there, seed=1 here"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(satalab::test::read_bytes(checkpoint), before);
}

}  // namespace
