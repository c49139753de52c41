// `satalab bench` end to end on tiny configurations: bad input exits 2 with
// one line naming the value and writes nothing; the output file has the
// documented table (docs/bench-schema.md) with sizes and FLOP counts equal to
// the closed forms. Timings are never asserted.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "../support/satalab_test.hpp"
#include "satalab/io/bench_file.hpp"

namespace {

namespace fs = std::filesystem;

using Result = satalab::test::CommandResult;
using satalab::test::line_count;

Result run(const std::string& command) { return satalab::test::run_command(command); }

Result run_bench(const std::string& arguments) { return run(std::string(SATALAB_BINARY) + " bench " + arguments); }

// C(n, k) in double (exact for these sizes).
double choose(unsigned n, unsigned k) {
  double r = 1;
  for (unsigned i = 1; i <= k; ++i) r = r * (n - k + i) / i;
  return r;
}

class BenchCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("satalab-bench-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  void expect_bad_input(const std::string& arguments, const std::string& needle) {
    const std::string out = path("bench.h5");
    const Result r = run_bench(arguments + " --out " + out);
    EXPECT_EQ(r.exit_code, 2) << arguments << "\n" << r.output;
    EXPECT_EQ(line_count(r.output), 1u) << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.output;
    EXPECT_FALSE(fs::exists(out)) << arguments;
  }

  fs::path dir_;
};

// Small and quick: every section and method, two contexts, two precisions.
const char* kTiny =
    "--d-key 4 -P 3 -H 2 --context 50,200 --prefill-tokens 64 --copy-bytes 1MB --gemm-size 32 --repeats 2 "
    "--prefill-repeats 1 --repeat-seconds 0.01 --decode-steps 8";

TEST_F(BenchCliTest, HelpExplainsTheSectionsAndExitsZero) {
  const Result r = run_bench("--help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* word : {"bounds", "decode", "prefill", "--context", "--process-budget", "--out", "bench-schema.md",
                           "--memory-limit", "tokens_processed"}) {
    EXPECT_NE(r.output.find(word), std::string::npos) << word;
  }
}

TEST_F(BenchCliTest, BadInputExitsTwoNamingTheValueAndWritesNothing) {
  expect_bad_input("--sections speed", "speed");
  expect_bad_input("--methods softmax", "softmax");
  expect_bad_input("--precision fp12", "fp12");
  expect_bad_input("--precision mp256", "mp256");
  expect_bad_input("--prefill-precision mp128", "mp128");
  expect_bad_input("--heads 0", "--heads");
  expect_bad_input("--d-key 0", "--d-key");
  expect_bad_input("-P 0", "--taylor-terms");
  expect_bad_input("-P 30", "--taylor-terms");
  expect_bad_input("--context 12Q", "12Q");
  expect_bad_input("--context 0", "--context");
  expect_bad_input("--prefill-tokens -5", "-5");
  expect_bad_input("--repeats 0", "--repeats");
  expect_bad_input("--frobnicate 3", "frobnicate");
}

TEST_F(BenchCliTest, ExistingOutputIsRefusedAndLeftUntouched) {
  const std::string out = path("bench.h5");
  { std::ofstream(out) << "keep me"; }
  const Result r = run_bench(std::string("--sections bounds --copy-bytes 1MB --gemm-size 16 --out ") + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--force"), std::string::npos) << r.output;
  std::ifstream in(out);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "keep me");
}

TEST_F(BenchCliTest, TinyRunWritesTheDocumentedTableWithClosedFormSizes) {
  const std::string out = path("bench.h5");
  const Result r = run_bench(std::string(kTiny) + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("decode"), std::string::npos);
  EXPECT_NE(r.output.find("causal prefill"), std::string::npos);
  const satalab::BenchContents c = satalab::read_bench_file(out);
  EXPECT_EQ(c.schema_version, 1);
  EXPECT_NE(c.metadata.command_line.find("bench"), std::string::npos);
  EXPECT_GE(c.metadata.threads, 1u);

  const double d = 4, P = 3, H = 2;
  const double features = choose(4 + 3 - 1, 3 - 1);  // C(d+P-1, P-1) = 15
  std::set<std::string> kinds;
  std::size_t sata_decode = 0, exact_decode = 0, prefill = 0;
  for (const satalab::BenchRow& row : c.rows) {
    kinds.insert(row.kind);
    EXPECT_EQ(row.status, "ok") << row.kind << " " << row.method;
    if (row.kind == "decode" && row.method == "sata") {
      ++sata_decode;
      const double carrier = row.precision == "fp64" ? 8 : 4;
      EXPECT_EQ(static_cast<double>(row.memory_bytes), H * (d + 1) * features * carrier);
      EXPECT_EQ(row.bytes_per_unit, 2 * row.memory_bytes);
      // Paper eq. (15): [4 d_v + 2(P d_k + 1)/(d_k + 1) + 2]·C(d_k+P-1, P-1) per token and head.
      EXPECT_NEAR(static_cast<double>(row.flops_per_unit), H * (4 * d + 2 * (P * d + 1) / (d + 1) + 2) * features,
                  1e-9);
      EXPECT_GE(row.tokens_processed, row.context_tokens);
      EXPECT_GT(row.seconds_median, 0);
      EXPECT_GE(row.steps, 1u);
    }
    if (row.kind == "decode" && row.method == "exact") {
      ++exact_decode;
      EXPECT_EQ(row.tokens_processed, row.context_tokens);
      EXPECT_EQ(static_cast<double>(row.memory_bytes), H * static_cast<double>(row.context_tokens) * 2 * d * 4);
      const double format_bytes = row.precision == "fp16-acc32" ? 2 : 4;
      EXPECT_EQ(static_cast<double>(row.memory_bytes_format),
                H * static_cast<double>(row.context_tokens) * 2 * d * format_bytes);
      EXPECT_EQ(static_cast<double>(row.flops_per_unit),
                H * static_cast<double>(row.context_tokens) * (2 * d + 2 * d + 3));
    }
    if (row.kind == "prefill") {
      ++prefill;
      EXPECT_EQ(row.context_tokens, 64u);
      EXPECT_NEAR(row.tokens_per_second * row.seconds_median, H * 64, 1e-6 * H * 64);
    }
    if (row.kind == "copy_bandwidth") {
      EXPECT_EQ(row.bytes_per_unit, 2u * (1u << 20));
    }
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"copy_bandwidth", "update_bandwidth", "gemm", "decode", "prefill"}));
  EXPECT_EQ(sata_decode, 4u);   // 2 precisions x 2 contexts
  EXPECT_EQ(exact_decode, 4u);
  EXPECT_EQ(prefill, 6u);       // 3 precisions x (sata, exact)
}

TEST_F(BenchCliTest, KvCacheBeyondTheMemoryLimitIsRecordedAsSkippedWithItsBytes) {
  const std::string out = path("bench.h5");
  const Result r = run_bench("--sections decode --methods exact --precision fp32 -d 4 -H 1 --context 100,100000 "
                             "--repeats 1 --repeat-seconds 0.01 --memory-limit 1MB --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const satalab::BenchContents c = satalab::read_bench_file(out);
  ASSERT_EQ(c.rows.size(), 2u);
  EXPECT_EQ(c.rows[0].status, "ok");
  EXPECT_EQ(c.rows[1].status.rfind("skipped: ", 0), 0u) << c.rows[1].status;
  EXPECT_NE(c.rows[1].status.find("bytes"), std::string::npos) << c.rows[1].status;
  EXPECT_TRUE(std::isnan(c.rows[1].seconds_median));
}

// Every column of docs/bench-schema.md's /bench table is in the file, in that
// order, and nothing else; h5py reads it as the document says.
TEST_F(BenchCliTest, PythonReadsTheColumnsTheSchemaDocumentLists) {
  const std::string out = path("bench.h5");
  ASSERT_EQ(run_bench("--sections bounds --copy-bytes 1MB --gemm-size 16 --repeats 1 --out " + out).exit_code, 0);
  const std::string script = path("check.py");
  std::ofstream(script) << R"(import re, sys, h5py, pandas as pd
doc = open(sys.argv[2], encoding="utf-8").read()
section = doc.split("## `/bench`")[1].split("\n## ")[0].split("\n### ")[0]
documented = re.findall(r"^\| `([a-z_0-9]+)` \|", section, re.M)
f = h5py.File(sys.argv[1], "r")
assert f.attrs["bench_schema_version"] == 1
for name in ["satalab_version", "git_commit", "command_line", "start_time", "cpu_model", "threads", "llc_bytes",
             "memory_limit_bytes", "physical_memory_bytes"]:
    assert name in f.attrs, name
df = pd.DataFrame(f["bench"][()])
for c in df.select_dtypes(object): df[c] = df[c].str.decode("utf-8")
assert list(df.columns) == documented, (list(df.columns), documented)
assert set(df.kind) == {"copy_bandwidth", "update_bandwidth", "gemm"}, set(df.kind)
assert (df.status == "ok").all()
print("ok", len(documented))
)";
  const Result r = run(std::string(SATALAB_PYTHON) + " " + script + " " + out + " " + SATALAB_SOURCE_DIR +
                       "/docs/bench-schema.md");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ok 26"), std::string::npos) << r.output;
}

}  // namespace
