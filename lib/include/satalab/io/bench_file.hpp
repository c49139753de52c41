#pragma once
// Benchmark results of `satalab bench` (schema in docs/bench-schema.md): one
// HDF5 file with root attributes describing the run and the machine, and the
// compound table /bench, one row per measurement — machine bounds (copy
// bandwidth, GEMM rate), decode steps and prefills. Written atomically (a
// temporary file renamed into place), with the conventions of the sweep
// results (docs/results-schema.md): variable-length UTF-8 strings, float64
// and unsigned integers little-endian, NaN for "not measured".
#include <cstdint>
#include <limits>
#include <string>
#include <optional>
#include <vector>

#include "satalab/build_info.hpp"

namespace satalab {

inline constexpr int kBenchSchemaVersion = 1;

struct BenchRow {
  // decode, prefill, copy_bandwidth, update_bandwidth or gemm.
  std::string kind;
  // decode/prefill: sata or exact; bounds: memcpy, read-modify-write, eigen-gemm.
  std::string method;
  std::string precision;  // policy name (gemm: fp32 or fp64; bandwidth rows: empty)
  std::uint32_t d_key = 0, d_value = 0, taylor_terms = 0, heads = 0, chunk = 0, threads = 0;
  // decode: the context asked for; prefill: tokens per head; gemm: matrix
  // size N of the N×N product; bandwidth rows: bytes of one buffer.
  std::uint64_t context_tokens = 0;
  // decode: tokens in the state or cache when the timing began.
  std::uint64_t tokens_processed = 0;
  std::string status = "ok";  // ok, or "skipped: <reason>"
  std::uint32_t repeats = 0;
  std::uint64_t steps = 0;  // decode: steps per repeat (the fewest of any repeat)
  // Wall seconds of one unit of work: decode one step of all heads; prefill
  // the n tokens of all heads; copy one pass over the buffer; gemm one product.
  double seconds_median = std::numeric_limits<double>::quiet_NaN();
  double seconds_min = std::numeric_limits<double>::quiet_NaN();
  double seconds_per_token_head = std::numeric_limits<double>::quiet_NaN();
  double tokens_per_second = std::numeric_limits<double>::quiet_NaN();
  std::uint64_t bytes_per_unit = 0;  // bytes read + written per unit (model)
  double bytes_per_second = std::numeric_limits<double>::quiet_NaN();
  std::uint64_t flops_per_unit = 0;  // floating-point operations per unit (model)
  double flops_per_second = std::numeric_limits<double>::quiet_NaN();
  // Process CPU seconds / wall seconds over the timed repeats: the cores this
  // process kept busy (up to `threads`; less when others shared the machine).
  double cores_used = std::numeric_limits<double>::quiet_NaN();
  std::uint64_t memory_bytes = 0;         // state or KV cache as allocated (carrier)
  std::uint64_t memory_bytes_format = 0;  // the same in the policy's storage formats
  std::uint64_t rss_bytes = 0;            // resident set of the process during the row
};

struct BenchMetadata {
  std::string satalab_version, git_commit, command_line, start_time, cpu_model;
  std::uint64_t threads = 0, llc_bytes = 0, memory_limit_bytes = 0, physical_memory_bytes = 0;
};

// Writes the file under a temporary name and renames it into place. An
// existing file is refused (InvalidArgument) unless overwrite is true.
void write_bench_file(const std::string& path, const BenchMetadata& metadata, const std::vector<BenchRow>& rows,
                      bool overwrite);

struct BenchContents {
  int schema_version = 0;
  BenchMetadata metadata;
  std::vector<BenchRow> rows;
  // The build that wrote the file (attributes build_*, always this binary's
  // build_info() when writing); nullopt for files written before builds were recorded.
  std::optional<BuildInfo> build;
};
// Throws InvalidArgument naming a missing attribute, dataset or column, or a
// schema version other than kBenchSchemaVersion.
BenchContents read_bench_file(const std::string& path);

}  // namespace satalab
