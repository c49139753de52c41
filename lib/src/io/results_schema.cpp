// The results schema (results_schema.hpp): record fields and layout, the
// journal encodings and the validation of what a results file accepts.
#include "results_schema.hpp"

#include <fmt/format.h>

#include <cstring>

#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {
namespace detail {

const ErrorMetrics& absent_metrics() {
  static const ErrorMetrics absent = [] {
    constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    ErrorMetrics m;
    m.abs_error = m.rel_error = m.normwise_rel_error = Quantiles{nan, nan, nan, nan, nan};
    return m;
  }();
  return absent;
}

const ErrorMetrics* component(const PointRecord& r, std::size_t c) {
  switch (c) {
    case 0:
      return &r.result.total;
    case 1:
      return r.result.truncation ? &*r.result.truncation : nullptr;
    case 2:
      return r.result.rounding ? &*r.result.rounding : nullptr;
    default:
      return r.result.baseline ? &*r.result.baseline : nullptr;
  }
}

ErrorMetrics* component(PointRecord& r, std::size_t c) {
  return const_cast<ErrorMetrics*>(component(std::as_const(r), c));
}

std::size_t kind_size(Kind k) {
  switch (k) {
    case Kind::u32:
      return 4;
    case Kind::flag:
      return 1;
    case Kind::str:
      return sizeof(char*);
    default:
      return 8;
  }
}

const RowLayout& row_layout() {
  static const RowLayout layout = [] {
    RowLayout l;
    const PointRecord dummy;
    std::size_t offset = 0;
    record_fields(dummy, [&](std::string_view prefix, std::string_view name, const auto& field) {
      const Kind k = kind_of<std::remove_cvref_t<decltype(field)>>();
      const std::size_t size = kind_size(k);
      offset = (offset + size - 1) / size * size;
      l.columns.push_back({std::string(prefix) + std::string(name), k, offset});
      offset += size;
    });
    l.size = (offset + 7) / 8 * 8;
    return l;
  }();
  return layout;
}

void encode_histogram(Encoder& e, const Log10Histogram& h) {
  for (std::uint64_t c : h.counts) e.u64(c);
  e.u64(h.zeros);
  e.u64(h.underflow);
  e.u64(h.overflow);
  e.u64(h.non_finite);
}

void decode_histogram(Decoder& d, Log10Histogram& h) {
  for (std::uint64_t& c : h.counts) c = d.u64();
  h.zeros = d.u64();
  h.underflow = d.u64();
  h.overflow = d.u64();
  h.non_finite = d.u64();
}

void encode_quantiles(Encoder& e, const Quantiles& q) {
  for (double v : {q.median, q.p05, q.p95, q.p99, q.max}) e.f64(v);
}

void decode_quantiles(Decoder& d, Quantiles& q) {
  for (double* v : {&q.median, &q.p05, &q.p95, &q.p99, &q.max}) *v = d.f64();
}

std::string encode_record(const PointRecord& r) {
  Encoder e;
  record_fields(r, [&](std::string_view, std::string_view, const auto& field) {
    using T = std::remove_cvref_t<decltype(field)>;
    constexpr Kind k = kind_of<T>();
    if constexpr (k == Kind::str) {
      e.str(field);
    } else if constexpr (k == Kind::flag) {
      e.u8(field ? 1 : 0);
    } else if constexpr (k == Kind::f64) {
      e.f64(field);
    } else if constexpr (k == Kind::u32) {
      e.u32(field);
    } else {
      e.u64(field);
    }
  });
  for (std::size_t c = 0; c < kComponentPrefix.size(); ++c) {
    const ErrorMetrics* m = component(r, c);
    if (m == nullptr) continue;
    encode_histogram(e, m->abs_histogram);
    encode_histogram(e, m->rel_histogram);
    e.u64(m->by_position.size());
    for (const PositionSummary& b : m->by_position) {
      e.u64(b.first_token);
      e.u64(b.last_token);
      encode_quantiles(e, b.abs_error);
      encode_quantiles(e, b.rel_error);
    }
  }
  e.doubles(r.result.y);
  e.doubles(r.result.y_truth);
  e.doubles(r.result.z);
  return std::move(e.bytes());
}

PointRecord decode_record(std::string_view payload) {
  Decoder d(payload);
  PointRecord r;
  record_fields(r, [&](std::string_view, std::string_view, auto& field) {
    using T = std::remove_cvref_t<decltype(field)>;
    constexpr Kind k = kind_of<T>();
    if constexpr (k == Kind::str) {
      field = d.str();
    } else if constexpr (k == Kind::flag) {
      const std::uint8_t b = d.u8();
      if (b > 1) throw Corrupt{};
      field = b == 1;
    } else if constexpr (k == Kind::f64) {
      field = d.f64();
    } else if constexpr (k == Kind::u32) {
      field = d.u32();
    } else {
      field = static_cast<T>(d.u64());
    }
  });
  for (std::size_t c = 0; c < kComponentPrefix.size(); ++c) {
    ErrorMetrics* m = component(r, c);
    if (m == nullptr) continue;
    decode_histogram(d, m->abs_histogram);
    decode_histogram(d, m->rel_histogram);
    const std::uint64_t blocks = d.u64();
    if (blocks > kPositionBlocks) throw Corrupt{};
    m->by_position.resize(static_cast<std::size_t>(blocks));
    for (PositionSummary& b : m->by_position) {
      b.first_token = static_cast<std::size_t>(d.u64());
      b.last_token = static_cast<std::size_t>(d.u64());
      decode_quantiles(d, b.abs_error);
      decode_quantiles(d, b.rel_error);
    }
  }
  r.result.y = d.doubles();
  r.result.y_truth = d.doubles();
  r.result.z = d.doubles();
  if (d.remaining() != 0) throw Corrupt{};
  return r;
}

std::string encode_header(const SweepMetadata& m) {
  Encoder e;
  e.u32(static_cast<std::uint32_t>(kResultsSchemaVersion));
  e.str(m.satalab_version);
  e.str(m.git_commit);
  e.str(m.command_line);
  e.str(m.config_text);
  e.str(m.start_time);
  e.u64(m.total_points);
  e.u64(m.shard_index);
  e.u64(m.shard_count);
  e.u64(m.shard_points);
  return std::move(e.bytes());
}

SweepMetadata decode_header(std::string_view payload, std::uint32_t& version) {
  Decoder d(payload);
  version = d.u32();
  if (version != static_cast<std::uint32_t>(kResultsSchemaVersion)) return {};
  SweepMetadata m;
  m.satalab_version = d.str();
  m.git_commit = d.str();
  m.command_line = d.str();
  m.config_text = d.str();
  m.start_time = d.str();
  m.total_points = d.u64();
  m.shard_index = d.u64();
  m.shard_count = d.u64();
  m.shard_points = d.u64();
  if (d.remaining() != 0) throw Corrupt{};
  return m;
}

// Validation of what add() accepts (so that the round trip is exact).

void check_text(const std::string& path, const char* field, const std::string& value) {
  if (value.find('\0') != std::string::npos) {
    throw InvalidArgument(fmt::format("results file '{}': {} contains a NUL byte", path, field));
  }
}

void validate_record(const std::string& path, const PointRecord& r) {
  const std::uint64_t id = r.params.point_id;
  record_fields(r, [&](std::string_view prefix, std::string_view name, const auto& field) {
    if constexpr (kind_of<std::remove_cvref_t<decltype(field)>>() == Kind::str) {
      if (field.find('\0') != std::string::npos) {
        throw InvalidArgument(
            fmt::format("results file '{}': point {}: field '{}{}' contains a NUL byte", path, id, prefix, name));
      }
    }
  });
  for (std::size_t c = 0; c < kComponentPrefix.size(); ++c) {
    const ErrorMetrics* m = component(r, c);
    if (m == nullptr) continue;
    if (m->by_position.size() > kPositionBlocks) {
      throw InvalidArgument(fmt::format("results file '{}': point {}: {} position blocks, at most {} allowed", path,
                                        id, m->by_position.size(), kPositionBlocks));
    }
    for (const PositionSummary& s : m->by_position) {
      if (static_cast<std::uint64_t>(s.first_token) == kNoBlock) {
        throw InvalidArgument(fmt::format("results file '{}': point {}: position block starts at token {} (reserved)",
                                          path, id, kNoBlock));
      }
    }
  }
  const PointParams& p = r.params;
  const std::string what = fmt::format("results file '{}': point {} outputs", path, id);
  const std::uint64_t rows = checked_mul(p.heads, measured_rows(p), what);
  const std::uint64_t elements = checked_mul(rows, p.d_value, what);
  const auto check_size = [&](const char* name, const std::vector<double>& v, std::uint64_t expected,
                              const char* shape) {
    if (!v.empty() && v.size() != expected) {
      throw InvalidArgument(fmt::format(
          "results file '{}': point {}: output '{}' has {} values but {} = [{}, {}{}] needs {}", path, id, name,
          v.size(), shape, p.heads, measured_rows(p), expected == elements ? fmt::format(", {}", p.d_value) : "",
          expected));
    }
  };
  check_size("y", r.result.y, elements, "[heads, rows, d_value]");
  check_size("y_truth", r.result.y_truth, elements, "[heads, rows, d_value]");
  check_size("z", r.result.z, rows, "[heads, rows]");
}

void validate_metadata(const std::string& path, const SweepMetadata& m) {
  check_text(path, "satalab_version", m.satalab_version);
  check_text(path, "git_commit", m.git_commit);
  check_text(path, "command_line", m.command_line);
  check_text(path, "config_text", m.config_text);
  check_text(path, "start_time", m.start_time);
  for (const BuildInfo& b : m.builds) {
    for (const auto& [name, field] : kBuildColumns) check_text(path, name, b.*field);
  }
  if (m.shard_index < 1 || m.shard_index > m.shard_count) {
    throw InvalidArgument(fmt::format("results file '{}': shard {}/{} is invalid (need 1 <= K <= N)", path,
                                      m.shard_index, m.shard_count));
  }
  for (const std::uint64_t v : {m.total_points, m.shard_count, m.shard_points}) {
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw InvalidArgument(fmt::format("results file '{}': {} does not fit an int64 attribute", path, v));
    }
  }
}

std::uint32_t build_index(std::vector<BuildInfo>& builds, const BuildInfo& build) {
  for (std::size_t i = 0; i < builds.size(); ++i) {
    if (build_difference(builds[i], build).empty()) return static_cast<std::uint32_t>(i);
  }
  builds.push_back(build);
  return static_cast<std::uint32_t>(builds.size() - 1);
}

}  // namespace detail

using namespace detail;

BuildInfo unknown_build(const std::string& commit) {
  return {commit, "unknown", "unknown", "unknown", "unknown"};
}

std::string builds_difference(const std::vector<BuildInfo>& existing, const BuildInfo& build) {
  for (const BuildInfo& b : existing) {
    const std::string difference = build_difference(b, build);
    if (difference.empty()) continue;
    if (build_difference(b, unknown_build()).empty()) return "it records no build: written before builds were recorded";
    return difference;
  }
  return {};
}

// ---------------------------------------------------------------------------
// Sweep identity, merging support and the record encoding for MPI.

std::string sweep_id(const std::string& config_text) {
  // FNV-1a, 64 bits (offset basis and prime from the FNV reference).
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char ch : config_text) {
    h ^= static_cast<unsigned char>(ch);
    h *= 0x100000001b3ull;
  }
  return fmt::format("{:016x}", h);
}

std::string encode_point_record(const PointRecord& record) { return encode_record(record); }

PointRecord decode_point_record(std::string_view payload) {
  try {
    return decode_record(payload);
  } catch (const Corrupt&) {
    throw InvalidArgument(fmt::format("point record: malformed payload of {} bytes", payload.size()));
  }
}

}  // namespace satalab
