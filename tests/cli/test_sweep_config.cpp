// Sweep-file parsing (experiments/sweep_config.hpp): expansion of list-valued
// keys into a Cartesian grid in the documented order, --set overrides, the
// normalised text, one-line errors naming the key and its line, and the
// shipped configs in experiments/configs/.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "satalab/error.hpp"
#include "sweep_config.hpp"

namespace {

namespace fs = std::filesystem;
using satalab::InvalidArgument;
using satalab::PointParams;
using satalab::cli::load_sweep_config;
using satalab::cli::parse_sweep_config;
using satalab::cli::SweepConfig;

SweepConfig parse(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return parse_sweep_config(text, "sweep.toml", overrides);
}

// Expects InvalidArgument with a one-line message containing every needle.
void expect_error(const std::string& text, const std::vector<std::string>& overrides,
                  const std::vector<std::string>& needles) {
  try {
    (void)parse(text, overrides);
    ADD_FAILURE() << "no error for:\n" << text;
  } catch (const InvalidArgument& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (const std::string& needle : needles) {
      EXPECT_NE(message.find(needle), std::string::npos) << "expected '" << needle << "' in: " << message;
    }
  }
}

TEST(SweepConfig, ScalarOnlyConfigGivesOnePointWithEveryField) {
  const SweepConfig c = parse(R"(
name = "all scalars"
description = "every key once"
method = "taylor-quadratic"
taylor_terms = 5
d_key = 12
d_value = 6
heads = 3
n_tokens = 777
scale = 2
precision = "fp16-acc32"
truth = "mp256"
causal = false
chunk = 32
placement = "symmetric"
workload = "heavy-tailed"
dof = 4.5
needle_logit = -3
seed = 0
softmax_denominator = 2.5
)");
  ASSERT_EQ(c.points.size(), 1u);
  EXPECT_TRUE(c.axes.empty());
  const PointParams& p = c.points[0];
  EXPECT_EQ(p.point_id, 0u);
  EXPECT_EQ(p.method, "taylor-quadratic");
  EXPECT_EQ(p.taylor_terms, 5u);
  EXPECT_EQ(p.d_key, 12u);
  EXPECT_EQ(p.d_value, 6u);
  EXPECT_EQ(p.heads, 3u);
  EXPECT_EQ(p.n_tokens, 777u);
  EXPECT_EQ(p.scale, 2.0);
  EXPECT_EQ(p.precision, "fp16-acc32");
  EXPECT_EQ(p.truth, "mp256");
  EXPECT_FALSE(p.causal);
  EXPECT_EQ(p.chunk, 32u);
  EXPECT_EQ(p.placement, "symmetric");
  EXPECT_EQ(p.workload, "heavy-tailed");
  EXPECT_EQ(p.dof, 4.5);
  EXPECT_EQ(p.needle_logit, -3.0);
  EXPECT_TRUE(p.input_file.empty());
  EXPECT_EQ(p.seed, 0u);
  EXPECT_EQ(p.softmax_denominator, 2.5);
}

TEST(SweepConfig, EmptyConfigGivesOnePointWithTheDefaults) {
  const SweepConfig c = parse("# nothing\n");
  ASSERT_EQ(c.points.size(), 1u);
  const PointParams defaults;
  EXPECT_EQ(c.points[0].method, defaults.method);
  EXPECT_EQ(c.points[0].taylor_terms, defaults.taylor_terms);
  EXPECT_EQ(c.points[0].d_value, c.points[0].d_key);
  EXPECT_EQ(c.text, "");
}

TEST(SweepConfig, TwoListAxesGiveTheProductInCanonicalOrderWithConsecutiveIds) {
  // precision comes first in the file, but taylor_terms precedes it in the
  // canonical order, so taylor_terms is the slowest axis.
  const SweepConfig c = parse(R"(
precision = ["fp32", "fp16-acc32"]
taylor_terms = [2, 3, 4]
d_key = 4
)");
  EXPECT_EQ(c.axes, (std::vector<std::string>{"precision", "taylor_terms"}));
  ASSERT_EQ(c.points.size(), 6u);
  const std::vector<std::pair<unsigned, std::string>> expected = {
      {2, "fp32"}, {2, "fp16-acc32"}, {3, "fp32"}, {3, "fp16-acc32"}, {4, "fp32"}, {4, "fp16-acc32"}};
  for (std::size_t i = 0; i < c.points.size(); ++i) {
    EXPECT_EQ(c.points[i].point_id, i);
    EXPECT_EQ(c.points[i].taylor_terms, expected[i].first) << i;
    EXPECT_EQ(c.points[i].precision, expected[i].second) << i;
    EXPECT_EQ(c.points[i].d_key, 4u);
  }
}

TEST(SweepConfig, KeyOrderCommentsAndLayoutDoNotChangePointsOrText) {
  const SweepConfig a = parse("taylor_terms = [2, 3]\nscale = [1, 2]\nmethod = \"sata\"\n");
  const SweepConfig b = parse("# a comment\nmethod = 'sata'\nscale = [\n  1.0,\n  2.0,\n]\n\ntaylor_terms=[2,3]\n");
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.text, "method = \"sata\"\ntaylor_terms = [2, 3]\nscale = [1.0, 2.0]\n");
  ASSERT_EQ(a.points.size(), b.points.size());
  for (std::size_t i = 0; i < a.points.size(); ++i) {
    EXPECT_EQ(a.points[i].taylor_terms, b.points[i].taylor_terms);
    EXPECT_EQ(a.points[i].scale, b.points[i].scale);
  }
  EXPECT_NE(a.axes, b.axes);  // axes keep the file order
}

TEST(SweepConfig, NormalisedTextParsesBackToTheSamePoints) {
  const SweepConfig a = parse(
      "name = \"q\\\"uote\"\nmethod = [\"sata\", \"exact\"]\nscale = [0.1, 1e-5, 3]\ncausal = [true, false]\n"
      "needle_logit = -2.5\nseed = 9\n");
  const SweepConfig b = parse(a.text);
  EXPECT_EQ(a.text, b.text);
  ASSERT_EQ(a.points.size(), 12u);
  ASSERT_EQ(b.points.size(), 12u);
  for (std::size_t i = 0; i < a.points.size(); ++i) {
    EXPECT_EQ(a.points[i].method, b.points[i].method);
    EXPECT_EQ(a.points[i].scale, b.points[i].scale);
    EXPECT_EQ(a.points[i].causal, b.points[i].causal);
  }
}

TEST(SweepConfig, AxesAMethodDoesNotReadDoNotMultiplyItsPoints) {
  // sata reads taylor_terms, exact-kvquant reads kv_quant, exact reads neither.
  const SweepConfig c = parse(R"(
method = ["sata", "exact-kvquant", "exact"]
taylor_terms = [2, 3, 4]
kv_quant = ["none", "int8"]
precision = ["fp32", "fp16-acc32"]
)");
  const std::vector<std::tuple<std::string, unsigned, std::string, std::string>> expected = {
      {"sata", 2, "none", "fp32"},          {"sata", 2, "none", "fp16-acc32"},
      {"sata", 3, "none", "fp32"},          {"sata", 3, "none", "fp16-acc32"},
      {"sata", 4, "none", "fp32"},          {"sata", 4, "none", "fp16-acc32"},
      {"exact-kvquant", 2, "none", "fp32"}, {"exact-kvquant", 2, "none", "fp16-acc32"},
      {"exact-kvquant", 2, "int8", "fp32"}, {"exact-kvquant", 2, "int8", "fp16-acc32"},
      {"exact", 2, "none", "fp32"},         {"exact", 2, "none", "fp16-acc32"}};
  ASSERT_EQ(c.points.size(), expected.size());
  for (std::size_t i = 0; i < c.points.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(c.points[i].point_id, i);
    EXPECT_EQ(c.points[i].method, std::get<0>(expected[i]));
    EXPECT_EQ(c.points[i].taylor_terms, std::get<1>(expected[i]));
    EXPECT_EQ(c.points[i].kv_quant, std::get<2>(expected[i]));
    EXPECT_EQ(c.points[i].precision, std::get<3>(expected[i]));
  }
  // A scalar kv_quant is recorded as "none" for methods without a quantized cache.
  EXPECT_EQ(parse("method = \"sata\"\nkv_quant = \"int8\"\n").points[0].kv_quant, "none");
  EXPECT_EQ(parse("method = \"exact-kvquant\"\nkv_quant = \"int8\"\n").points[0].kv_quant, "int8");
}

TEST(SweepConfig, DValueDefaultsToDKeyPerPoint) {
  const SweepConfig c = parse("d_key = [4, 8, 16]\n");
  ASSERT_EQ(c.points.size(), 3u);
  for (const PointParams& p : c.points) EXPECT_EQ(p.d_value, p.d_key);
  const SweepConfig explicit_value = parse("d_key = [4, 8]\nd_value = 2\n");
  for (const PointParams& p : explicit_value.points) EXPECT_EQ(p.d_value, 2u);
}

TEST(SweepConfig, HeadsTimesDKeySetsHeadsPerPoint) {
  const SweepConfig c = parse("d_key = [8, 16, 32, 64]\nheads_times_d_key = 64\n");
  ASSERT_EQ(c.points.size(), 4u);
  const unsigned heads[] = {8, 4, 2, 1};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(c.points[i].heads, heads[i]);
    EXPECT_EQ(c.points[i].heads * c.points[i].d_key, 64u);
  }
}

TEST(SweepConfig, SetOverridesScalarToListAndListToScalarAndTextReflectsIt) {
  const std::string file = "taylor_terms = 4\nprecision = [\"fp32\", \"fp16\"]\n";
  const SweepConfig c = parse(file, {"taylor_terms=[3, 5]", "precision=\"bf16\""});
  ASSERT_EQ(c.points.size(), 2u);
  EXPECT_EQ(c.points[0].taylor_terms, 3u);
  EXPECT_EQ(c.points[1].taylor_terms, 5u);
  for (const PointParams& p : c.points) EXPECT_EQ(p.precision, "bf16");
  EXPECT_EQ(c.axes, std::vector<std::string>{"taylor_terms"});
  EXPECT_EQ(c.text, "taylor_terms = [3, 5]\nprecision = \"bf16\"\n");
  EXPECT_NE(c.text, parse(file).text);
}

TEST(SweepConfig, SetAddsAbsentKeysAndTheLastSetOfAKeyWins) {
  const SweepConfig c = parse("d_key = 4\n", {"seed=[1,2]", "n_tokens=10", "n_tokens = 20"});
  ASSERT_EQ(c.points.size(), 2u);
  EXPECT_EQ(c.points[0].n_tokens, 20u);
  EXPECT_EQ(c.points[1].seed, 2u);
  EXPECT_EQ(c.axes, std::vector<std::string>{"seed"});
  EXPECT_EQ(c.text, "d_key = 4\nn_tokens = 20\nseed = [1, 2]\n");
}

TEST(SweepConfig, SetTakesABareWordAsAString) {
  const SweepConfig c = parse("", {"precision=fp16-acc32", "method=taylor-quadratic"});
  EXPECT_EQ(c.points[0].precision, "fp16-acc32");
  EXPECT_EQ(c.points[0].method, "taylor-quadratic");
}

TEST(SweepConfig, IntegersGivenForNumberKeysAreNormalisedToFloats) {
  EXPECT_EQ(parse("scale = 1\n").text, parse("scale = 1.0\n").text);
  EXPECT_EQ(parse("scale = 1\n").text, "scale = 1.0\n");
}

TEST(SweepConfig, InputFileIsResolvedAgainstTheConfigDirectory) {
  const fs::path dir = fs::temp_directory_path() / ("satalab-sweep-config-" + std::to_string(::getpid()));
  fs::create_directories(dir / "inputs");
  std::ofstream(dir / "inputs" / "qkv.h5") << "x";
  std::ofstream(dir / "sweep.toml") << "workload = \"file\"\ninput_file = \"inputs/qkv.h5\"\n";
  const SweepConfig c = load_sweep_config((dir / "sweep.toml").string(), {});
  ASSERT_EQ(c.points.size(), 1u);
  EXPECT_EQ(fs::path(c.points[0].input_file), dir / "inputs" / "qkv.h5");
  EXPECT_NE(c.text.find("\"inputs/qkv.h5\""), std::string::npos) << c.text;  // as written
  std::ofstream(dir / "missing.toml") << "workload = \"file\"\ninput_file = \"inputs/nope.h5\"\n";
  try {
    (void)load_sweep_config((dir / "missing.toml").string(), {});
    ADD_FAILURE() << "no error for a missing input_file";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("missing.toml:2: 'input_file'"), std::string::npos) << error.what();
  }
  fs::remove_all(dir);
}

TEST(SweepConfigErrors, UnknownKeyNamesKeyLineAndAllowedKeys) {
  expect_error("d_key = 4\n\ntaylor_term = 3\n", {},
               {"sweep.toml:3:", "unknown key 'taylor_term'", "did you mean 'taylor_terms'", "allowed: method"});
}

TEST(SweepConfigErrors, StringForTaylorTermsNamesKeyAndLine) {
  expect_error("d_key = 4\ntaylor_terms = \"four\"\n", {}, {"sweep.toml:2:", "'taylor_terms' must be an integer"});
}

TEST(SweepConfigErrors, FloatForTaylorTermsIsAWrongType) {
  expect_error("taylor_terms = 4.0\n", {}, {"sweep.toml:1:", "'taylor_terms' must be an integer >= 1, got 4.0"});
}

TEST(SweepConfigErrors, EmptyListNamesKeyAndLine) {
  expect_error("d_key = 4\n\n\n\nprecision = []\n", {}, {"sweep.toml:5: 'precision' list is empty"});
}

TEST(SweepConfigErrors, NegativeNTokensNamesKeyAndLine) {
  expect_error("n_tokens = -5\n", {}, {"sweep.toml:1:", "'n_tokens' must be an integer >= 1, got -5"});
}

TEST(SweepConfigErrors, ZeroHeadsNamesKeyAndLine) {
  expect_error("d_key = 4\nheads = 0\n", {}, {"sweep.toml:2:", "'heads' must be an integer >= 1, got 0"});
}

TEST(SweepConfigErrors, BadListElementNamesTheElementsLine) {
  expect_error("taylor_terms = [\n  3,\n  -2,\n]\n", {}, {"sweep.toml:3:", "'taylor_terms'", "got -2"});
}

TEST(SweepConfigErrors, UnknownPrecisionNamesKeyLineAndValue) {
  expect_error("precision = [\"fp32\", \"fp17\"]\n", {}, {"sweep.toml:1:", "'precision'", "fp17", "allowed"});
}

TEST(SweepConfigErrors, UnknownMethodNamesKeyLineAndValue) {
  expect_error("\nmethod = \"softmax\"\n", {}, {"sweep.toml:2:", "'method'", "softmax", "allowed"});
}

TEST(SweepConfigErrors, TruthMustBeAutoFp64OrMultiprecision) {
  expect_error("truth = \"fp32\"\n", {}, {"sweep.toml:1:", "'truth'", "fp32"});
}

TEST(SweepConfigErrors, NonPositiveScaleAndSmallDofAreRefused) {
  expect_error("scale = 0\n", {}, {"sweep.toml:1:", "'scale' must be a finite number > 0"});
  expect_error("dof = 2\n", {}, {"sweep.toml:1:", "'dof' must be a finite number > 2"});
  expect_error("needle_logit = inf\n", {}, {"sweep.toml:1:", "'needle_logit' must be a finite number"});
}

TEST(SweepConfigErrors, TablesAndNestedListsAreRefused) {
  expect_error("d_key = [[4, 8]]\n", {}, {"sweep.toml:1:", "'d_key'", "list of lists"});
  expect_error("d_key = 4\n[pairs]\nheads = 2\n", {}, {"sweep.toml:2:", "unknown key 'pairs'"});
}

TEST(SweepConfigErrors, SetWithoutEqualsNamesTheOverride) {
  expect_error("d_key = 4\n", {"taylor_terms"}, {"--set 'taylor_terms'", "expected key=value"});
}

TEST(SweepConfigErrors, SetWithBadValueNamesKey) {
  expect_error("", {"taylor_terms=-2"}, {"--set 'taylor_terms=-2'", "'taylor_terms' must be an integer >= 1"});
  expect_error("", {"taylor_terms=[3,"}, {"--set 'taylor_terms=[3,'", "'taylor_terms'", "not valid TOML"});
  expect_error("", {"taylor_term=3"}, {"--set 'taylor_term=3'", "unknown key 'taylor_term'"});
}

TEST(SweepConfigErrors, MessagesQuotingControlCharactersStayOnOneLine) {
  expect_error("", {"seed=1\nx=2"}, {"--set 'seed=1\\nx=2'", "'seed'"});
  expect_error("\"a\\nb\" = 1\n", {}, {"sweep.toml:1:", "unknown key 'a\\nb'"});
  expect_error("method = \"sa\\nta\"\n", {}, {"sweep.toml:1:", "'method'"});
}

TEST(SweepConfigErrors, WorkloadFileWithoutInputFileNamesKeyAndLine) {
  expect_error("d_key = 4\nworkload = [\"gaussian\", \"file\"]\n", {},
               {"sweep.toml:2:", "'workload'", "'input_file'"});
}

TEST(SweepConfigErrors, InputFileWithoutFileWorkloadIsRefused) {
  expect_error("input_file = \"x.h5\"\n", {}, {"sweep.toml:1:", "'input_file'"});
}

TEST(SweepConfigErrors, TomlSyntaxErrorNamesFileAndLine) {
  expect_error("d_key = 4\ntaylor_terms = [3, 4\n", {}, {"sweep.toml:", "TOML syntax error"});
  expect_error("d_key = 4\n\nd_key = 5\n", {}, {"sweep.toml:3:", "TOML syntax error"});
}

TEST(SweepConfigErrors, HeadsTimesDKeyNotDivisibleNamesIt) {
  expect_error("d_key = [8, 48]\nheads_times_d_key = 64\n", {},
               {"sweep.toml:2:", "'heads_times_d_key' = 64 is not divisible by d_key = 48"});
}

TEST(SweepConfigErrors, HeadsTogetherWithHeadsTimesDKeyIsRefused) {
  expect_error("heads_times_d_key = 64\nheads = 2\n", {}, {"sweep.toml:2:", "'heads'", "'heads_times_d_key'"});
}

TEST(SweepConfigErrors, GridOverTenMillionPointsIsRefused) {
  std::string list = "[";
  for (int i = 1; i <= 216; ++i) list += std::to_string(i) + (i < 216 ? ", " : "]");
  // 216^3 = 10'077'696 points.
  expect_error("seed = " + list + "\nn_tokens = " + list + "\nchunk = " + list + "\n", {},
               {"sweep.toml", "more than 10000000 points"});
}

TEST(SweepConfigErrors, NameMustBeAStringNotAnAxis) {
  expect_error("name = [\"a\", \"b\"]\n", {}, {"sweep.toml:1:", "'name' must be a string"});
}

// ---- the shipped configs ---------------------------------------------------

fs::path configs_dir() { return fs::path(SATALAB_SOURCE_DIR) / "experiments" / "configs"; }

TEST(SweepConfigShipped, EveryShippedConfigParses) {
  std::set<std::string> seen;
  for (const auto& entry : fs::directory_iterator(configs_dir())) {
    if (entry.path().extension() != ".toml") continue;
    seen.insert(entry.path().filename().string());
    SCOPED_TRACE(entry.path().string());
    const SweepConfig c = load_sweep_config(entry.path().string(), {});
    EXPECT_FALSE(c.points.empty());
    EXPECT_NE(c.text.find("name = "), std::string::npos);
    for (std::size_t i = 0; i < c.points.size(); ++i) ASSERT_EQ(c.points[i].point_id, i);
  }
  for (const char* name : {"paper_error.toml", "paper_error_quick.toml", "scale_sweep.toml", "context_sweep.toml",
                           "needle.toml", "taylor_vs_quantized.toml", "tiny.toml"}) {
    EXPECT_TRUE(seen.count(name)) << name << " missing from " << configs_dir();
  }
}

TEST(SweepConfigShipped, PaperErrorQuickHas16PointsWithHeadsTimesDKey64) {
  const SweepConfig c = load_sweep_config((configs_dir() / "paper_error_quick.toml").string(), {});
  ASSERT_EQ(c.points.size(), 16u);
  std::set<unsigned> d_keys, terms;
  for (const PointParams& p : c.points) {
    EXPECT_EQ(p.heads * p.d_key, 64u);
    EXPECT_EQ(p.d_value, p.d_key);
    EXPECT_EQ(p.n_tokens, 4096u);
    EXPECT_EQ(p.precision, "fp16-acc32");
    EXPECT_EQ(p.truth, "fp64");
    EXPECT_TRUE(p.causal);
    d_keys.insert(p.d_key);
    terms.insert(p.taylor_terms);
  }
  EXPECT_EQ(d_keys, (std::set<unsigned>{8, 16, 32, 64}));
  EXPECT_EQ(terms, (std::set<unsigned>{3, 4, 5, 6}));
}

TEST(SweepConfigShipped, PaperErrorMatchesTheQuickGridAt102400Tokens) {
  const SweepConfig full = load_sweep_config((configs_dir() / "paper_error.toml").string(), {});
  const SweepConfig quick = load_sweep_config((configs_dir() / "paper_error_quick.toml").string(), {});
  ASSERT_EQ(full.points.size(), quick.points.size());
  for (std::size_t i = 0; i < full.points.size(); ++i) {
    EXPECT_EQ(full.points[i].n_tokens, 102400u);
    EXPECT_EQ(full.points[i].d_key, quick.points[i].d_key);
    EXPECT_EQ(full.points[i].heads, quick.points[i].heads);
    EXPECT_EQ(full.points[i].taylor_terms, quick.points[i].taylor_terms);
  }
}

TEST(SweepConfigShipped, TaylorVsQuantizedCrossesSataPWithEveryKvSchemeOnSharedInputs) {
  const SweepConfig c = load_sweep_config((configs_dir() / "taylor_vs_quantized.toml").string(), {});
  std::set<std::tuple<unsigned, std::uint64_t, std::string>> sata, kvquant;  // (d_key, n_tokens, variant@precision)
  for (const PointParams& p : c.points) {
    EXPECT_EQ(p.workload, "gaussian");
    EXPECT_EQ(p.truth, "fp64");
    EXPECT_EQ(p.seed, 1u);
    EXPECT_EQ(p.heads, 1u);
    EXPECT_TRUE(p.causal);
    if (p.method == "sata") {
      EXPECT_EQ(p.kv_quant, "none");
      sata.insert({p.d_key, p.n_tokens, std::to_string(p.taylor_terms) + "@" + p.precision});
    } else {
      EXPECT_EQ(p.method, "exact-kvquant");
      kvquant.insert({p.d_key, p.n_tokens, p.kv_quant + "@" + p.precision});
    }
  }
  std::size_t expected_sata = 0, expected_kvquant = 0;
  for (unsigned d : {8u, 16u, 32u, 64u}) {
    for (std::uint64_t n : {1024u, 16384u}) {
      for (const char* precision : {"fp16-acc32", "fp32"}) {
        for (int P = 2; P <= 6; ++P, ++expected_sata) {
          EXPECT_TRUE(sata.count({d, n, std::to_string(P) + "@" + precision})) << d << " " << n << " P=" << P;
        }
        for (const char* scheme : {"none", "fp16", "bf16", "e4m3", "e5m2", "int8", "int4-g32", "int2-g32"}) {
          EXPECT_TRUE(kvquant.count({d, n, std::string(scheme) + "@" + precision})) << d << " " << n << " " << scheme;
          ++expected_kvquant;
        }
      }
    }
  }
  EXPECT_EQ(sata.size(), expected_sata);
  EXPECT_EQ(kvquant.size(), expected_kvquant);
  EXPECT_EQ(c.points.size(), expected_sata + expected_kvquant);
}

TEST(SweepConfigShipped, TinyIsAFewSmallPoints) {
  const SweepConfig c = load_sweep_config((configs_dir() / "tiny.toml").string(), {});
  EXPECT_GE(c.points.size(), 4u);
  EXPECT_LE(c.points.size(), 8u);
  for (const PointParams& p : c.points) {
    EXPECT_EQ(p.n_tokens, 64u);
    EXPECT_EQ(p.d_key, 4u);
  }
}

}  // namespace

// Long-context drift: a state_accumulation axis multiplies only sata points
// (4 modes per P), a state_block axis only the blocked ones.
TEST(SweepConfig, StateAccumulationAxisMultipliesOnlySataPointsAndStateBlockOnlyBlocked) {
  const SweepConfig c = parse(R"(
method = ["sata", "exact"]
taylor_terms = [2, 3]
state_accumulation = ["plain", "compensated", "blocked", "fp64"]
state_block = [16, 64]
)");
  const std::vector<std::tuple<std::string, unsigned, std::string, unsigned>> expected = {
      {"sata", 2, "plain", 1024}, {"sata", 2, "compensated", 1024}, {"sata", 2, "blocked", 16},
      {"sata", 2, "blocked", 64}, {"sata", 2, "fp64", 1024},        {"sata", 3, "plain", 1024},
      {"sata", 3, "compensated", 1024}, {"sata", 3, "blocked", 16}, {"sata", 3, "blocked", 64},
      {"sata", 3, "fp64", 1024},  {"exact", 2, "plain", 1024}};
  ASSERT_EQ(c.points.size(), expected.size());
  for (std::size_t i = 0; i < c.points.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(c.points[i].point_id, i);
    EXPECT_EQ(c.points[i].method, std::get<0>(expected[i]));
    EXPECT_EQ(c.points[i].taylor_terms, std::get<1>(expected[i]));
    EXPECT_EQ(c.points[i].state_accumulation, std::get<2>(expected[i]));
    EXPECT_EQ(c.points[i].state_block, std::get<3>(expected[i]));
  }
  // Without a state_block axis: 4 sata points per P and 1 exact point.
  EXPECT_EQ(parse("method = [\"sata\", \"exact\"]\ntaylor_terms = [2, 3]\n"
                  "state_accumulation = [\"plain\", \"compensated\", \"blocked\", \"fp64\"]\n")
                .points.size(),
            9u);
  EXPECT_EQ(parse("method = \"exact\"\nstate_accumulation = \"fp64\"\n").points[0].state_accumulation, "plain");
}

TEST(SweepConfigErrors, UnknownStateAccumulationAndZeroStateBlockNameKeyAndLine) {
  expect_error("state_accumulation = \"kahan\"\n", {}, {"sweep.toml:1:", "state_accumulation", "'kahan'"});
  expect_error("state_block = 0\n", {}, {"sweep.toml:1:", "state_block"});
}
