// `satalab advise` end to end: the P it advises for taylor equals the smallest P
// at which `satalab run` (an independent computation through the run command,
// one run per P) meets the target; its JSON parses; bad input exits 2 with one
// line and writes nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "../support/satalab_test.hpp"

namespace {

namespace fs = std::filesystem;
using satalab::test::CommandResult;
using satalab::test::line_count;
using satalab::test::run_command;

CommandResult satalab(const std::string& arguments) { return run_command(std::string(SATALAB_BINARY) + " " + arguments); }

// The median relative error of the `total` row of `satalab run`'s report.
double run_total_rel_median(const std::string& output) {
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string s; words >> s;) w.push_back(s);
    // total sata vs exact@<truth> abs-med abs-p95 abs-max rel-med ...
    if (w.size() >= 8 && w[0] == "total") return std::stod(w[7]);
  }
  ADD_FAILURE() << "no total row in:\n" << output;
  return std::nan("");
}

// One value of the advise JSON, read by Python's json module (the file must parse).
std::string json_query(const std::string& path, const std::string& expression) {
  const CommandResult r = run_command(std::string(SATALAB_PYTHON) + " -c \"import json,sys; d=json.load(open(sys.argv[1])); " +
                                      "print(" + expression + ")\" " + path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::string out = r.output;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

const std::string kWorkload = "--d-key 4 --n-tokens 32 --scale 0.8 --seed 5 --truth fp64";

TEST(AdviseCli, TaylorPEqualsTheSmallestPAtWhichSatalabRunMeetsTheTarget) {
  satalab::test::TempDir dir;
  const std::size_t max_terms = 7;
  std::vector<double> run_errors;
  for (std::size_t P = 1; P <= max_terms; ++P) {
    const CommandResult r = satalab("run --method sata --precision fp64 -P " + std::to_string(P) + " " + kWorkload);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    run_errors.push_back(run_total_rel_median(r.output));
  }
  for (const double target : {1e-2, 1e-3}) {
    std::size_t expected = 0;  // 0: not reached
    for (std::size_t P = 1; P <= max_terms && !expected; ++P) {
      // The run report has 4 significant digits: a target that close to an error would make the test ambiguous.
      ASSERT_GT(std::abs(std::log(run_errors[P - 1] / target)), 0.01) << "P=" << P << " target=" << target;
      if (run_errors[P - 1] <= target) expected = P;
    }
    ASSERT_GE(expected, 2u) << "target " << target << " is met at P=1: choose a smaller one";
    const std::string json = dir.file("advice.json");
    std::ostringstream target_text;
    target_text << target;
    const CommandResult r = satalab("advise --families taylor --max-terms " + std::to_string(max_terms) +
                                    " --target " + target_text.str() + " " + kWorkload + " --heads 1 --json " + json + " --force");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(json_query(json, "len(d['results'])"), "1");
    EXPECT_EQ(json_query(json, "d['results'][0]['family']"), "taylor");
    EXPECT_EQ(json_query(json, "d['results'][0]['taylor_terms']"), std::to_string(expected)) << "target " << target;
    EXPECT_EQ(json_query(json, "d['results'][0]['reached']"), "True");
    // Every error advise measured equals run's at the same P (4 significant digits).
    const std::string tried = json_query(json, "' '.join(repr(t['rel_error_median']) for t in d['results'][0]['tried'])");
    std::istringstream values(tried);
    std::size_t P = 1;
    for (double e; values >> e; ++P) EXPECT_NEAR(e, run_errors[P - 1], 6e-4 * run_errors[P - 1]) << "P=" << P;
    EXPECT_EQ(P - 1, expected);
    if (target != 1e-2) continue;
    // State bytes per head: the SATA state of `satalab run` at that P (one head, fp64 accumulation).
    const CommandResult at = satalab("run --method sata --precision fp64 -P " + std::to_string(expected) + " " + kWorkload);
    const std::string marker = "SATA state, accumulate format): ";
    const std::size_t pos = at.output.find(marker);
    ASSERT_NE(pos, std::string::npos) << at.output;
    EXPECT_EQ(json_query(json, "d['results'][0]['state_bytes_per_head']"),
              at.output.substr(pos + marker.size(), at.output.find(' ', pos + marker.size()) - pos - marker.size()));
  }
}

TEST(AdviseCli, AHeadNeverReachingTheTargetSaysSoAndEveryFamilyIsReported) {
  satalab::test::TempDir dir;
  const std::string json = dir.file("advice.json");
  const CommandResult r = satalab("advise --target 1e-9 --max-terms 3 " + kWorkload + " --heads 2 --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json_query(json, "len(d['results'])"), "10");  // 2 heads x 5 families
  EXPECT_EQ(json_query(json, "sorted(set(r['reached'] for r in d['results']))"), "[False]");
  EXPECT_EQ(json_query(json, "sorted(set(r['taylor_terms'] for r in d['results']))"), "[None]");
  EXPECT_EQ(json_query(json, "sorted(set(len(r['tried']) for r in d['results']))"), "[1, 3]");
  EXPECT_NE(r.output.find("not reached with P <= 3"), std::string::npos) << r.output;
}

TEST(AdviseCli, BadInputExitsTwoWithOneLineAndWritesNothing) {
  satalab::test::TempDir dir;
  const std::string json = dir.file("advice.json");
  const std::string tail = " " + kWorkload + " --json " + json;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"advise --target 0", "--target 0"},
      {"advise --target 1", "--target 1"},
      {"advise --target -1e-3", "--target -0.001"},
      {"advise --target nan", "--target"},
      {"advise", "--target"},
      {"advise --target 1e-3 --families taylor,nope", "unknown polynomial 'nope'"},
      {"advise --target 1e-3 --families taylor,taylor", "'taylor' is listed twice"},
      {"advise --target 1e-3 --families chebyshev --max-terms 2", "--max-terms 2"},
      {"advise --target 1e-3 --max-terms 0", "--max-terms 0"},
      {"advise --target 1e-3 --precision fp7", "fp7"},
      {"advise --target 1e-3 --workload sphere", "sphere"},
      {"advise --target 1e-3 --modifiers nope", "nope"},
  };
  for (const auto& [arguments, needle] : cases) {
    const CommandResult r = satalab(arguments + tail);
    EXPECT_EQ(r.exit_code, 2) << arguments << "\n" << r.output;
    EXPECT_EQ(line_count(r.output), 1u) << arguments << "\n" << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.output;
    EXPECT_FALSE(fs::exists(json)) << arguments;
  }
  // An existing --json file is kept unless --force.
  satalab::test::write_bytes(json, "keep");
  const CommandResult r = satalab("advise --target 1e-3 --families taylor --max-terms 2" + tail);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(line_count(r.output), 1u) << r.output;
  EXPECT_EQ(satalab::test::read_bytes(json), "keep");
  EXPECT_FALSE(satalab::test::has_temp_files(dir.path()));
}

}  // namespace
