#pragma once
// Sweep results (DESIGN §5; schema in docs/results-schema.md): one HDF5 file per
// sweep with root attributes, the compound table /points (one row per
// completed point) and per-point arrays indexed by the row.
//
// Crash safety: HDF5 1.10 has no journaling, so finished points are first
// appended to a journal next to the file (OUT.h5.journal: length-prefixed,
// checksummed binary records, fsync'd after each) and the HDF5 file is
// (re)written from all finished points under a temporary name and renamed
// into place. A kill -9 at any moment leaves the last complete HDF5 file and a
// journal whose possibly torn last record is ignored; reopening with resume
// rebuilds the file from both, bit for bit.
#include <array>
#include <limits>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "satalab/metrics/error_metrics.hpp"

namespace satalab {

// 2: columns kv_quant, bytes_per_sequence, kv_key_scale, kv_value_scale (method exact-kvquant).
// 3: root attributes sweep_id, shard_index, shard_count, shard_points (and in the journal header).
inline constexpr int kResultsSchemaVersion = 4;
// Per-position summaries have this many blocks of token positions (fewer when n_tokens is smaller).
inline constexpr std::size_t kPositionBlocks = 16;

// The parameters of one point: every key of a sweep file after expansion.
struct PointParams {
  std::uint64_t point_id = 0;  // index in the expanded grid (stable for a given config)
  std::string method = "sata";
  std::uint32_t taylor_terms = 4;
  std::uint32_t d_key = 8, d_value = 8, heads = 1;
  std::uint64_t n_tokens = 1024;
  double scale = 1.0;
  std::string precision = "fp32";
  std::string truth = "auto";  // resolved truth precision is recorded in PointResult::truth_used
  bool causal = true;
  std::uint32_t chunk = 0;  // 0: default
  std::string placement = "paper";
  std::string workload = "gaussian";  // gaussian, heavy-tailed, needle, file
  double dof = 3.0;                   // heavy-tailed: Student-t degrees of freedom
  double needle_logit = 8.0;          // needle: logit of the aligned key
  std::string input_file;             // file workload
  std::uint64_t seed = 1;
  double softmax_denominator = 0;     // 0: sqrt(d_key)
  // 0: truth (and the Taylor-quadratic oracle and the exact baseline) on every
  // query row; R: on R evenly spaced rows per head (the last always included),
  // and every error statistic over those rows only. Makes long contexts
  // affordable: the truth costs O(R·n) instead of O(n²).
  std::uint64_t truth_rows = 0;
  std::string kv_quant = "none";      // exact-kvquant: the KV-cache scheme (attention/quantized_kv.hpp)
  // Workload modifiers applied after the base distribution, names joined by
  // '+' (workload/modifiers.hpp), "" for none; and their parameters.
  std::string modifiers;
  double rope_theta = 10000.0;
  std::uint32_t outlier_channels = 2;
  double outlier_magnitude = 3.0;
  double key_bias_norm = 4.0;
  std::uint32_t sink_tokens = 1;
  double sink_logit = 10.0;
  double sink_alignment = 4.0;
};

// Query rows per head at which a point's errors are measured: n_tokens, or
// truth_rows when that is smaller (positions (r+1)·n/R - 1, r = 0..R-1,
// integer division). Raw outputs have this many rows.
inline std::uint64_t measured_rows(const PointParams& p) {
  return p.truth_rows == 0 || p.truth_rows >= p.n_tokens ? p.n_tokens : p.truth_rows;
}

// What a point measured. Unmeasured numbers are NaN (e.g. truncation for exact).
struct PointResult {
  std::string status = "ok";  // "ok", or "failed: <one-line reason>"
  std::string truth_used;     // e.g. "fp64", "mp128"
  ErrorMetrics total;                     // method vs exact at truth precision
  std::optional<ErrorMetrics> truncation;  // taylor-quadratic@truth vs exact@truth
  std::optional<ErrorMetrics> rounding;    // method vs taylor-quadratic@truth
  std::optional<ErrorMetrics> baseline;    // exact@policy vs exact@truth
  NormaliserStats normalisers;
  double logit_max_abs = 0, logit_std = 0;
  double needle_hit_rate = std::numeric_limits<double>::quiet_NaN();  // needle workload only
  // The same for exact attention at truth precision: how often the needle can
  // be retrieved at all (NaN unless needle, and when truth_rows < n_tokens).
  double needle_truth_hit_rate = std::numeric_limits<double>::quiet_NaN();
  std::uint64_t state_elements = 0, flops_per_token = 0, kv_cache_elements = 0;
  std::uint64_t bytes_per_sequence = 0;  // KV cache (exact methods) or SATA state, all heads (compute.hpp)
  // exact-kvquant with a float cast: the absmax scale of K and V (the largest per-head one with -head).
  double kv_key_scale = std::numeric_limits<double>::quiet_NaN();
  double kv_value_scale = std::numeric_limits<double>::quiet_NaN();
  double wall_s = 0;        // this point's method + metrics
  double truth_wall_s = 0;  // truth computation (0 when reused from another point)
  // Raw outputs, only with --save-outputs (float64 [heads, rows, d_value] and
  // [heads, rows], rows = measured_rows(params)).
  std::vector<double> y, y_truth, z;
};

struct PointRecord {
  PointParams params;
  PointResult result;
};

// Root attributes of a results file. A file holds the points of shard
// shard_index of shard_count of the sweep (1 of 1: the whole sweep, e.g. a
// single-process run or a merge); shard_points of them belong to it.
struct SweepMetadata {
  std::string satalab_version, git_commit, command_line, config_text, start_time;
  std::uint64_t total_points = 0;
  std::uint64_t shard_index = 1, shard_count = 1, shard_points = 0;
};

// The sweep's identity: 16 hex digits of the 64-bit FNV-1a hash of the
// normalised config text (the `sweep_id` attribute). Files of one sweep share
// it; merge compares the config text itself, so a collision cannot merge two
// different sweeps.
std::string sweep_id(const std::string& config_text);

enum class OpenMode {
  create,     // refuse (InvalidArgument) if OUT.h5 or its journal exists
  overwrite,  // --force: discard an existing file and journal
  resume,     // --resume: keep finished points (from the file and the journal)
};

// One writer per file: the journal is flock'ed while open, and a second
// ResultsFile on the same path is refused (InvalidArgument "in use"). Not
// thread-safe; call add() from one thread.
class ResultsFile {
 public:
  // Opens for writing. resume: the existing config text must equal
  // metadata.config_text (else InvalidArgument naming the file).
  ResultsFile(std::string path, const SweepMetadata& metadata, OpenMode mode);
  // Writes the HDF5 file if points were added since the last write (errors
  // are printed to stderr, not thrown: the journal keeps the points); keeps
  // the journal unless it holds no point.
  ~ResultsFile();
  ResultsFile(const ResultsFile&) = delete;
  ResultsFile& operator=(const ResultsFile&) = delete;

  // point_ids already finished (after resume).
  const std::set<std::uint64_t>& finished() const { return finished_; }
  // Journals the record durably (fsync) before returning; rewrites the HDF5
  // file when at least `rewrite_interval_s` seconds passed since the last write
  // (the first add() of this object always writes). Throws InvalidArgument,
  // journaling nothing, for a point_id already finished, a string with a NUL
  // byte, more than kPositionBlocks position blocks, or raw outputs whose size
  // disagrees with heads * n_tokens (* d_value). Disk full: a failed journal
  // append throws InvalidArgument with the journal as it was (point not
  // recorded); a failed HDF5 rewrite throws InvalidArgument after the point
  // was journaled, with the previous HDF5 file still in place.
  void add(const PointRecord& record);
  // Writes the HDF5 file from all records (rows ordered by point_id) if
  // anything changed since the last write, then removes the journal. Later
  // add() calls throw.
  void finish();

  double rewrite_interval_s = 10.0;

 private:
  void write_hdf5();
  std::string path_;
  SweepMetadata metadata_;
  std::vector<PointRecord> records_;
  std::set<std::uint64_t> finished_;
  int journal_fd_ = -1;             // open and flock'ed (one writer per file) until finish()
  std::uint64_t journal_size_ = 0;  // bytes of intact records; a failed append is truncated back to it
  std::uint64_t journal_points_start_ = 0;  // bytes of the journal's header record
  double last_write_ = 0;
  bool dirty_ = false;
};

// Reads a results file back (for tests, merge and the Python-free checks):
// metadata and the records (raw outputs included when saved). Throws
// InvalidArgument naming a missing dataset or a wrong schema version.
struct ResultsContents {
  SweepMetadata metadata;
  int schema_version = 0;
  std::vector<PointRecord> records;
};
ResultsContents read_results(const std::string& path);

// read_results plus the finished points of OUT.h5.journal that the file does
// not hold yet (an interrupted run), without modifying or locking anything
// for writing; either of the two may be absent. Throws InvalidArgument when
// neither exists, when a sweep is running on the file (its journal is
// locked), or when the journal belongs to another sweep than the file.
ResultsContents read_results_with_journal(const std::string& path);

// Writes a complete results file atomically (temporary file in the same
// directory, fsync, rename over `path`), rows ordered by point_id. Throws
// InvalidArgument (path untouched) on invalid records or I/O errors.
void write_results(const std::string& path, const SweepMetadata& metadata, std::vector<PointRecord> records);

// A point record in the journal's point payload encoding (docs/results-schema.md):
// how MPI ranks send finished points to the writer. decode throws
// InvalidArgument on a malformed payload.
std::string encode_point_record(const PointRecord& record);
PointRecord decode_point_record(std::string_view payload);

// The first difference between two results of one point, ignoring the
// timings (wall_s, truth_wall_s) and raw outputs that only one of them saved:
// "column 'abs_err_median' (0.001 vs 0.002)", "dataset 'abs_hist'", ...;
// empty when they are the same bit for bit.
std::string result_difference(const PointRecord& a, const PointRecord& b);

}  // namespace satalab
