// Sweep results file (docs/results-schema.md): HDF5 round trip, row order,
// open modes, journal recovery after torn writes and crashes, failed writes,
// and the three-line Python/pandas read.
#include "satalab/io/results_file.hpp"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../support/satalab_test.hpp"
#include "satalab/error.hpp"

namespace fs = std::filesystem;
using satalab::ErrorMetrics;
using satalab::InvalidArgument;
using satalab::OpenMode;
using satalab::PointRecord;
using satalab::Quantiles;
using satalab::ResultsFile;
using satalab::SweepMetadata;

namespace {

using satalab::test::has_temp_files;
using satalab::test::read_bytes;
using satalab::test::TempDir;
using satalab::test::write_bytes;


int run_shell(const std::string& command) {
  const int status = std::system(command.c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

double from_bits(std::uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

std::uint64_t bits(double d) {
  std::uint64_t b;
  std::memcpy(&b, &d, 8);
  return b;
}

// Values that a lossy round trip would change: NaNs with payloads and sign,
// infinities, signed zero, subnormals, extremes.
const double kSpecial[] = {from_bits(0x7ff80000000000abULL), from_bits(0xfff8000000000000ULL),
                           std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                           -0.0, 4.9406564584124654e-324, std::numeric_limits<double>::max(), 0.1};

SweepMetadata make_metadata() {
  SweepMetadata m;
  m.satalab_version = "0.1.0";
  m.git_commit = "abcdef123456";
  m.command_line = "satalab sweep grid.toml --out r.h5";
  m.config_text = "method = [\"sata\", \"exact\"]\nn_tokens = [64, 128]\n# \u00b5 comment\n";
  m.start_time = "2024-05-01T12:00:00Z";
  m.total_points = 8;
  return m;
}

ErrorMetrics make_metrics(std::uint64_t seed, std::size_t blocks) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(1e-9, 1.0);
  const auto q = [&] { return Quantiles{u(rng), u(rng), u(rng), u(rng), u(rng)}; };
  ErrorMetrics m;
  m.elements = 1000 + seed;
  m.abs_error = q();
  m.rel_error = q();
  m.normwise_rel_error = q();
  m.rel_error.max = kSpecial[seed % 8];
  m.normwise_rel_error.p99 = kSpecial[(seed + 3) % 8];
  m.rel_undefined = seed * 3;
  m.non_finite_outputs = seed % 5;
  for (auto* h : {&m.abs_histogram, &m.rel_histogram}) {
    for (auto& c : h->counts) c = rng() % 1000;
    h->zeros = rng() % 7;
    h->underflow = rng() % 11;
    h->overflow = rng() % 13;
    h->non_finite = (rng() % 3) + (std::uint64_t{1} << 40);
  }
  m.abs_histogram.counts[0] = seed * 1000 + 7;  // checked by the Python test
  for (std::size_t b = 0; b < blocks; ++b) {
    satalab::PositionSummary s;
    s.first_token = b * 10;
    s.last_token = b * 10 + 9;
    s.abs_error = q();
    s.rel_error = q();
    s.rel_error.p05 = kSpecial[(seed + b) % 8];
    m.by_position.push_back(s);
  }
  return m;
}

// A record that exercises every field; `variant` selects which optional parts exist.
PointRecord make_record(std::uint64_t id, int variant = 0) {
  PointRecord r;
  auto& p = r.params;
  p.point_id = id;
  p.method = id % 3 == 1 ? "exact" : "sata";
  p.taylor_terms = static_cast<std::uint32_t>(2 + id % 4);
  p.d_key = 8;
  p.d_value = 3;
  p.heads = 2;
  p.n_tokens = 5;
  p.scale = 0.5 + static_cast<double>(id);
  p.precision = id % 2 == 0 ? "bf16" : "fp32";
  p.truth = "auto";
  p.causal = id % 2 == 0;
  p.chunk = static_cast<std::uint32_t>(id * 7);
  p.placement = "paper";
  p.workload = variant == 2 ? "file" : "needle";
  p.dof = 3.0;
  p.needle_logit = -0.0;
  p.input_file = variant == 2 ? "/data/q k v \u00e9.h5" : "";
  p.seed = 0xFFFFFFFFFFFFFFFFULL - id;
  p.softmax_denominator = 0;
  p.kv_quant = id % 3 == 1 ? "int4-g32-r128" : "none";
  auto& s = r.result;
  s.status = variant == 3 ? "failed: state of 1e12 elements exceeds the memory limit" : "ok";
  s.truth_used = variant == 3 ? "" : "mp128";
  s.total = make_metrics(id * 4 + 1, variant == 1 ? 3 : satalab::kPositionBlocks);
  if (variant == 0 || variant == 2) {
    s.truncation = make_metrics(id * 4 + 2, 16);
    s.rounding = make_metrics(id * 4 + 3, 0);
  }
  if (variant == 0 || variant == 1) s.baseline = make_metrics(id * 4 + 4, 5);
  s.normalisers = {1e-300, -2.5, 3, 4};
  s.logit_max_abs = 12.25;
  s.logit_std = from_bits(0x7ff8000000000001ULL);
  s.needle_hit_rate = variant == 1 ? std::numeric_limits<double>::quiet_NaN() : 0.75;
  s.state_elements = 123456789012345ULL;
  s.flops_per_token = 42 + id;
  s.kv_cache_elements = 0;
  s.bytes_per_sequence = 22528 + id;
  s.kv_key_scale = variant == 1 ? 0.25 : std::numeric_limits<double>::quiet_NaN();
  s.kv_value_scale = -0.0;
  s.wall_s = 0.125 * static_cast<double>(id + 1);
  s.truth_wall_s = 1e-3;
  if (variant == 2) {
    const std::size_t n = p.heads * p.n_tokens;
    for (std::size_t i = 0; i < n * p.d_value; ++i) {
      s.y.push_back(kSpecial[i % 8] * 0.5);
      s.y_truth.push_back(static_cast<double>(i) / 7.0);
    }
    for (std::size_t i = 0; i < n; ++i) s.z.push_back(static_cast<double>(i) + 0.5);
  }
  return r;
}

// Every field compared bit for bit; returns the names of the differing ones.
class Diff {
 public:
  void num(const std::string& name, double a, double b) {
    if (bits(a) != bits(b)) fields.push_back(name);
  }
  template <class T>
  void eq(const std::string& name, const T& a, const T& b) {
    if (!(a == b)) fields.push_back(name);
  }
  void quantiles(const std::string& name, const Quantiles& a, const Quantiles& b) {
    num(name + ".median", a.median, b.median);
    num(name + ".p05", a.p05, b.p05);
    num(name + ".p95", a.p95, b.p95);
    num(name + ".p99", a.p99, b.p99);
    num(name + ".max", a.max, b.max);
  }
  void histogram(const std::string& name, const satalab::Log10Histogram& a, const satalab::Log10Histogram& b) {
    eq(name + ".counts", a.counts, b.counts);
    eq(name + ".zeros", a.zeros, b.zeros);
    eq(name + ".underflow", a.underflow, b.underflow);
    eq(name + ".overflow", a.overflow, b.overflow);
    eq(name + ".non_finite", a.non_finite, b.non_finite);
  }
  void metrics(const std::string& name, const ErrorMetrics& a, const ErrorMetrics& b) {
    eq(name + ".elements", a.elements, b.elements);
    quantiles(name + ".abs_error", a.abs_error, b.abs_error);
    quantiles(name + ".rel_error", a.rel_error, b.rel_error);
    quantiles(name + ".normwise_rel_error", a.normwise_rel_error, b.normwise_rel_error);
    eq(name + ".rel_undefined", a.rel_undefined, b.rel_undefined);
    eq(name + ".non_finite_outputs", a.non_finite_outputs, b.non_finite_outputs);
    histogram(name + ".abs_histogram", a.abs_histogram, b.abs_histogram);
    histogram(name + ".rel_histogram", a.rel_histogram, b.rel_histogram);
    eq(name + ".by_position.size", a.by_position.size(), b.by_position.size());
    for (std::size_t i = 0; i < std::min(a.by_position.size(), b.by_position.size()); ++i) {
      const std::string at = name + ".by_position[" + std::to_string(i) + "]";
      eq(at + ".first_token", a.by_position[i].first_token, b.by_position[i].first_token);
      eq(at + ".last_token", a.by_position[i].last_token, b.by_position[i].last_token);
      quantiles(at + ".abs_error", a.by_position[i].abs_error, b.by_position[i].abs_error);
      quantiles(at + ".rel_error", a.by_position[i].rel_error, b.by_position[i].rel_error);
    }
  }
  void optional(const std::string& name, const std::optional<ErrorMetrics>& a, const std::optional<ErrorMetrics>& b) {
    eq(name + ".has_value", a.has_value(), b.has_value());
    if (a && b) metrics(name, *a, *b);
  }
  void doubles(const std::string& name, const std::vector<double>& a, const std::vector<double>& b) {
    eq(name + ".size", a.size(), b.size());
    if (a.size() == b.size() && !a.empty() && std::memcmp(a.data(), b.data(), a.size() * 8) != 0) {
      fields.push_back(name);
    }
  }
  std::vector<std::string> fields;
};

std::string record_differences(const PointRecord& a, const PointRecord& b) {
  Diff d;
  const auto &p = a.params, &q = b.params;
  d.eq("point_id", p.point_id, q.point_id);
  d.eq("method", p.method, q.method);
  d.eq("taylor_terms", p.taylor_terms, q.taylor_terms);
  d.eq("d_key", p.d_key, q.d_key);
  d.eq("d_value", p.d_value, q.d_value);
  d.eq("heads", p.heads, q.heads);
  d.eq("n_tokens", p.n_tokens, q.n_tokens);
  d.num("scale", p.scale, q.scale);
  d.eq("precision", p.precision, q.precision);
  d.eq("truth", p.truth, q.truth);
  d.eq("causal", p.causal, q.causal);
  d.eq("chunk", p.chunk, q.chunk);
  d.eq("placement", p.placement, q.placement);
  d.eq("workload", p.workload, q.workload);
  d.num("dof", p.dof, q.dof);
  d.num("needle_logit", p.needle_logit, q.needle_logit);
  d.eq("input_file", p.input_file, q.input_file);
  d.eq("seed", p.seed, q.seed);
  d.num("softmax_denominator", p.softmax_denominator, q.softmax_denominator);
  d.eq("kv_quant", p.kv_quant, q.kv_quant);
  const auto &s = a.result, &t = b.result;
  d.eq("status", s.status, t.status);
  d.eq("truth_used", s.truth_used, t.truth_used);
  d.metrics("total", s.total, t.total);
  d.optional("truncation", s.truncation, t.truncation);
  d.optional("rounding", s.rounding, t.rounding);
  d.optional("baseline", s.baseline, t.baseline);
  d.num("normalisers.min_abs", s.normalisers.min_abs, t.normalisers.min_abs);
  d.num("normalisers.min", s.normalisers.min, t.normalisers.min);
  d.eq("normalisers.non_positive", s.normalisers.non_positive, t.normalisers.non_positive);
  d.eq("normalisers.non_finite", s.normalisers.non_finite, t.normalisers.non_finite);
  d.num("logit_max_abs", s.logit_max_abs, t.logit_max_abs);
  d.num("logit_std", s.logit_std, t.logit_std);
  d.num("needle_hit_rate", s.needle_hit_rate, t.needle_hit_rate);
  d.eq("state_elements", s.state_elements, t.state_elements);
  d.eq("flops_per_token", s.flops_per_token, t.flops_per_token);
  d.eq("kv_cache_elements", s.kv_cache_elements, t.kv_cache_elements);
  d.eq("bytes_per_sequence", s.bytes_per_sequence, t.bytes_per_sequence);
  d.num("kv_key_scale", s.kv_key_scale, t.kv_key_scale);
  d.num("kv_value_scale", s.kv_value_scale, t.kv_value_scale);
  d.num("wall_s", s.wall_s, t.wall_s);
  d.num("truth_wall_s", s.truth_wall_s, t.truth_wall_s);
  d.doubles("y", s.y, t.y);
  d.doubles("y_truth", s.y_truth, t.y_truth);
  d.doubles("z", s.z, t.z);
  std::string out;
  for (const auto& f : d.fields) out += (out.empty() ? "" : ", ") + f;
  return out;
}

void expect_same_metadata(const SweepMetadata& a, const SweepMetadata& b) {
  EXPECT_EQ(a.satalab_version, b.satalab_version);
  EXPECT_EQ(a.git_commit, b.git_commit);
  EXPECT_EQ(a.command_line, b.command_line);
  EXPECT_EQ(a.config_text, b.config_text);
  EXPECT_EQ(a.start_time, b.start_time);
  EXPECT_EQ(a.total_points, b.total_points);
}

void expect_records(const std::vector<PointRecord>& got, const std::vector<PointRecord>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(record_differences(got[i], want[i]), "") << "row " << i << " (point " << want[i].params.point_id << ")";
  }
}

std::vector<std::uint64_t> ids_of(const std::vector<PointRecord>& records) {
  std::vector<std::uint64_t> ids;
  for (const auto& r : records) ids.push_back(r.params.point_id);
  return ids;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

// Appends `count` records (ids first..first+count-1, all variants) and finishes.
void write_complete(const std::string& path, std::uint64_t first, std::uint64_t count,
                    const SweepMetadata& meta = make_metadata()) {
  ResultsFile f(path, meta, OpenMode::create);
  for (std::uint64_t i = first; i < first + count; ++i) f.add(make_record(i, static_cast<int>(i % 4)));
  f.finish();
}

// Runs `body` in a child process with RLIMIT_FSIZE set to `limit`; returns its exit code.
template <class Body>
int in_child_with_file_size_limit(rlim_t limit, Body&& body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit rl{limit, limit};
    if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) ::_exit(90);
    ::_exit(body());
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

}  // namespace

TEST(ResultsFile, RoundTripIsBitExactIncludingNanFieldsOutputsAndAbsentDecomposition) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  std::vector<PointRecord> records;
  for (int variant = 0; variant < 4; ++variant) {
    records.push_back(make_record(static_cast<std::uint64_t>(variant), variant));
  }
  ASSERT_FALSE(records[1].result.truncation.has_value());
  ASSERT_FALSE(records[3].result.baseline.has_value());
  {
    ResultsFile f(path, make_metadata(), OpenMode::create);
    for (const auto& r : records) f.add(r);
    f.finish();
  }
  EXPECT_FALSE(fs::exists(path + ".journal"));
  EXPECT_FALSE(has_temp_files(dir.path()));
  const auto got = satalab::read_results(path);
  EXPECT_EQ(got.schema_version, satalab::kResultsSchemaVersion);
  expect_same_metadata(got.metadata, make_metadata());
  expect_records(got.records, records);
}

TEST(ResultsFile, RowsAreOrderedByPointIdRegardlessOfAddOrder) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  {
    ResultsFile f(path, make_metadata(), OpenMode::create);
    for (std::uint64_t id : {5, 1, 7, 0, 3}) f.add(make_record(id, static_cast<int>(id % 4)));
    f.finish();
  }
  const auto got = satalab::read_results(path);
  EXPECT_EQ(ids_of(got.records), (std::vector<std::uint64_t>{0, 1, 3, 5, 7}));
  // Per-point arrays follow the same rows.
  for (const auto& r : got.records) {
    EXPECT_EQ(r.result.total.abs_histogram.counts[0], (r.params.point_id * 4 + 1) * 1000 + 7);
  }
}

TEST(ResultsFile, FirstAddWritesTheFileAndLaterAddsWaitForTheRewriteInterval) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  ResultsFile f(path, make_metadata(), OpenMode::create);
  f.rewrite_interval_s = 1e9;
  EXPECT_FALSE(fs::exists(path));
  f.add(make_record(0));
  EXPECT_EQ(satalab::read_results(path).records.size(), 1u);
  f.add(make_record(1));
  f.add(make_record(2));
  EXPECT_EQ(satalab::read_results(path).records.size(), 1u);
  f.rewrite_interval_s = 0;
  f.add(make_record(3));
  EXPECT_EQ(satalab::read_results(path).records.size(), 4u);
  EXPECT_TRUE(fs::exists(path + ".journal"));
  f.finish();
  EXPECT_FALSE(fs::exists(path + ".journal"));
  EXPECT_EQ(satalab::read_results(path).records.size(), 4u);
}

TEST(ResultsFile, CreateRefusesAnExistingFileOrJournalAndLeavesThemUntouched) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  write_complete(path, 0, 2);
  const std::string before = read_bytes(path);
  const std::string message = error_of([&] { ResultsFile f(path, make_metadata(), OpenMode::create); });
  EXPECT_NE(message.find("results file '" + path + "' exists (use --resume to continue it or --force to replace it)"),
            std::string::npos)
      << message;
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_FALSE(fs::exists(path + ".journal"));

  // An interrupted sweep that never wrote its HDF5 file: only the journal exists.
  const std::string other = dir.file("other.h5");
  write_bytes(other + ".journal", "partial");
  const std::string journal_message = error_of([&] { ResultsFile f(other, make_metadata(), OpenMode::create); });
  EXPECT_NE(journal_message.find("exists"), std::string::npos) << journal_message;
  EXPECT_NE(journal_message.find("--resume"), std::string::npos) << journal_message;
  EXPECT_EQ(read_bytes(other + ".journal"), "partial");
  EXPECT_FALSE(fs::exists(other));
}

TEST(ResultsFile, OverwriteDiscardsTheExistingFileAndJournal) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  write_complete(path, 0, 3);
  write_bytes(path + ".journal", "stale journal bytes");
  {
    ResultsFile f(path, make_metadata(), OpenMode::overwrite);
    EXPECT_TRUE(f.finished().empty());
    EXPECT_FALSE(fs::exists(path));
    f.add(make_record(9, 1));
    f.finish();
  }
  const auto got = satalab::read_results(path);
  expect_records(got.records, {make_record(9, 1)});
}

TEST(ResultsFile, ConstructedButNeverUsedLeavesNoFilesAndNoJournalBehind) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  { ResultsFile f(path, make_metadata(), OpenMode::create); }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".journal"));

  // Resuming a complete file and stopping without finish() leaves it as it was.
  write_complete(path, 0, 2);
  const std::string before = read_bytes(path);
  {
    ResultsFile f(path, make_metadata(), OpenMode::resume);
    EXPECT_EQ(f.finished().size(), 2u);
  }
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_FALSE(fs::exists(path + ".journal"));
}

TEST(ResultsFile, ResumeKeepsFinishedPointsListsThemAndKeepsTheOriginalStartTime) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  std::vector<PointRecord> want;
  {
    ResultsFile f(path, make_metadata(), OpenMode::create);
    for (std::uint64_t id = 0; id < 3; ++id) {
      want.push_back(make_record(id, static_cast<int>(id)));
      f.add(want.back());
    }
    // No finish(): an interrupted sweep (the destructor still writes the file).
  }
  EXPECT_TRUE(fs::exists(path + ".journal"));
  SweepMetadata later = make_metadata();
  later.start_time = "2024-05-02T08:00:00Z";
  later.command_line = "satalab sweep grid.toml --out r.h5 --resume";
  {
    ResultsFile f(path, later, OpenMode::resume);
    EXPECT_EQ(f.finished(), (std::set<std::uint64_t>{0, 1, 2}));
    want.push_back(make_record(3, 3));
    f.add(want.back());
    EXPECT_NE(error_of([&] { f.add(make_record(1, 1)); }).find("point 1 was already added"), std::string::npos);
    f.finish();
  }
  const auto got = satalab::read_results(path);
  expect_records(got.records, want);
  EXPECT_EQ(got.metadata.start_time, make_metadata().start_time);
  EXPECT_EQ(got.metadata.command_line, later.command_line);

  // Resuming a finished file: everything is listed, nothing changes.
  const std::string before = read_bytes(path);
  {
    ResultsFile f(path, later, OpenMode::resume);
    EXPECT_EQ(f.finished(), (std::set<std::uint64_t>{0, 1, 2, 3}));
    f.finish();
  }
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_FALSE(fs::exists(path + ".journal"));
}

TEST(ResultsFile, ResumeWithADifferentConfigIsRefusedAndChangesNothing) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  {
    ResultsFile f(path, make_metadata(), OpenMode::create);
    f.add(make_record(0));
    f.add(make_record(1));
  }
  const std::string h5 = read_bytes(path), journal = read_bytes(path + ".journal");
  SweepMetadata changed = make_metadata();
  changed.config_text += "seed = [2]\n";
  const std::string message = error_of([&] { ResultsFile f(path, changed, OpenMode::resume); });
  EXPECT_NE(message.find("'" + path + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("config differs"), std::string::npos) << message;
  EXPECT_EQ(read_bytes(path), h5);
  EXPECT_EQ(read_bytes(path + ".journal"), journal);

  // The journal alone also carries the config (crash before the first HDF5 write).
  fs::remove(path);
  EXPECT_NE(error_of([&] { ResultsFile f(path, changed, OpenMode::resume); }).find("config differs"),
            std::string::npos);
  EXPECT_EQ(read_bytes(path + ".journal"), journal);
}

TEST(ResultsFile, TornOrCorruptLastJournalRecordIsIgnoredAndTruncatedOnResume) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  std::vector<PointRecord> want;
  std::uintmax_t two_records = 0;
  {
    ResultsFile f(path, make_metadata(), OpenMode::create);
    f.rewrite_interval_s = 1e9;
    for (std::uint64_t id = 0; id < 3; ++id) {
      want.push_back(make_record(id, static_cast<int>(id)));
      f.add(want.back());
      if (id == 1) two_records = fs::file_size(path + ".journal");
    }
    fs::copy_file(path, dir.file("crash.h5"));
    fs::copy_file(path + ".journal", dir.file("crash.h5.journal"));
  }
  const std::string journal = read_bytes(dir.file("crash.h5.journal"));
  want.pop_back();
  for (int torn = 0; torn < 2; ++torn) {
    const std::string copy = dir.file("torn" + std::to_string(torn) + ".h5");
    fs::copy_file(dir.file("crash.h5"), copy);
    std::string bytes = journal;
    if (torn == 0) {
      bytes.resize(bytes.size() - 5);  // a write cut short
    } else {
      bytes[two_records + 100] ^= 0x40;  // a flipped bit inside the last payload
    }
    write_bytes(copy + ".journal", bytes);
    {
      ResultsFile f(copy, make_metadata(), OpenMode::resume);
      EXPECT_EQ(f.finished(), (std::set<std::uint64_t>{0, 1})) << "case " << torn;
      EXPECT_EQ(fs::file_size(copy + ".journal"), two_records) << "case " << torn;
      f.finish();
    }
    expect_records(satalab::read_results(copy).records, want);
  }
}

TEST(ResultsFile, SimulatedCrashThenResumeGivesEachPointOnceBitForBitAsAnUninterruptedRun) {
  TempDir dir;
  const std::string reference = dir.file("reference.h5");
  write_complete(reference, 0, 6);

  const std::string path = dir.file("run.h5");
  {
    ResultsFile f(path, make_metadata(), OpenMode::create);
    f.rewrite_interval_s = 1e9;  // only the first add writes the HDF5 file
    for (std::uint64_t id = 0; id < 4; ++id) f.add(make_record(id, static_cast<int>(id % 4)));
    // kill -9 here: what is on disk is the 1-row HDF5 file and a 4-record journal,
    // plus the first bytes of a fifth record being appended.
    fs::copy_file(path, dir.file("crash.h5"));
    const std::string journal_before = read_bytes(path + ".journal");
    f.add(make_record(4, 0));
    const std::string journal_after = read_bytes(path + ".journal");
    write_bytes(dir.file("crash.h5.journal"),
                journal_after.substr(0, journal_before.size() + (journal_after.size() - journal_before.size()) / 2));
  }
  const std::string crash = dir.file("crash.h5");
  EXPECT_EQ(satalab::read_results(crash).records.size(), 1u);
  {
    ResultsFile f(crash, make_metadata(), OpenMode::resume);
    EXPECT_EQ(f.finished(), (std::set<std::uint64_t>{0, 1, 2, 3}));
    for (std::uint64_t id = 0; id < 6; ++id) {
      if (f.finished().count(id) == 0) f.add(make_record(id, static_cast<int>(id % 4)));
    }
    f.finish();
  }
  const auto got = satalab::read_results(crash);
  const auto want = satalab::read_results(reference);
  EXPECT_EQ(ids_of(got.records), (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5}));
  expect_same_metadata(got.metadata, want.metadata);
  expect_records(got.records, want.records);
  // Same contents, same bytes (no timestamps in the file).
  EXPECT_TRUE(read_bytes(crash) == read_bytes(reference));
}

TEST(ResultsFile, FailedJournalAppendOrHdf5RewriteLeavesThePreviousFileAndJournalIntact) {
  TempDir dir;
  // Sizes of the journal and the HDF5 file after two points, from a scratch run.
  std::uintmax_t journal_one = 0, journal_two = 0, h5_two = 0;
  {
    const std::string scratch = dir.file("scratch.h5");
    ResultsFile f(scratch, make_metadata(), OpenMode::create);
    f.rewrite_interval_s = 0;
    f.add(make_record(0, 1));
    journal_one = fs::file_size(scratch + ".journal");
    f.add(make_record(1, 0));
    journal_two = fs::file_size(scratch + ".journal");
    h5_two = fs::file_size(scratch);
  }
  ASSERT_LT(journal_two + 4096, h5_two) << "the test needs an HDF5 file larger than the journal";

  const std::string path = dir.file("r.h5");
  std::optional<ResultsFile> f;
  f.emplace(path, make_metadata(), OpenMode::create);
  f->rewrite_interval_s = 0;
  f->add(make_record(0, 1));
  const std::string h5 = read_bytes(path);
  ASSERT_EQ(fs::file_size(path + ".journal"), journal_one);
  const auto child_add = [&](std::uint64_t id, const char* expected) {
    return [&f, id, expected] {
      try {
        f->add(make_record(id, 0));
      } catch (const InvalidArgument& e) {
        return std::string(e.what()).find(expected) != std::string::npos ? 0 : 3;
      } catch (...) {
        return 2;
      }
      return 1;
    };
  };
  // The disk fills up while the record is appended to the journal.
  EXPECT_EQ(in_child_with_file_size_limit(journal_one + 10, child_add(1, "journal")), 0);
  EXPECT_EQ(fs::file_size(path + ".journal"), journal_one);
  EXPECT_EQ(read_bytes(path), h5);
  // The journal append fits but the HDF5 rewrite does not.
  EXPECT_EQ(in_child_with_file_size_limit(journal_two, child_add(1, "temporary file")), 0);
  EXPECT_EQ(fs::file_size(path + ".journal"), journal_two);
  EXPECT_EQ(read_bytes(path), h5);
  EXPECT_FALSE(has_temp_files(dir.path()));
  f.reset();  // this process never saw point 1: nothing to write

  ResultsFile resumed(path, make_metadata(), OpenMode::resume);
  EXPECT_EQ(resumed.finished(), (std::set<std::uint64_t>{0, 1}));
  resumed.finish();
  expect_records(satalab::read_results(path).records, {make_record(0, 1), make_record(1, 0)});
}

TEST(ResultsFile, InvalidRecordsAreRefusedBeforeAnythingIsJournaled) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  ResultsFile f(path, make_metadata(), OpenMode::create);
  f.add(make_record(0));
  const auto journal_size = fs::file_size(path + ".journal");
  PointRecord bad_y = make_record(1, 2);
  bad_y.result.y.pop_back();
  EXPECT_NE(error_of([&] { f.add(bad_y); }).find("output 'y'"), std::string::npos);
  PointRecord bad_text = make_record(2);
  bad_text.result.status = std::string("ok\0x", 4);
  EXPECT_NE(error_of([&] { f.add(bad_text); }).find("'status'"), std::string::npos);
  PointRecord many_blocks = make_record(3);
  many_blocks.result.total.by_position.resize(satalab::kPositionBlocks + 1);
  EXPECT_NE(error_of([&] { f.add(many_blocks); }).find("position blocks"), std::string::npos);
  EXPECT_NE(error_of([&] { f.add(make_record(0)); }).find("already added"), std::string::npos);
  EXPECT_EQ(fs::file_size(path + ".journal"), journal_size);
  EXPECT_EQ(f.finished(), (std::set<std::uint64_t>{0}));
}

TEST(ResultsFile, ASecondWriterOnTheSameFileIsRefused) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  ResultsFile f(path, make_metadata(), OpenMode::create);
  f.add(make_record(0));
  for (OpenMode mode : {OpenMode::resume, OpenMode::overwrite}) {
    const std::string message = error_of([&] { ResultsFile g(path, make_metadata(), mode); });
    EXPECT_NE(message.find("in use"), std::string::npos) << message;
  }
  EXPECT_TRUE(fs::exists(path));
  f.finish();
  EXPECT_EQ(satalab::read_results(path).records.size(), 1u);
}

TEST(ResultsFile, WrongSchemaVersionOrMissingDatasetIsRefusedNamingIt) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  write_complete(path, 0, 2);
  const std::string good = read_bytes(path);

  const std::int64_t unknown = satalab::kResultsSchemaVersion + 1;
  const std::string unknown_text = "schema_version " + std::to_string(unknown);
  {  // a schema_version this build does not know
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    const hid_t attr = H5Aopen(file, "schema_version", H5P_DEFAULT);
    ASSERT_GE(attr, 0);
    ASSERT_GE(H5Awrite(attr, H5T_NATIVE_INT64, &unknown), 0);
    H5Aclose(attr);
    ASSERT_GE(H5Fclose(file), 0);
  }
  std::string message = error_of([&] { (void)satalab::read_results(path); });
  EXPECT_NE(message.find(unknown_text), std::string::npos) << message;
  EXPECT_NE(message.find(path), std::string::npos) << message;
  message = error_of([&] { ResultsFile f(path, make_metadata(), OpenMode::resume); });
  EXPECT_NE(message.find(unknown_text), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(path + ".journal"));

  const auto without = [&](const char* object) {
    write_bytes(path, good);
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    EXPECT_GE(file, 0);
    if (std::string(object) == "schema_version") {
      EXPECT_GE(H5Adelete(file, object), 0);
    } else {
      EXPECT_GE(H5Ldelete(file, object, H5P_DEFAULT), 0);
    }
    EXPECT_GE(H5Fclose(file), 0);
    return error_of([&] { (void)satalab::read_results(path); });
  };
  message = without("points");
  EXPECT_NE(message.find("dataset '/points' is missing"), std::string::npos) << message;
  message = without("rel_hist");
  EXPECT_NE(message.find("dataset '/rel_hist' is missing"), std::string::npos) << message;
  message = without("position/round_abs_err_p99");
  EXPECT_NE(message.find("dataset '/position/round_abs_err_p99' is missing"), std::string::npos) << message;
  message = without("schema_version");
  EXPECT_NE(message.find("attribute 'schema_version' is missing"), std::string::npos) << message;
  EXPECT_NE(error_of([&] { (void)satalab::read_results(dir.file("none.h5")); }).find("does not exist"),
            std::string::npos);
}

TEST(ResultsFile, ShardAndSweepIdRoundTripAndResumeRefusesAnotherShard) {
  TempDir dir;
  const std::string path = dir.file("part-2.h5");
  SweepMetadata meta = make_metadata();
  meta.shard_index = 2;
  meta.shard_count = 3;
  meta.shard_points = 3;
  {
    ResultsFile f(path, meta, OpenMode::create);
    f.add(make_record(1));
  }  // interrupted: the journal stays
  const auto got = satalab::read_results(path);
  EXPECT_EQ(got.metadata.shard_index, 2u);
  EXPECT_EQ(got.metadata.shard_count, 3u);
  EXPECT_EQ(got.metadata.shard_points, 3u);
  EXPECT_EQ(satalab::sweep_id(meta.config_text).size(), 16u);
  EXPECT_NE(satalab::sweep_id(meta.config_text), satalab::sweep_id(meta.config_text + " "));
  SweepMetadata other = meta;
  other.shard_index = 1;
  const std::string message = error_of([&] { ResultsFile f(path, other, OpenMode::resume); });
  EXPECT_NE(message.find("holds shard 2/3 of the sweep, not 1/3"), std::string::npos) << message;
  SweepMetadata bad = meta;
  bad.shard_index = 4;
  EXPECT_NE(error_of([&] { ResultsFile f(dir.file("bad.h5"), bad, OpenMode::create); }).find("shard 4/3"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir.file("bad.h5.journal")));
}

TEST(ResultsFile, ReadWithJournalAddsThePointsOfAnInterruptedRunAndRefusesARunningOne) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  std::vector<PointRecord> want;
  {
    ResultsFile f(path, make_metadata(), OpenMode::create);
    f.rewrite_interval_s = 1e9;  // only the first add() writes the HDF5 file
    for (std::uint64_t id : {4u, 0u, 2u}) {
      want.push_back(make_record(id, static_cast<int>(id % 4)));
      f.add(want.back());
    }
    const std::string message = error_of([&] { (void)satalab::read_results_with_journal(path); });
    EXPECT_NE(message.find("is being written by a running sweep"), std::string::npos) << message;
    fs::copy_file(path, dir.file("crash.h5"));  // a kill -9 now leaves these two
    fs::copy_file(path + ".journal", dir.file("crash.h5.journal"));
  }
  EXPECT_EQ(satalab::read_results(dir.file("crash.h5")).records.size(), 1u);
  const auto got = satalab::read_results_with_journal(dir.file("crash.h5"));
  std::sort(want.begin(), want.end(),
            [](const PointRecord& a, const PointRecord& b) { return a.params.point_id < b.params.point_id; });
  expect_records(got.records, want);
  fs::remove(dir.file("crash.h5"));  // the journal alone (killed before the first rewrite)
  expect_records(satalab::read_results_with_journal(dir.file("crash.h5")).records, want);
  EXPECT_NE(error_of([&] { (void)satalab::read_results_with_journal(dir.file("none.h5")); }).find("does not exist"),
            std::string::npos);
}

TEST(ResultsFile, ResultDifferenceIgnoresTimingsAndNamesTheFirstDifferingColumnOrDataset) {
  const PointRecord a = make_record(3, 1);
  PointRecord b = a;
  b.result.wall_s += 1;
  b.result.truth_wall_s += 2;
  EXPECT_EQ(satalab::result_difference(a, b), "");
  b.result.total.rel_error.p95 = std::nextafter(b.result.total.rel_error.p95, 1.0);
  EXPECT_NE(satalab::result_difference(a, b).find("column 'rel_err_p95'"), std::string::npos)
      << satalab::result_difference(a, b);
  b = a;
  b.result.total.abs_histogram.counts[7] += 1;
  EXPECT_EQ(satalab::result_difference(a, b), "datasets 'abs_hist'/'rel_hist'");
  const PointRecord decoded = satalab::decode_point_record(satalab::encode_point_record(a));
  EXPECT_EQ(record_differences(decoded, a), "");
  EXPECT_THROW((void)satalab::decode_point_record("truncated"), InvalidArgument);
}

TEST(ResultsFile, WriteResultsIsAtomicOrderedByPointIdAndRefusesDuplicates) {
  TempDir dir;
  const std::string path = dir.file("merged.h5");
  std::vector<PointRecord> records = {make_record(5, 2), make_record(1, 0), make_record(3, 1)};
  satalab::write_results(path, make_metadata(), records);
  EXPECT_EQ(ids_of(satalab::read_results(path).records), (std::vector<std::uint64_t>{1, 3, 5}));
  const std::string before = read_bytes(path);
  records.push_back(make_record(3, 1));
  const std::string message = error_of([&] { satalab::write_results(path, make_metadata(), records); });
  EXPECT_NE(message.find("point 3 appears twice"), std::string::npos) << message;
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_FALSE(has_temp_files(dir.path()));
}

TEST(ResultsFile, PandasReadsThePointsTableInThreeLinesAndTheJournalFramingMatchesTheSchemaDoc) {
  const std::string python = SATALAB_PYTHON;
  if (python.empty() || run_shell("'" + python + "' -c 'import h5py, pandas' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "'" << python << "' cannot import h5py and pandas";
  }
  TempDir dir;
  const std::string path = dir.file("r.h5");
  {
    ResultsFile f(path, make_metadata(), OpenMode::create);
    for (std::uint64_t id : {2, 0, 1}) f.add(make_record(id, static_cast<int>(id)));
    fs::copy_file(path + ".journal", dir.file("journal.copy"));
    f.finish();
  }
  const std::string script = dir.file("check.py");
  std::ofstream(script) << R"PY(import struct, sys, zlib
import numpy as np
path, journal = sys.argv[1], sys.argv[2]

import h5py, pandas as pd
f = h5py.File(path, "r")
df = pd.DataFrame(f["points"][()])
for c in df.select_dtypes(object): df[c] = df[c].str.decode("utf-8")  # the documented decode line

assert len(df) == 3, len(df)
assert list(df["point_id"]) == [0, 1, 2], list(df["point_id"])
assert list(df["method"] == "sata") == [True, False, True], list(df["method"])
assert list(df["kv_quant"]) == ["none", "int4-g32-r128", "none"], list(df["kv_quant"])
assert list(df["bytes_per_sequence"]) == [22528, 22529, 22530], list(df["bytes_per_sequence"])
assert df["causal"].dtype == bool, df["causal"].dtype
assert df["has_truncation"].tolist() == [True, False, True]
assert np.isnan(df["trunc_abs_err_median"][1])
for name in ["point_id", "method", "taylor_terms", "d_key", "heads", "n_tokens", "scale", "precision", "status",
             "abs_err_median", "abs_err_max", "rel_err_median", "wall_s", "kv_quant", "bytes_per_sequence",
             "kv_key_scale", "kv_value_scale"]:
    assert name in df.columns, name
assert f.attrs["schema_version"] == 5  # docs/results-schema.md
assert (f.attrs["shard_index"], f.attrs["shard_count"]) == (1, 1) and len(f.attrs["sweep_id"]) == 16
assert isinstance(f.attrs["config_text"], str) and "\u00b5" in f.attrs["config_text"]
assert f.attrs["total_points"] == 8
assert f["abs_hist"].shape == (3, 254) and f["abs_hist"].dtype == np.uint64
for i in range(3):
    assert f["abs_hist"][i, 0] == (df["point_id"][i] * 4 + 1) * 1000 + 7
assert f["hist_bin_edges"][0] == -20.0 and f["hist_bin_edges"].shape == (251,)
first = f["position/first_token"][()]
assert first.shape == (3, 16) and first[1, 3] == 2**64 - 1 and first[1, 2] == 20
assert np.isnan(f["position/abs_err_median"][1, 3])
assert f["outputs/2/y"].shape == (2, 5, 3) and f["outputs/2/z"].shape == (2, 5)
assert "outputs/0" not in f

data = open(journal, "rb").read()
off, magics = 0, []
while off < len(data):
    magic, length = struct.unpack_from("<4sQ", data, off)
    payload = data[off + 12:off + 12 + length]
    (crc,) = struct.unpack_from("<I", data, off + 12 + length)
    assert crc == zlib.crc32(payload), "crc"
    if magic == b"SLJP":
        point_id, method_len = struct.unpack_from("<QQ", payload, 0)
        assert payload[16:16 + method_len].decode() == ("exact" if point_id == 1 else "sata")
    else:
        (version,) = struct.unpack_from("<I", payload, 0)
        assert version == 5
    magics.append(magic)
    off += 16 + length
assert off == len(data)
assert magics == [b"SLJH", b"SLJP", b"SLJP", b"SLJP"], magics
)PY";
  EXPECT_EQ(run_shell("'" + python + "' '" + script + "' '" + path + "' '" + dir.file("journal.copy") + "'"), 0);
}

namespace {

// Replaces the string attribute `name` on the root group of `path`.
void set_string_attribute(const std::string& path, const char* name, const std::string& value) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  ASSERT_GE(H5Adelete(file, name), 0);
  const hid_t type = H5Tcopy(H5T_C_S1);
  ASSERT_GE(H5Tset_size(type, H5T_VARIABLE), 0);
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t attribute = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(attribute, 0);
  const char* text = value.c_str();
  EXPECT_GE(H5Awrite(attribute, type, &text), 0);
  H5Aclose(attribute);
  H5Sclose(space);
  H5Tclose(type);
  ASSERT_GE(H5Fclose(file), 0);
}

// The journal's points were computed by the build that last wrote the file.
// Resuming with another build is refused (nothing changed); with
// allow_mixed_builds the journal's points go into the file as that build's,
// and this build's points are recorded as its own.
TEST(ResultsFile, JournalPointsOfAnotherBuildAreFoldedIntoTheFileAsThatBuilds) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // a writer killed after journaling point 1 (the file holds point 0)
    ResultsFile f(path, make_metadata(), OpenMode::create);
    f.rewrite_interval_s = 1e9;
    f.add(make_record(0));
    f.add(make_record(1, 1));
    std::_Exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(ids_of(satalab::read_results(path).records), (std::vector<std::uint64_t>{0}));
  // As if another build had written the file (and so its journal).
  set_string_attribute(path, "build_isa", "x86-64-v9");
  const std::string h5 = read_bytes(path), journal = read_bytes(path + ".journal");

  const std::string message = error_of([&] { ResultsFile f(path, make_metadata(), OpenMode::resume); });
  EXPECT_NE(message.find("another build (instruction set 'x86-64-v9' vs '" + satalab::build_info().isa + "')"),
            std::string::npos)
      << message;
  EXPECT_EQ(read_bytes(path), h5);
  EXPECT_EQ(read_bytes(path + ".journal"), journal);

  {
    ResultsFile f(path, make_metadata(), OpenMode::resume, true);
    EXPECT_EQ(f.finished(), (std::set<std::uint64_t>{0, 1}));
    // Folded: the file holds the journal's point, the journal no point.
    EXPECT_EQ(ids_of(satalab::read_results(path).records), (std::vector<std::uint64_t>{0, 1}));
    EXPECT_LT(fs::file_size(path + ".journal"), journal.size());
    f.add(make_record(2, 2));
    f.finish();
  }
  const auto got = satalab::read_results(path);
  expect_records(got.records, {make_record(0), make_record(1, 1), make_record(2, 2)});
  ASSERT_EQ(got.metadata.builds.size(), 2u);
  EXPECT_EQ(satalab::build_difference(got.metadata.builds[0], satalab::build_info()), "");
  EXPECT_EQ(got.metadata.builds[1].isa, "x86-64-v9");
  EXPECT_EQ(got.records[0].build, 0u);  // from the file: this build
  EXPECT_EQ(got.records[1].build, 1u);  // from the journal of the x86-64-v9 writer
  EXPECT_EQ(got.records[2].build, 0u);  // computed now
  ASSERT_TRUE(got.writer.has_value());
  EXPECT_EQ(satalab::build_difference(*got.writer, satalab::build_info()), "");
}

}  // namespace
