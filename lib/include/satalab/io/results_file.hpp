#pragma once
// Sweep results (docs/architecture.md; schema in docs/results-schema.md): one HDF5 file per
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

#include "satalab/build_info.hpp"
#include "satalab/error.hpp"
#include "satalab/experiment/point.hpp"

namespace satalab {

// 2: columns kv_quant, bytes_per_sequence, kv_key_scale, kv_value_scale (method exact-kvquant).
// 3: root attributes sweep_id, shard_index, shard_count, shard_points (and in the journal header).
// 4: workload columns modifiers, rope_theta, outlier_channels, outlier_magnitude, key_bias_norm,
//    sink_tokens, sink_logit, sink_alignment after kv_quant (table and journal); workload fitted.
// 5: kernel-recipe columns recipe, tile_rows, tile_cols, then the read-out polynomial columns
//    polynomial, chebyshev_width, key_centring, then the state accumulation columns
//    state_accumulation, state_block, remainder_bound_median, predicted_rel_err_median,
//    after truth_wall_s (table and journal).
inline constexpr int kResultsSchemaVersion = 5;
// Root attributes of a results file. A file holds the points of shard
// shard_index of shard_count of the sweep (1 of 1: the whole sweep, e.g. a
// single-process run or a merge); shard_points of them belong to it.
//
// Provenance (docs/results-schema.md): `builds` lists every build that
// computed points of the file (table /builds), each record's `build` indexes
// it (dataset /point_build); the root attributes build_* name the build that
// wrote the file itself. ResultsFile and write_results fill them for the
// writing binary (satalab::build_info()); files written before builds were
// recorded read back with one build whose fields are all "unknown".
struct SweepMetadata {
  std::string satalab_version, git_commit, command_line, config_text, start_time;
  std::uint64_t total_points = 0;
  std::uint64_t shard_index = 1, shard_count = 1, shard_points = 0;
  std::vector<BuildInfo> builds;
};

// A build whose fields are all "unknown" (points of files that predate build
// records); `commit` may be known from the journal header.
BuildInfo unknown_build(const std::string& commit = "unknown");

// Resuming a file that holds points computed by another build than this
// binary's (ResultsFile with allow_mixed_builds false). The message names the
// file and the first difference, e.g. "results file 'r.h5' was written by
// another build (instruction set 'x86-64-v4' vs 'x86-64-v3')"; a command line
// adds how to continue anyway.
class MixedBuilds : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

// Creating a file (OpenMode::create) whose results file or journal exists:
// the message names the file; a command line adds how to go on.
class ResultsFileExists : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

// Resuming a file of another sweep config (Kind::config) or of another shard
// (Kind::shard; `shard` is the file's): the message names the file and the
// mismatch; a command line adds how to go on.
class ResumeMismatch : public InvalidArgument {
 public:
  enum class Kind { config, shard };
  struct Shard {
    std::uint64_t index = 1, count = 1;
  };
  ResumeMismatch(Kind kind, Shard shard, const std::string& message)
      : InvalidArgument(message), kind_(kind), shard_(shard) {}
  Kind kind() const { return kind_; }
  Shard shard() const { return shard_; }

 private:
  Kind kind_;
  Shard shard_;
};

// The first difference between the builds of `existing` points and `build`,
// as build_difference() words it ("it records no build" for unknown builds);
// empty when every one equals `build`.
std::string builds_difference(const std::vector<BuildInfo>& existing, const BuildInfo& build);

// The sweep's identity: 16 hex digits of the 64-bit FNV-1a hash of the
// normalised config text (the `sweep_id` attribute). Files of one sweep share
// it; merge compares the config text itself, so a collision cannot merge two
// different sweeps.
std::string sweep_id(const std::string& config_text);

enum class OpenMode {
  create,     // refuse (ResultsFileExists) if OUT.h5 or its journal exists
  overwrite,  // discard an existing file and journal
  resume,     // keep finished points (from the file and the journal)
};

// One writer per file: the journal is flock'ed while open, and a second
// ResultsFile on the same path is refused (InvalidArgument "in use"). Not
// thread-safe; call add() from one thread.
class ResultsFile {
 public:
  // Opens for writing. resume: the existing config text must equal
  // metadata.config_text (else InvalidArgument naming the file).
  // Points of another build than this binary's in a resumed file: MixedBuilds,
  // unless allow_mixed_builds; then the file records both builds.
  ResultsFile(std::string path, const SweepMetadata& metadata, OpenMode mode, bool allow_mixed_builds = false);
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
  std::uint32_t build_ = 0;                 // this binary's index in metadata_.builds
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
  std::optional<BuildInfo> writer;  // root attributes build_*; nullopt for older files
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
