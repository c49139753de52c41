// The `satalab` binary end to end: outputs of info and run, and every class of
// bad input exits 2 with one line naming the bad value, writing nothing.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <hdf5.h>

#include "../support/satalab_test.hpp"
#include "satalab/build_info.hpp"
#include "satalab/io/hdf5_arrays.hpp"
#include "satalab/io/results_file.hpp"

namespace {

namespace fs = std::filesystem;

using Result = satalab::test::CommandResult;
using satalab::test::line_count;

Result run_satalab_with_prefix(const std::string& prefix, const std::string& arguments) {
  return satalab::test::run_command(prefix + std::string(SATALAB_BINARY) + " " + arguments);
}

Result run_satalab(const std::string& arguments) { return run_satalab_with_prefix("", arguments); }

// The same with `environment` (NAME=value ...) set for the command.
Result run_satalab_env(const std::string& environment, const std::string& arguments) {
  return run_satalab_with_prefix("env " + environment + " ", arguments);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("satalab-cli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Bad input: exit 2, a single line that contains `needle`, and no file at `save`.
  void expect_bad_input(const std::string& arguments, const std::string& needle) {
    const std::string save = path("out.h5");
    const Result r = run_satalab(arguments + " --save " + save);
    EXPECT_EQ(r.exit_code, 2) << arguments << "\n" << r.output;
    EXPECT_EQ(line_count(r.output), 1u) << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.output;
    EXPECT_FALSE(fs::exists(save)) << arguments;
  }

  satalab::QkvArrays small_inputs(std::size_t n_q = 6, std::size_t n_v = 6) {
    satalab::QkvArrays qkv;
    auto fill = [](satalab::HeadArrays& a, std::size_t n, std::size_t d) {
      a.heads = 2;
      a.n_tokens = n;
      a.dim = d;
      a.data.resize(a.size());
      for (std::size_t i = 0; i < a.data.size(); ++i) a.data[i] = std::sin(0.37 * static_cast<double>(i + 1));
    };
    fill(qkv.q, n_q, 4);
    fill(qkv.k, n_q, 4);
    fill(qkv.v, n_v, 3);
    return qkv;
  }

  fs::path dir_;
};

TEST_F(CliTest, InfoPrintsThePaperStateSizeAndFlopsForHeadSize64) {
  const Result r = run_satalab("info --d-key 64 --taylor-terms 4");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("3113825"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("12738308"), std::string::npos) << r.output;
}

TEST_F(CliTest, HelpExitsZeroAndDescribesEveryRunOption) {
  const Result r = run_satalab("run --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* option : {"--method", "--taylor-terms", "--precision", "--truth", "--non-causal", "--chunk",
                             "--placement", "--input", "--save", "--memory-limit"}) {
    EXPECT_NE(r.output.find(option), std::string::npos) << option;
  }
}

TEST_F(CliTest, RunPrintsDecompositionAndSavesReadableOutputs) {
  const std::string save = path("run.h5");
  const Result r = run_satalab("run --method sata --taylor-terms 3 --precision fp32 --heads 2 --n-tokens 40 --d-key 4 "
                               "--seed 3 --save " + save);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* row : {"total", "truncation", "rounding", "baseline", "normalisers", "median relative error"}) {
    EXPECT_NE(r.output.find(row), std::string::npos) << row;
  }
  EXPECT_TRUE(fs::exists(save));
  // Refuses to overwrite without --force and leaves the file as it was.
  const auto size_before = fs::file_size(save);
  const Result again = run_satalab("run --precision fp32 --heads 2 --n-tokens 40 --d-key 4 --save " + save);
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_NE(again.output.find("--force"), std::string::npos);
  EXPECT_EQ(fs::file_size(save), size_before);
  EXPECT_EQ(run_satalab("run --precision fp32 --heads 2 --n-tokens 40 --d-key 4 --force --save " + save).exit_code, 0);
}

TEST_F(CliTest, RunReadsInputFile) {
  const std::string input = path("in.h5");
  satalab::write_qkv(input, small_inputs(), false);
  const Result r = run_satalab("run --method exact --precision bf16 --input " + input);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("heads=2 n_tokens=6 d_key=4 d_value=3"), std::string::npos) << r.output;
}

TEST_F(CliTest, UnknownPrecisionExitsTwoListingValidNames) {
  expect_bad_input("run --precision fp17", "fp16-acc32");
}
TEST_F(CliTest, UnknownMethodExitsTwo) { expect_bad_input("run --method softmax", "softmax"); }
TEST_F(CliTest, UnknownKvQuantExitsTwoNamingTheValueAndTheAllowedNames) {
  expect_bad_input("run --method exact-kvquant --kv-quant int3", "'int3'");
  expect_bad_input("run --method exact-kvquant --kv-quant int3", "allowed: none, fp16, bf16, e4m3");
}
TEST_F(CliTest, BadKvQuantGroupSizeExitsTwoNamingIt) {
  expect_bad_input("run --method exact-kvquant --kv-quant int4-g0", "'int4-g0': group size '0' is invalid");
  expect_bad_input("run --method exact-kvquant --kv-quant int2-gx", "int4-g<G>");
}
// Issue 18's suffixes: a fraction outside (0, 1), and combinations that make no sense.
TEST_F(CliTest, BadKvSchemeSuffixesAndCombinationsExitTwoNamingThem) {
  expect_bad_input("run --method exact-kvquant --kv-quant int4-g32-o1.5", "outlier fraction '1.5' is invalid");
  expect_bad_input("run --method exact-kvquant --kv-quant int8-o0", "must be a number in (0, 1)");
  expect_bad_input("run --method exact-kvquant --kv-quant e4m3-unscaled-o", "-unscaled has none");
  expect_bad_input("run --method exact-kvquant --kv-quant int4-g32-prerope --d-key 16",
                   "needs --modifiers with rope");
  expect_bad_input("run --method exact-kvquant --kv-quant int4-g32-rq128 --non-causal", "causal mask");
  expect_bad_input("run --method exact-kvquant --kv-quant int4-g32-r128-s4", "unknown kv_quant");
}
TEST_F(CliTest, KvQuantWithAnotherMethodExitsTwo) {
  expect_bad_input("run --method sata --kv-quant int8", "only to --method exact-kvquant");
}
TEST_F(CliTest, ExactKvQuantRunPrintsTheCacheBytes) {
  const Result r = run_satalab("run --method exact-kvquant --kv-quant int4-g32 --n-tokens 1024 --d-key 16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("kv_quant=int4-g32"), std::string::npos) << r.output;
  // 1024 tokens × (8 + 8 code bytes + 16/32·4 key and 4 value scale/zero bytes) = 22 bytes per token.
  EXPECT_NE(r.output.find("memory per sequence (KV cache): 22528 bytes, 22 bytes per token"), std::string::npos)
      << r.output;
  const Result help = run_satalab("run --help");
  EXPECT_NE(help.output.find("--kv-quant"), std::string::npos);
  EXPECT_NE(help.output.find("int4-g<G>"), std::string::npos);
  EXPECT_NE(help.output.find("exact-kvquant"), std::string::npos);
}
// Long-context drift: state accumulation modes of `satalab run`.
TEST_F(CliTest, BadStateAccumulationExitsTwoNamingIt) {
  expect_bad_input("run --state-accumulation kahan", "'kahan'");
  expect_bad_input("run --method exact --state-accumulation fp64", "--state-accumulation");
  expect_bad_input("run --state-accumulation blocked --state-block 0", "--state-block 0");
  expect_bad_input("run --precision mp128 --state-accumulation fp64", "fp64");
}

// The normaliser of degree 0 is the token count n. In a bf16 state (8
// significand bits) the plain running sum stops at 2^8 = 256 (256 + 1 rounds
// to even, 256), so with logits near 0 plain's z is about 256 for n = 1024
// (a relative error near 3/4); the fp64 state counts exactly and reads 1024,
// a bf16 number, so its z is about n and its error is bf16 rounding. Non-causal:
// every row reads the state after all n tokens.
TEST_F(CliTest, RunWithFp64StateKeepsTheBf16NormaliserThatPlainSaturates) {
  const std::size_t n = 1024;
  auto run_mode = [&](const std::string& mode, std::vector<double>& z) {
    const std::string save = path(mode + ".h5");
    const Result r = run_satalab("run --method sata --taylor-terms 2 --precision bf16 --non-causal --heads 1 "
                                 "--n-tokens 1024 --d-key 4 --scale 0.05 --seed 5 --state-accumulation " + mode +
                                 " --save " + save);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const std::string key = "median relative error: 10^";
    const auto at = r.output.find(key);
    EXPECT_NE(at, std::string::npos) << r.output;
    const hid_t file = H5Fopen(save.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    EXPECT_GE(file, 0);
    const hid_t set = H5Dopen2(file, "z", H5P_DEFAULT);
    z.assign(n, std::numeric_limits<double>::quiet_NaN());
    EXPECT_GE(H5Dread(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, z.data()), 0);
    H5Dclose(set);
    H5Fclose(file);
    return at == std::string::npos ? 0.0 : std::stod(r.output.substr(at + key.size()));
  };
  std::vector<double> z_plain, z_fp64;
  const double log_plain = run_mode("plain", z_plain), log_fp64 = run_mode("fp64", z_fp64);
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_GE(z_plain[i], 248.0) << i;
    ASSERT_LE(z_plain[i], 264.0) << i;
    ASSERT_GE(z_fp64[i], 0.97 * n) << i;
    ASSERT_LE(z_fp64[i], 1.03 * n) << i;
  }
  EXPECT_LT(log_fp64, log_plain - 0.5);  // the error shrinks at least threefold
}

TEST_F(CliTest, UnknownPlacementExitsTwo) { expect_bad_input("run --placement middle", "middle"); }
TEST_F(CliTest, BadTruthPrecisionExitsTwo) { expect_bad_input("run --truth fp16", "fp16"); }
TEST_F(CliTest, ZeroTaylorTermsExitsTwo) { expect_bad_input("run --taylor-terms 0", "taylor"); }
TEST_F(CliTest, ZeroHeadSizeExitsTwo) { expect_bad_input("run --d-key 0", "d_key"); }
TEST_F(CliTest, NegativeScaleExitsTwo) { expect_bad_input("run --scale -1", "scale"); }
TEST_F(CliTest, UnknownOptionExitsTwo) { expect_bad_input("run --frobnicate 3", "frobnicate"); }

TEST_F(CliTest, StateLargerThanMemoryLimitExitsTwoWithBytes) {
  // d_key = 64, P = 8: C(71, 7) ~ 1.1e9 features; the state cannot fit 24 GiB.
  expect_bad_input("run --method sata --d-key 64 --taylor-terms 8 --n-tokens 8", "bytes");
  expect_bad_input("run --method sata --d-key 16 --taylor-terms 4 --n-tokens 8 --memory-limit 1000", "bytes");
}

TEST_F(CliTest, MissingInputFileExitsTwo) { expect_bad_input("run --input " + path("absent.h5"), "absent.h5"); }

TEST_F(CliTest, MismatchedShapesInInputFileExitTwo) {
  const std::string input = path("bad.h5");
  satalab::write_qkv(input, small_inputs(6, 7), false);
  expect_bad_input("run --input " + input, "'v'");
}

TEST_F(CliTest, NanInInputFileExitsTwo) {
  const std::string input = path("nan.h5");
  auto qkv = small_inputs();
  qkv.k.data[5] = std::numeric_limits<double>::quiet_NaN();
  satalab::write_qkv(input, qkv, false);
  expect_bad_input("run --input " + input, "NaN");
}

TEST_F(CliTest, MissingDatasetExitsTwo) {
  const std::string input = path("missing.h5");
  {
    // An HDF5 file that holds something else: write a run output (y, y_truth, z).
    satalab::HeadArrays y{1, 2, 2, {1, 2, 3, 4}};
    satalab::write_run_output(input, y, y, std::vector<double>{1, 1}, {}, false);
  }
  expect_bad_input("run --input " + input, "'q'");
}

}  // namespace

namespace {

class SweepCliTest : public CliTest {
 protected:
  std::string write_config(const std::string& name, const std::string& text) {
    const std::string p = path(name);
    std::ofstream(p) << text;
    return p;
  }
};

TEST_F(SweepCliTest, BadConfigValuesExitTwoNamingTheKeyAndWriteNothing) {
  const std::string out = path("sweep.h5");
  for (const auto& [text, key] : std::vector<std::pair<std::string, std::string>>{
           {"taylor_term = 4\n", "taylor_term"},
           {"taylor_terms = \"four\"\n", "taylor_terms"},
           {"precision = []\n", "precision"},
           {"n_tokens = -5\n", "n_tokens"},
           {"heads = 0\n", "heads"},
           {"kv_quant = \"int3\"\n", "unknown kv_quant 'int3'"},
           {"kv_quant = [\"int8\", \"int4-g0\"]\n", "'int4-g0': group size '0'"},
           {"kv_quant = \"int4-g32-o2\"\n", "outlier fraction '2'"}}) {
    const std::string config = write_config("bad.toml", text);
    const Result r = run_satalab("sweep " + config + " --out " + out);
    EXPECT_EQ(r.exit_code, 2) << text << r.output;
    EXPECT_EQ(line_count(r.output), 1u) << r.output;
    EXPECT_NE(r.output.find(key), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(":1:"), std::string::npos) << "line number missing: " << r.output;
    EXPECT_FALSE(fs::exists(out));
  }
}

TEST_F(SweepCliTest, DryRunRefusesAPointThatCannotFitNamingIt) {
  const std::string config =
      write_config("big.toml", "method = \"sata\"\nd_key = [8, 64]\ntaylor_terms = 8\nn_tokens = 16\n");
  const Result r = run_satalab("sweep " + config + " --dry-run");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("d=64"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bytes"), std::string::npos) << r.output;
}

TEST_F(SweepCliTest, DryRunListsEveryPointAndWritesNothing) {
  const std::string config =
      std::string(SATALAB_SOURCE_DIR) + "/experiments/configs/tiny.toml";
  const Result r = run_satalab("sweep " + config + " --dry-run --out " + path("x.h5"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("8 points"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("x.h5")));
}

TEST_F(SweepCliTest, SecondRunWithoutResumeOrForceRefusesAndResumeHasNothingToDo) {
  const std::string config = std::string(SATALAB_SOURCE_DIR) + "/experiments/configs/tiny.toml";
  const std::string out = path("tiny.h5");
  ASSERT_EQ(run_satalab("sweep " + config + " --out " + out).exit_code, 0);
  const Result again = run_satalab("sweep " + config + " --out " + out);
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_NE(again.output.find("--resume"), std::string::npos) << again.output;
  const Result resumed = run_satalab("sweep " + config + " --out " + out + " --resume");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("8 already finished, 0 to run"), std::string::npos) << resumed.output;
}

TEST_F(SweepCliTest, SkipUnfitRecordsPointsThatCannotFitAsSkippedRowsWithNaNStatistics) {
  const std::string config = write_config(
      "unfit.toml", "method = \"sata\"\nd_key = 32\ntaylor_terms = [2, 8]\nn_tokens = 16\nprecision = \"fp32\"\n");
  const std::string out = path("unfit.h5");
  const Result refused = run_satalab("sweep " + config + " --out " + out + " --memory-limit 500MB");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("--skip-unfit"), std::string::npos) << refused.output;
  EXPECT_FALSE(fs::exists(out));
  const Result r = run_satalab("sweep " + config + " --out " + out + " --memory-limit 500MB --skip-unfit");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const satalab::ResultsContents contents = satalab::read_results(out);
  ASSERT_EQ(contents.records.size(), 2u);
  const auto& ok = contents.records[0];
  const auto& skipped = contents.records[1];
  EXPECT_EQ(ok.params.taylor_terms, 2u);
  EXPECT_EQ(ok.result.status, "ok");
  EXPECT_TRUE(std::isfinite(ok.result.total.abs_error.median));
  EXPECT_EQ(skipped.params.taylor_terms, 8u);
  EXPECT_EQ(skipped.result.status.rfind("skipped: ", 0), 0u) << skipped.result.status;
  EXPECT_TRUE(std::isnan(skipped.result.total.abs_error.median));
  EXPECT_TRUE(std::isnan(skipped.result.total.rel_error.max));
  EXPECT_EQ(skipped.result.state_elements, 33u * 15380937u);  // (d_v+1)·C(39, 7), by hand
}

TEST_F(SweepCliTest, TruthRowsMeasuresErrorsOnEvenlySpacedRowsOnly) {
  const std::string base =
      "method = \"sata\"\ntaylor_terms = 3\nd_key = 4\nheads = 2\nn_tokens = 50\nprecision = \"fp32\"\n"
      "truth = \"fp64\"\n";
  const std::string full_out = path("full.h5"), rows_out = path("rows.h5");
  ASSERT_EQ(run_satalab("sweep " + write_config("full.toml", base) + " --out " + full_out + " --save-outputs").exit_code, 0);
  ASSERT_EQ(run_satalab("sweep " + write_config("rows.toml", base + "truth_rows = 7\n") + " --out " + rows_out +
                        " --save-outputs").exit_code,
            0);
  const auto full = satalab::read_results(full_out).records.at(0);
  const auto rows = satalab::read_results(rows_out).records.at(0);
  EXPECT_EQ(rows.params.truth_rows, 7u);
  const std::size_t n = 50, R = 7, dv = 4, heads = 2;
  ASSERT_EQ(rows.result.y.size(), heads * R * dv);
  ASSERT_EQ(rows.result.y_truth.size(), heads * R * dv);
  std::vector<double> errors;
  for (std::size_t h = 0; h < heads; ++h) {
    for (std::size_t r = 0; r < R; ++r) {
      const std::size_t i = (r + 1) * n / R - 1;  // 6, 13, 20, 27, 34, 41, 49
      for (std::size_t t = 0; t < dv; ++t) {
        const double y = rows.result.y[(h * R + r) * dv + t], truth = rows.result.y_truth[(h * R + r) * dv + t];
        EXPECT_EQ(y, full.result.y[(h * n + i) * dv + t]);  // SATA ran on every row either way
        EXPECT_NEAR(truth, full.result.y_truth[(h * n + i) * dv + t], 1e-14);
        errors.push_back(std::abs(y - truth));
      }
    }
  }
  std::sort(errors.begin(), errors.end());  // 56 values: the median averages the middle two
  EXPECT_DOUBLE_EQ(rows.result.total.abs_error.median, (errors[27] + errors[28]) / 2);
  EXPECT_EQ(rows.result.total.abs_error.max, errors.back());
  ASSERT_FALSE(rows.result.total.by_position.empty());
  EXPECT_EQ(rows.result.total.by_position.front().first_token, 6u);
  EXPECT_EQ(rows.result.total.by_position.back().last_token, 49u);
}

}  // namespace

namespace {

TEST_F(SweepCliTest, BadKvQuantInSetExitsTwoNamingTheValue) {
  const std::string config = write_config("ok.toml", "method = \"exact-kvquant\"\nn_tokens = 8\n");
  const Result r = run_satalab("sweep " + config + " --dry-run --set kv_quant=int4-gx");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(line_count(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("'int4-gx'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("allowed:"), std::string::npos) << r.output;
}

// A sweep crossing SATA's P with exact-kvquant's schemes lists each method's own
// points only, records bytes per sequence for both, and the scheme none is
// exact attention at the point's policy (its total error equals the baseline).
TEST_F(SweepCliTest, SataAndExactKvQuantPointsRecordTheirBytesPerSequence) {
  const std::string config = write_config("kv.toml",
                                          "method = [\"sata\", \"exact-kvquant\"]\ntaylor_terms = [2, 3]\n"
                                          "kv_quant = [\"none\", \"int4-g4\", \"e4m3\"]\nd_key = 4\nn_tokens = 32\n"
                                          "precision = \"fp32\"\n");
  const std::string out = path("kv.h5");
  const Result r = run_satalab("sweep " + config + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const satalab::ResultsContents contents = satalab::read_results(out);
  ASSERT_EQ(contents.records.size(), 5u);
  struct Expected {
    const char* method;
    unsigned taylor_terms;
    const char* kv_quant;
    std::uint64_t bytes;
  };
  // SATA: (d_value + 1)·C(d_key + P - 1, P - 1) state elements × 4 bytes (fp32 sums):
  // P = 2: 5·5 = 25, P = 3: 5·15 = 75. exact-kvquant at n = 32, d = 4: none 32·8·4 bytes;
  // int4-g4: 2 × 64 code bytes + (4 channels × 8 token groups + 32 tokens × 1 channel group) × 4;
  // e4m3: 32·8 code bytes + an fp32 scale for K and for V.
  const Expected expected[] = {{"sata", 2, "none", 100},
                               {"sata", 3, "none", 300},
                               {"exact-kvquant", 2, "none", 1024},
                               {"exact-kvquant", 2, "int4-g4", 128 + 64 * 4},
                               {"exact-kvquant", 2, "e4m3", 256 + 8}};
  for (std::size_t i = 0; i < 5; ++i) {
    const auto& rec = contents.records[i];
    SCOPED_TRACE(i);
    EXPECT_EQ(rec.params.point_id, i);
    EXPECT_EQ(rec.params.method, expected[i].method);
    EXPECT_EQ(rec.params.taylor_terms, expected[i].taylor_terms);
    EXPECT_EQ(rec.params.kv_quant, expected[i].kv_quant);
    EXPECT_EQ(rec.result.bytes_per_sequence, expected[i].bytes);
    EXPECT_EQ(rec.result.status, "ok");
    const bool taylor = rec.params.method == "sata";
    EXPECT_EQ(rec.result.truncation.has_value(), taylor);
    EXPECT_EQ(rec.result.rounding.has_value(), taylor);
    ASSERT_TRUE(rec.result.baseline.has_value());
    EXPECT_EQ(std::isnan(rec.result.kv_key_scale), i != 4);
  }
  const auto& none = contents.records[2].result;
  EXPECT_EQ(none.total.abs_error.max, none.baseline->abs_error.max);
  EXPECT_EQ(none.total.rel_error.median, none.baseline->rel_error.median);
  EXPECT_GT(contents.records[3].result.total.rel_error.median, none.total.rel_error.median);
}

}  // namespace

namespace {

// Started by a launcher as one of several ranks (what mpirun and srun export).
Result run_as_rank_of(int ranks, const std::string& arguments) {
  return run_satalab_env("OMPI_COMM_WORLD_SIZE=" + std::to_string(ranks), arguments);
}

TEST_F(CliTest, CommandsOtherThanSweepRefuseToRunOncePerMpiRank) {
  const Result r = run_as_rank_of(3, "info --d-key 64 --taylor-terms 4");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(line_count(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("'satalab info' does not use MPI but was started as one of 3 ranks"), std::string::npos)
      << r.output;
  EXPECT_EQ(run_as_rank_of(1, "info --d-key 64 --taylor-terms 4").exit_code, 0);
}

TEST_F(CliTest, SweepBuiltWithoutMpiRefusesToRunAsOneOfSeveralRanks) {
  if (SATALAB_WITH_MPI) GTEST_SKIP() << "built with MPI: mpirun runs the sweep over its ranks";
  const std::string grid = path("grid.toml");
  std::ofstream(grid) << "method = \"exact\"\nn_tokens = 16\n";
  const Result r = run_as_rank_of(4, "sweep " + grid + " --out " + path("out.h5"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(line_count(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("built without MPI"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("out.h5")));
  EXPECT_FALSE(fs::exists(path("out.h5.journal")));
}

// A copy of `from` whose points `build` computed (as if another binary had
// written them): the records' build index points at it in the file's /builds.
void rewrite_as_build(const std::string& from, const std::string& to, const satalab::BuildInfo& build,
                      const std::vector<std::uint64_t>& keep) {
  satalab::ResultsContents contents = satalab::read_results(from);
  std::vector<satalab::PointRecord> records;
  for (satalab::PointRecord& r : contents.records) {
    if (std::find(keep.begin(), keep.end(), r.params.point_id) == keep.end()) continue;
    r.build = 0;
    records.push_back(std::move(r));
  }
  contents.metadata.builds = {build};
  satalab::write_results(to, contents.metadata, std::move(records));
}

satalab::BuildInfo other_isa() {
  satalab::BuildInfo b = satalab::build_info();
  b.isa = "x86-64-v9";
  return b;
}

constexpr const char* kFourPoints = "method = \"exact\"\nd_key = 4\nn_tokens = [8, 12, 16, 20]\nprecision = \"fp32\"\n";

TEST_F(SweepCliTest, ResumeOfAFileOfAnotherBuildIsRefusedUnlessMixedBuildsAreAllowedAndThenRecordsBoth) {
  const std::string config = write_config("grid.toml", kFourPoints);
  const std::string full = path("full.h5"), out = path("r.h5");
  ASSERT_EQ(run_satalab("sweep " + config + " --out " + full).exit_code, 0);
  rewrite_as_build(full, out, other_isa(), {0, 2});
  const std::string before = satalab::test::read_bytes(out);

  const Result refused = run_satalab("sweep " + config + " --out " + out + " --resume");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_EQ(line_count(refused.output), 1u) << refused.output;
  EXPECT_NE(refused.output.find("another build (instruction set 'x86-64-v9' vs '" + satalab::build_info().isa + "')"),
            std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find("--allow-mixed-builds"), std::string::npos) << refused.output;
  EXPECT_EQ(satalab::test::read_bytes(out), before);
  EXPECT_FALSE(fs::exists(out + ".journal"));

  const Result allowed = run_satalab("sweep " + config + " --out " + out + " --resume --allow-mixed-builds");
  ASSERT_EQ(allowed.exit_code, 0) << allowed.output;
  const satalab::ResultsContents got = satalab::read_results(out);
  ASSERT_EQ(got.metadata.builds.size(), 2u);
  EXPECT_EQ(got.metadata.builds[0].isa, "x86-64-v9");
  EXPECT_EQ(satalab::build_difference(got.metadata.builds[1], satalab::build_info()), "");
  ASSERT_EQ(got.records.size(), 4u);
  for (const satalab::PointRecord& r : got.records) {
    EXPECT_EQ(r.build, r.params.point_id % 2 == 0 ? 0u : 1u) << r.params.point_id;
  }
  // The points are those a single build computes: only the provenance differs.
  const satalab::ResultsContents reference = satalab::read_results(full);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(satalab::result_difference(got.records[i], reference.records[i]), "") << i;
  }
}

TEST_F(SweepCliTest, ResumeOfAFileThatRecordsNoBuildIsRefusedUnlessAllowed) {
  const std::string config = write_config("grid.toml", kFourPoints);
  const std::string out = path("r.h5");
  ASSERT_EQ(run_satalab("sweep " + config + " --out " + out).exit_code, 0);
  {  // as written before builds were recorded: no build attributes, /builds or /point_build
    const hid_t file = H5Fopen(out.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    for (const char* a : {"build_commit", "build_compiler", "build_flags", "build_isa", "build_exp_library"}) {
      EXPECT_GE(H5Adelete(file, a), 0) << a;
    }
    EXPECT_GE(H5Ldelete(file, "builds", H5P_DEFAULT), 0);
    EXPECT_GE(H5Ldelete(file, "point_build", H5P_DEFAULT), 0);
    ASSERT_GE(H5Fclose(file), 0);
  }
  const satalab::ResultsContents old = satalab::read_results(out);
  EXPECT_EQ(old.records.size(), 4u);
  ASSERT_EQ(old.metadata.builds.size(), 1u);
  EXPECT_EQ(old.metadata.builds[0].isa, "unknown");
  EXPECT_FALSE(old.writer.has_value());
  const Result refused = run_satalab("sweep " + config + " --out " + out + " --resume");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_EQ(line_count(refused.output), 1u) << refused.output;
  EXPECT_NE(refused.output.find("records no build"), std::string::npos) << refused.output;
  EXPECT_EQ(run_satalab("sweep " + config + " --out " + out + " --resume --allow-mixed-builds").exit_code, 0);
}

TEST_F(SweepCliTest, MergeOfFilesOfDifferentBuildsIsRefusedUnlessAllowedAndThenRecordsBoth) {
  const std::string config = write_config("grid.toml", kFourPoints);
  const std::string full = path("full.h5"), a = path("a.h5"), b = path("b.h5"), merged = path("m.h5");
  ASSERT_EQ(run_satalab("sweep " + config + " --out " + full).exit_code, 0);
  rewrite_as_build(full, a, satalab::build_info(), {0, 1});
  rewrite_as_build(full, b, other_isa(), {2, 3});

  const Result refused = run_satalab("merge --out " + merged + " " + a + " " + b);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_EQ(line_count(refused.output), 1u) << refused.output;
  EXPECT_NE(refused.output.find("another build than"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("instruction set"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("--allow-mixed-builds"), std::string::npos) << refused.output;
  EXPECT_FALSE(fs::exists(merged));

  const Result allowed = run_satalab("merge --out " + merged + " " + a + " " + b + " --allow-mixed-builds");
  ASSERT_EQ(allowed.exit_code, 0) << allowed.output;
  const satalab::ResultsContents got = satalab::read_results(merged);
  ASSERT_EQ(got.metadata.builds.size(), 2u);
  EXPECT_EQ(got.metadata.builds[1].isa, "x86-64-v9");
  ASSERT_EQ(got.records.size(), 4u);
  for (const satalab::PointRecord& r : got.records) EXPECT_EQ(r.build, r.params.point_id < 2 ? 0u : 1u);
  // Files of one build merge without the flag.
  rewrite_as_build(full, b, satalab::build_info(), {2, 3});
  EXPECT_EQ(run_satalab("merge --force --out " + merged + " " + a + " " + b).exit_code, 0);
  EXPECT_EQ(satalab::read_results(merged).metadata.builds.size(), 1u);
}

TEST_F(CliTest, HelpDocumentsShardAndMerge) {
  const Result sweep = run_satalab("sweep --help");
  EXPECT_EQ(sweep.exit_code, 0);
  EXPECT_NE(sweep.output.find("--shard"), std::string::npos) << sweep.output;
  const Result merge = run_satalab("merge --help");
  EXPECT_EQ(merge.exit_code, 0);
  for (const char* option : {"--out", "--force", "inputs"}) {
    EXPECT_NE(merge.output.find(option), std::string::npos) << option << " in " << merge.output;
  }
  const Result missing = run_satalab("merge --out " + path("m.h5") + " " + path("absent.h5"));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_EQ(line_count(missing.output), 1u) << missing.output;
  EXPECT_NE(missing.output.find("absent.h5"), std::string::npos) << missing.output;
  EXPECT_FALSE(fs::exists(path("m.h5")));
}

}  // namespace

namespace {

// Output paths are checked before any work: a missing directory is one line and
// exit 2, and nothing was computed first (no "computing" or progress line).
TEST_F(CliTest, EveryOutputPathInAMissingDirectoryIsRefusedBeforeAnyComputation) {
  const std::string missing = (dir_ / "no-such-dir" / "out.h5").string();
  const Result run = run_satalab("run --n-tokens 64 --save " + missing);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_EQ(run.output.find("computing"), std::string::npos) << run.output;
  EXPECT_EQ(line_count(run.output), 1u) << run.output;
  EXPECT_NE(run.output.find("directory '" + (dir_ / "no-such-dir").string() + "' does not exist"), std::string::npos)
      << run.output;

  std::ofstream(dir_ / "tiny.toml") << "method = \"sata\"\nn_tokens = 32\n";
  const Result sweep = run_satalab("sweep " + (dir_ / "tiny.toml").string() + " --out " + missing);
  EXPECT_EQ(sweep.exit_code, 2) << sweep.output;
  EXPECT_EQ(sweep.output.find("ETA"), std::string::npos) << sweep.output;
  EXPECT_EQ(line_count(sweep.output), 1u) << sweep.output;

  const Result bench = run_satalab("bench --sections prefill -d 8 --prefill-tokens 256 --out " + missing);
  EXPECT_EQ(bench.exit_code, 2) << bench.output;
  EXPECT_EQ(line_count(bench.output), 1u) << bench.output;

  const Result merge = run_satalab("merge --out " + missing + " " + (dir_ / "absent.h5").string());
  EXPECT_EQ(merge.exit_code, 2) << merge.output;
  EXPECT_NE(merge.output.find("does not exist"), std::string::npos) << merge.output;
  EXPECT_FALSE(fs::exists(dir_ / "no-such-dir"));
}

TEST_F(CliTest, RunAppliesWorkloadModifiersAndRefusesUnknownOnes) {
  const Result plain = run_satalab("run --d-key 8 --n-tokens 256 --heads 2");
  const Result sink = run_satalab("run --d-key 8 --n-tokens 256 --heads 2 --modifiers sink --sink-logit 12");
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  ASSERT_EQ(sink.exit_code, 0) << sink.output;
  EXPECT_NE(sink.output.find("modifiers=sink"), std::string::npos) << sink.output;
  // A sink logit of 12 is the largest |s| up to its spread (12/4 per standard deviation).
  const auto max_abs = [](const std::string& out) {
    const std::size_t at = out.find("max|s|=");
    return at == std::string::npos ? -1.0 : std::stod(out.substr(at + 7));
  };
  EXPECT_LT(max_abs(plain.output), 8.0) << plain.output;
  EXPECT_GT(max_abs(sink.output), 12.0) << sink.output;
  const Result bad = run_satalab("run --modifiers rope+rotary");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.output, "satalab: error: workload modifier 'rotary' is unknown (allowed: rope, outliers, key-bias, sink)\n");
}

}  // namespace
