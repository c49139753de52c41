// Sweep results file: HDF5 table + per-point arrays, made crash safe by an
// fsync'd journal and atomic temp+rename rewrites. The layout and the journal
// format are specified in docs/results-schema.md; keep the two in step.
#include "hdf5_handles.hpp"
#include "satalab/io/results_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <hdf5.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kHistColumns = kLog10Bins + 4;  // bins, zeros, underflow, overflow, non_finite
constexpr std::uint64_t kNoBlock = std::numeric_limits<std::uint64_t>::max();

// Journal record magics: the ASCII bytes "SLJH" (header) and "SLJP" (point),
// read as little-endian u32.
constexpr std::uint32_t kHeaderMagic = 0x484A4C53u;
constexpr std::uint32_t kPointMagic = 0x504A4C53u;
constexpr std::size_t kFrameBytes = 4 + 8 + 4;  // magic, payload length, crc32

// The decomposition components; index 0 is the total error. Prefixes apply to
// /points columns and to the per-point dataset names.
constexpr std::array<const char*, 4> kComponentPrefix = {"", "trunc_", "round_", "baseline_"};
constexpr std::array<const char*, 4> kComponentFlag = {nullptr, "has_truncation", "has_rounding", "has_baseline"};

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

bool path_exists(const std::string& path) {
  std::error_code ec;
  const auto status = fs::symlink_status(path, ec);
  return !ec && fs::exists(status);
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Makes a rename/create/unlink in the directory of `path` durable (best effort).
void sync_parent_directory(const std::string& path) {
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

// ---------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320; zlib's crc32).

std::uint32_t crc32(const unsigned char* data, std::size_t size) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// ---------------------------------------------------------------------------
// The scalar fields of a record, in /points column order (also the order of
// the journal payload). `f(prefix, name, field)` is called with a reference to
// each field; Rec is `const PointRecord` (writing) or `PointRecord` (reading).

enum class Kind { u64, u32, f64, str, flag };

template <class T>
constexpr Kind kind_of() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, std::string>) {
    return Kind::str;
  } else if constexpr (std::is_same_v<U, bool>) {
    return Kind::flag;
  } else if constexpr (std::is_same_v<U, double>) {
    return Kind::f64;
  } else if constexpr (std::is_same_v<U, std::uint32_t>) {
    return Kind::u32;
  } else {
    static_assert(std::is_integral_v<U> && std::is_unsigned_v<U> && sizeof(U) == 8, "unsupported field type");
    return Kind::u64;
  }
}

template <class Q, class F>
void quantile_fields(std::string_view prefix, const char* stem, Q& q, F& f) {
  const std::string p = std::string(prefix) + stem;
  f(p, "median", q.median);
  f(p, "p05", q.p05);
  f(p, "p95", q.p95);
  f(p, "p99", q.p99);
  f(p, "max", q.max);
}

template <class M, class F>
void metric_fields(std::string_view prefix, M& m, F& f) {
  f(prefix, "elements", m.elements);
  quantile_fields(prefix, "abs_err_", m.abs_error, f);
  quantile_fields(prefix, "rel_err_", m.rel_error, f);
  quantile_fields(prefix, "normwise_rel_err_", m.normwise_rel_error, f);
  f(prefix, "rel_undefined_count", m.rel_undefined);
  f(prefix, "nonfinite_count", m.non_finite_outputs);
}

// What an absent decomposition component is written as: NaN statistics, zero counts.
const ErrorMetrics& absent_metrics() {
  static const ErrorMetrics absent = [] {
    constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    ErrorMetrics m;
    m.abs_error = m.rel_error = m.normwise_rel_error = Quantiles{nan, nan, nan, nan, nan};
    return m;
  }();
  return absent;
}

template <class Opt, class F>
void optional_component_fields(std::size_t c, Opt& opt, F& f) {
  const std::string_view prefix = kComponentPrefix[c];
  if constexpr (std::is_const_v<Opt>) {
    const bool has = opt.has_value();
    f("", kComponentFlag[c], has);
    metric_fields(prefix, has ? *opt : absent_metrics(), f);
  } else {
    bool has = false;
    f("", kComponentFlag[c], has);
    if (has) {
      opt.emplace();
      metric_fields(prefix, *opt, f);
    } else {
      opt.reset();
      ErrorMetrics scratch;
      metric_fields(prefix, scratch, f);
    }
  }
}

template <class Rec, class F>
void record_fields(Rec& r, F&& f) {
  auto& p = r.params;
  f("", "point_id", p.point_id);
  f("", "method", p.method);
  f("", "taylor_terms", p.taylor_terms);
  f("", "d_key", p.d_key);
  f("", "d_value", p.d_value);
  f("", "heads", p.heads);
  f("", "n_tokens", p.n_tokens);
  f("", "scale", p.scale);
  f("", "precision", p.precision);
  f("", "truth", p.truth);
  f("", "causal", p.causal);
  f("", "chunk", p.chunk);
  f("", "placement", p.placement);
  f("", "workload", p.workload);
  f("", "dof", p.dof);
  f("", "needle_logit", p.needle_logit);
  f("", "input_file", p.input_file);
  f("", "seed", p.seed);
  f("", "softmax_denominator", p.softmax_denominator);
  f("", "truth_rows", p.truth_rows);
  f("", "kv_quant", p.kv_quant);
  f("", "modifiers", p.modifiers);
  f("", "rope_theta", p.rope_theta);
  f("", "outlier_channels", p.outlier_channels);
  f("", "outlier_magnitude", p.outlier_magnitude);
  f("", "key_bias_norm", p.key_bias_norm);
  f("", "sink_tokens", p.sink_tokens);
  f("", "sink_logit", p.sink_logit);
  f("", "sink_alignment", p.sink_alignment);
  auto& s = r.result;
  f("", "status", s.status);
  f("", "truth_used", s.truth_used);
  metric_fields(kComponentPrefix[0], s.total, f);
  optional_component_fields(1, s.truncation, f);
  optional_component_fields(2, s.rounding, f);
  optional_component_fields(3, s.baseline, f);
  f("normaliser_", "min_abs", s.normalisers.min_abs);
  f("normaliser_", "min", s.normalisers.min);
  f("normaliser_", "nonpositive_count", s.normalisers.non_positive);
  f("normaliser_", "nonfinite_count", s.normalisers.non_finite);
  f("", "logit_max_abs", s.logit_max_abs);
  f("", "logit_std", s.logit_std);
  f("", "needle_hit_rate", s.needle_hit_rate);
  f("", "needle_truth_hit_rate", s.needle_truth_hit_rate);
  f("", "state_elements", s.state_elements);
  f("", "flops_per_token", s.flops_per_token);
  f("", "kv_cache_elements", s.kv_cache_elements);
  f("", "bytes_per_sequence", s.bytes_per_sequence);
  f("", "kv_key_scale", s.kv_key_scale);
  f("", "kv_value_scale", s.kv_value_scale);
  f("", "wall_s", s.wall_s);
  f("", "truth_wall_s", s.truth_wall_s);
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

// Native in-memory layout of one /points row (natural alignment).
struct Column {
  std::string name;
  Kind kind;
  std::size_t offset;
};
struct RowLayout {
  std::vector<Column> columns;
  std::size_t size = 0;
};

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

// ---------------------------------------------------------------------------
// Binary encoding of the journal (little-endian, doubles as raw bits).

class Encoder {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
  }
  void f64(double v) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    u64(bits);
  }
  void str(const std::string& s) {
    u64(s.size());
    out_ += s;
  }
  void doubles(const std::vector<double>& v) {
    u64(v.size());
    for (double x : v) f64(x);
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

struct Corrupt {};  // thrown by Decoder on a malformed payload

class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)[0]); }
  std::uint32_t u32() {
    const std::string_view b = take(4);
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(b[i])) << (8 * i);
    return v;
  }
  std::uint64_t u64() {
    const std::string_view b = take(8);
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
    return v;
  }
  double f64() {
    const std::uint64_t bits = u64();
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  std::string str() {
    const std::uint64_t n = u64();
    if (n > remaining()) throw Corrupt{};
    return std::string(take(static_cast<std::size_t>(n)));
  }
  std::vector<double> doubles() {
    const std::uint64_t n = u64();
    if (n > remaining() / 8) throw Corrupt{};
    std::vector<double> v(static_cast<std::size_t>(n));
    for (double& x : v) x = f64();
    return v;
  }
  std::size_t remaining() const { return in_.size() - pos_; }

 private:
  std::string_view take(std::size_t n) {
    if (n > remaining()) throw Corrupt{};
    const std::string_view b = in_.substr(pos_, n);
    pos_ += n;
    return b;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
};

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

std::string frame(std::uint32_t magic, const std::string& payload) {
  Encoder e;
  e.u32(magic);
  e.u64(payload.size());
  std::string out = std::move(e.bytes());
  out += payload;
  Encoder tail;
  tail.u32(crc32(reinterpret_cast<const unsigned char*>(payload.data()), payload.size()));
  out += tail.bytes();
  return out;
}

// ---------------------------------------------------------------------------
// Journal file I/O.

void pwrite_all(int fd, const std::string& bytes, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category());
    }
    if (n == 0) throw std::system_error(EIO, std::generic_category());
    done += static_cast<std::size_t>(n);
  }
}

bool pread_all(int fd, char* out, std::size_t size, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

struct JournalContents {
  std::optional<SweepMetadata> header;
  std::vector<PointRecord> records;
  std::uint64_t good_size = 0;     // bytes up to the end of the last intact record
  std::uint64_t points_start = 0;  // bytes of the header record
  std::uint64_t file_size = 0;
};

// Reads the intact prefix of a journal: a header record, then point records.
// Reading stops at the first torn or corrupt record.
JournalContents read_journal(int fd, const std::string& name) {
  JournalContents out;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw InvalidArgument(fmt::format("results journal '{}': cannot be read: {}", name, errno_text(errno)));
  }
  out.file_size = static_cast<std::uint64_t>(st.st_size);
  std::uint64_t offset = 0;
  std::string payload;
  while (out.file_size - offset >= kFrameBytes) {
    char head[12];
    if (!pread_all(fd, head, sizeof head, offset)) break;
    Decoder hd(std::string_view(head, sizeof head));
    const std::uint32_t magic = hd.u32();
    const std::uint64_t length = hd.u64();
    const bool first = offset == 0;
    if (magic != (first ? kHeaderMagic : kPointMagic)) break;
    if (length > out.file_size - offset - kFrameBytes) break;
    check_memory(length, fmt::format("results journal '{}': record at byte {}", name, offset));
    payload.resize(static_cast<std::size_t>(length));
    char crc_bytes[4];
    if (!pread_all(fd, payload.data(), payload.size(), offset + 12) ||
        !pread_all(fd, crc_bytes, 4, offset + 12 + length)) {
      break;
    }
    const std::uint32_t crc = Decoder(std::string_view(crc_bytes, 4)).u32();
    if (crc != crc32(reinterpret_cast<const unsigned char*>(payload.data()), payload.size())) break;
    try {
      if (first) {
        std::uint32_t version = 0;
        SweepMetadata m = decode_header(payload, version);
        if (version != static_cast<std::uint32_t>(kResultsSchemaVersion)) {
          throw InvalidArgument(fmt::format(
              "results journal '{}': was written with schema version {}, this build reads version {}", name, version,
              kResultsSchemaVersion));
        }
        out.header = std::move(m);
        out.points_start = offset + kFrameBytes + length;
      } else {
        out.records.push_back(decode_record(payload));
      }
    } catch (const Corrupt&) {
      break;
    }
    offset += kFrameBytes + length;
    out.good_size = offset;
  }
  return out;
}

// An owned file descriptor (closed on scope exit unless released).
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// HDF5 handles: hdf5_handles.hpp.
using detail::Handle;
using detail::QuietHdf5Errors;
using detail::file_handle;
using detail::dataset_handle;
using detail::space_handle;
using detail::type_handle;
using detail::attribute_handle;
using detail::group_handle;
using detail::plist_handle;

Handle string_type() {
  Handle type = type_handle(H5Tcopy(H5T_C_S1));
  if (!type.valid() || H5Tset_size(type.get(), H5T_VARIABLE) < 0 || H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0) {
    return Handle();
  }
  return type;
}

// h5py's boolean convention: an int8 enum {FALSE = 0, TRUE = 1} reads as numpy bool.
Handle bool_type() {
  Handle type = type_handle(H5Tenum_create(H5T_NATIVE_INT8));
  if (!type.valid()) return type;
  const std::int8_t f = 0, t = 1;
  if (H5Tenum_insert(type.get(), "FALSE", &f) < 0 || H5Tenum_insert(type.get(), "TRUE", &t) < 0) return Handle();
  return type;
}

// The in-memory compound type of a /points row (native layout of row_layout()).
Handle row_memory_type() {
  const RowLayout& l = row_layout();
  Handle type = type_handle(H5Tcreate(H5T_COMPOUND, l.size));
  Handle str = string_type();
  Handle flag = bool_type();
  if (!type.valid() || !str.valid() || !flag.valid()) return Handle();
  for (const Column& c : l.columns) {
    hid_t member = H5T_NATIVE_UINT64;
    switch (c.kind) {
      case Kind::u64:
        member = H5T_NATIVE_UINT64;
        break;
      case Kind::u32:
        member = H5T_NATIVE_UINT32;
        break;
      case Kind::f64:
        member = H5T_NATIVE_DOUBLE;
        break;
      case Kind::str:
        member = str.get();
        break;
      case Kind::flag:
        member = flag.get();
        break;
    }
    if (H5Tinsert(type.get(), c.name.c_str(), c.offset, member) < 0) return Handle();
  }
  return type;
}

// ---------------------------------------------------------------------------
// Writing the HDF5 file.

class Writer {
 public:
  Writer(hid_t file, std::string path, std::string tmp) : file_(file), path_(std::move(path)), tmp_(std::move(tmp)) {
    // No modification times in object headers: equal contents give equal bytes.
    dcpl_ = plist_handle(H5Pcreate(H5P_DATASET_CREATE));
    gcpl_ = plist_handle(H5Pcreate(H5P_GROUP_CREATE));
    if (!dcpl_.valid() || !gcpl_.valid() || H5Pset_obj_track_times(dcpl_.get(), false) < 0 ||
        H5Pset_obj_track_times(gcpl_.get(), false) < 0) {
      fail("property lists", "cannot be created");
    }
  }

  [[noreturn]] void fail(const std::string& what, const char* problem) const {
    const int err = errno;
    std::string hint;
    if (err == ENOSPC || err == EFBIG || err == EDQUOT) hint = fmt::format(" ({})", errno_text(err));
    throw InvalidArgument(
        fmt::format("results file '{}': {} {} in temporary file '{}'{}", path_, what, problem, tmp_, hint));
  }

  void group(const std::string& name) {
    errno = 0;
    Handle g = group_handle(H5Gcreate2(file_, name.c_str(), H5P_DEFAULT, gcpl_.get(), H5P_DEFAULT));
    if (!g.valid()) fail(fmt::format("group '/{}'", name), "cannot be created");
    if (!g.close()) fail(fmt::format("group '/{}'", name), "cannot be closed");
  }

  void dataset(const std::string& name, hid_t file_type, hid_t mem_type, const std::vector<hsize_t>& dims,
               const void* data) {
    const std::string what = fmt::format("dataset '/{}'", name);
    errno = 0;
    Handle space = space_handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    if (!space.valid()) fail(what, "dataspace cannot be created");
    Handle ds = dataset_handle(
        H5Dcreate2(file_, name.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl_.get(), H5P_DEFAULT));
    if (!ds.valid()) fail(what, "cannot be created");
    hsize_t count = 1;
    for (hsize_t d : dims) count *= d;
    if (count > 0 && H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
      fail(what, "cannot be written");
    }
    if (!ds.close()) fail(what, "cannot be closed");
  }

  void doubles(const std::string& name, const std::vector<hsize_t>& dims, const double* data) {
    dataset(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, dims, data);
  }
  void u64s(const std::string& name, const std::vector<hsize_t>& dims, const std::uint64_t* data) {
    dataset(name, H5T_STD_U64LE, H5T_NATIVE_UINT64, dims, data);
  }

  void string_attribute(const char* name, const std::string& value) {
    const std::string what = fmt::format("attribute '{}'", name);
    errno = 0;
    Handle type = string_type();
    Handle space = space_handle(H5Screate(H5S_SCALAR));
    if (!type.valid() || !space.valid()) fail(what, "type cannot be created");
    Handle a = attribute_handle(H5Acreate2(file_, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    if (!a.valid()) fail(what, "cannot be created");
    const char* text = value.c_str();
    if (H5Awrite(a.get(), type.get(), &text) < 0) fail(what, "cannot be written");
    if (!a.close()) fail(what, "cannot be closed");
  }

  void int_attribute(const char* name, std::int64_t value) {
    const std::string what = fmt::format("attribute '{}'", name);
    errno = 0;
    Handle space = space_handle(H5Screate(H5S_SCALAR));
    if (!space.valid()) fail(what, "dataspace cannot be created");
    Handle a = attribute_handle(H5Acreate2(file_, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    if (!a.valid()) fail(what, "cannot be created");
    if (H5Awrite(a.get(), H5T_NATIVE_INT64, &value) < 0) fail(what, "cannot be written");
    if (!a.close()) fail(what, "cannot be closed");
  }

 private:
  hid_t file_;
  std::string path_, tmp_;
  Handle dcpl_, gcpl_;
};

void write_points_table(Writer& w, const std::vector<const PointRecord*>& rows) {
  const RowLayout& l = row_layout();
  Handle mem = row_memory_type();
  if (!mem.valid()) w.fail("dataset '/points'", "type cannot be created");
  Handle file_type = type_handle(H5Tcopy(mem.get()));
  if (!file_type.valid() || H5Tpack(file_type.get()) < 0) w.fail("dataset '/points'", "type cannot be created");

  std::vector<unsigned char> buffer(rows.size() * l.size, 0);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    unsigned char* row = buffer.data() + i * l.size;
    std::size_t col = 0;
    record_fields(*rows[i], [&](std::string_view, std::string_view, const auto& field) {
      using T = std::remove_cvref_t<decltype(field)>;
      constexpr Kind k = kind_of<T>();
      unsigned char* at = row + l.columns[col++].offset;
      if constexpr (k == Kind::str) {
        const char* text = field.c_str();  // HDF5 only reads through it
        std::memcpy(at, &text, sizeof text);
      } else if constexpr (k == Kind::flag) {
        const std::int8_t v = field ? 1 : 0;
        std::memcpy(at, &v, 1);
      } else if constexpr (k == Kind::f64) {
        std::memcpy(at, &field, 8);
      } else if constexpr (k == Kind::u32) {
        std::memcpy(at, &field, 4);
      } else {
        const std::uint64_t v = field;
        std::memcpy(at, &v, 8);
      }
    });
  }
  w.dataset("points", file_type.get(), mem.get(), {rows.size()}, buffer.data());
}

void write_component_arrays(Writer& w, const std::vector<const PointRecord*>& rows, std::size_t c) {
  const std::string prefix = kComponentPrefix[c];
  const std::size_t n = rows.size();
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();

  std::vector<std::uint64_t> abs_hist(n * kHistColumns, 0), rel_hist(n * kHistColumns, 0);
  const auto put_hist = [](std::uint64_t* out, const Log10Histogram& h) {
    std::copy(h.counts.begin(), h.counts.end(), out);
    out[kLog10Bins] = h.zeros;
    out[kLog10Bins + 1] = h.underflow;
    out[kLog10Bins + 2] = h.overflow;
    out[kLog10Bins + 3] = h.non_finite;
  };
  const std::size_t cells = n * kPositionBlocks;
  std::vector<std::uint64_t> first(cells, kNoBlock), last(cells, kNoBlock);
  std::array<std::vector<double>, 10> q;  // abs median..max, rel median..max
  for (auto& v : q) v.assign(cells, nan);

  for (std::size_t i = 0; i < n; ++i) {
    const ErrorMetrics* m = component(*rows[i], c);
    if (m == nullptr) continue;
    put_hist(abs_hist.data() + i * kHistColumns, m->abs_histogram);
    put_hist(rel_hist.data() + i * kHistColumns, m->rel_histogram);
    for (std::size_t b = 0; b < m->by_position.size(); ++b) {
      const PositionSummary& s = m->by_position[b];
      const std::size_t at = i * kPositionBlocks + b;
      first[at] = s.first_token;
      last[at] = s.last_token;
      const std::array<double, 10> values = {s.abs_error.median, s.abs_error.p05, s.abs_error.p95, s.abs_error.p99,
                                             s.abs_error.max,    s.rel_error.median, s.rel_error.p05,
                                             s.rel_error.p95,    s.rel_error.p99,    s.rel_error.max};
      for (std::size_t k = 0; k < 10; ++k) q[k][at] = values[k];
    }
  }
  w.u64s(prefix + "abs_hist", {n, kHistColumns}, abs_hist.data());
  w.u64s(prefix + "rel_hist", {n, kHistColumns}, rel_hist.data());
  const std::vector<hsize_t> dims = {n, kPositionBlocks};
  w.u64s("position/" + prefix + "first_token", dims, first.data());
  w.u64s("position/" + prefix + "last_token", dims, last.data());
  static constexpr std::array<const char*, 5> kStats = {"median", "p05", "p95", "p99", "max"};
  for (std::size_t k = 0; k < 10; ++k) {
    const std::string name =
        fmt::format("position/{}{}_err_{}", prefix, k < 5 ? "abs" : "rel", kStats[k % 5]);
    w.doubles(name, dims, q[k].data());
  }
}

void write_contents(Writer& w, const SweepMetadata& m, const std::vector<const PointRecord*>& rows) {
  w.int_attribute("schema_version", kResultsSchemaVersion);
  w.string_attribute("satalab_version", m.satalab_version);
  w.string_attribute("git_commit", m.git_commit);
  w.string_attribute("command_line", m.command_line);
  w.string_attribute("config_text", m.config_text);
  w.string_attribute("start_time", m.start_time);
  w.int_attribute("total_points", static_cast<std::int64_t>(m.total_points));
  w.string_attribute("sweep_id", sweep_id(m.config_text));
  w.int_attribute("shard_index", static_cast<std::int64_t>(m.shard_index));
  w.int_attribute("shard_count", static_cast<std::int64_t>(m.shard_count));
  w.int_attribute("shard_points", static_cast<std::int64_t>(m.shard_points));

  write_points_table(w, rows);
  std::vector<double> edges(kLog10Bins + 1);
  for (std::size_t i = 0; i <= kLog10Bins; ++i) edges[i] = Log10Histogram::lower_edge(i);
  w.doubles("hist_bin_edges", {edges.size()}, edges.data());
  w.group("position");
  for (std::size_t c = 0; c < kComponentPrefix.size(); ++c) write_component_arrays(w, rows, c);

  bool any_outputs = false;
  for (const PointRecord* r : rows) {
    const PointResult& s = r->result;
    if (s.y.empty() && s.y_truth.empty() && s.z.empty()) continue;
    if (!any_outputs) w.group("outputs");
    any_outputs = true;
    const std::string g = fmt::format("outputs/{}", r->params.point_id);
    w.group(g);
    const PointParams& p = r->params;
    const std::vector<hsize_t> out_dims = {p.heads, measured_rows(p), p.d_value};
    if (!s.y.empty()) w.doubles(g + "/y", out_dims, s.y.data());
    if (!s.y_truth.empty()) w.doubles(g + "/y_truth", out_dims, s.y_truth.data());
    if (!s.z.empty()) w.doubles(g + "/z", {p.heads, measured_rows(p)}, s.z.data());
  }
}

// Writes `path` atomically: a temporary file in the same directory, fsync'd,
// then renamed over `path`. On failure `path` is untouched and the temporary
// file removed.
void write_results_atomically(const std::string& path, const SweepMetadata& m,
                              const std::vector<const PointRecord*>& rows) {
  QuietHdf5Errors quiet;
  const std::string tmp = fmt::format("{}.tmp.{}", path, static_cast<long>(::getpid()));
  detail::RemoveOnFailure cleanup{tmp};
  {
    Handle fcpl = plist_handle(H5Pcreate(H5P_FILE_CREATE));
    if (!fcpl.valid() || H5Pset_obj_track_times(fcpl.get(), false) < 0) {
      throw InvalidArgument(fmt::format("results file '{}': cannot create HDF5 property lists", path));
    }
    errno = 0;
    Handle file = file_handle(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT));
    if (!file.valid()) {
      throw InvalidArgument(fmt::format("results file '{}': cannot create temporary file '{}'{}", path, tmp,
                                        errno != 0 ? ": " + errno_text(errno) : std::string()));
    }
    Writer w(file.get(), path, tmp);
    write_contents(w, m, rows);
    errno = 0;
    if (!file.close()) w.fail("the file", "cannot be flushed and closed");
  }
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw InvalidArgument(
        fmt::format("results file '{}': cannot sync temporary file '{}': {}", path, tmp, errno_text(err)));
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    throw InvalidArgument(fmt::format("results file '{}': cannot rename temporary file '{}' into place: {}", path,
                                      tmp, errno_text(err)));
  }
  cleanup.armed = false;
  sync_parent_directory(path);
}

// ---------------------------------------------------------------------------
// Reading the HDF5 file.

class Reader {
 public:
  Reader(hid_t file, std::string path) : file_(file), path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw InvalidArgument(fmt::format("results file '{}': {}", path_, message));
  }

  bool exists(const std::string& name) const {
    // Checks each component of the path, as H5Lexists requires.
    std::size_t pos = 0;
    while (true) {
      const std::size_t slash = name.find('/', pos);
      const std::string prefix = name.substr(0, slash);
      if (H5Lexists(file_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
      if (slash == std::string::npos) return true;
      pos = slash + 1;
    }
  }

  Handle open_dataset(const std::string& name, std::vector<hsize_t>& dims) const {
    if (!exists(name)) fail(fmt::format("dataset '/{}' is missing", name));
    Handle ds = dataset_handle(H5Dopen2(file_, name.c_str(), H5P_DEFAULT));
    if (!ds.valid()) fail(fmt::format("dataset '/{}' cannot be opened", name));
    Handle space = space_handle(H5Dget_space(ds.get()));
    const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
    if (rank < 0) fail(fmt::format("dataset '/{}' has an unreadable dataspace", name));
    dims.assign(static_cast<std::size_t>(rank), 0);
    if (rank > 0 && H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0) {
      fail(fmt::format("dataset '/{}' has an unreadable dataspace", name));
    }
    return ds;
  }

  static std::string dims_text(const std::vector<hsize_t>& dims) {
    std::string out = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) out += (i > 0 ? ", " : "") + std::to_string(dims[i]);
    return out + "]";
  }

  // A dataset of the given shape and type class, read in full.
  template <class T>
  std::vector<T> read(const std::string& name, const std::vector<hsize_t>& expected, H5T_class_t cls,
                      hid_t mem_type) const {
    std::vector<hsize_t> dims;
    Handle ds = open_dataset(name, dims);
    if (dims != expected) {
      fail(fmt::format("dataset '/{}' has shape {} but should have {}", name, dims_text(dims), dims_text(expected)));
    }
    check_type(ds, name, cls);
    return read_all<T>(ds, name, dims, mem_type);
  }

  // A float64 dataset of any shape, read in full.
  std::vector<double> read_any_doubles(const std::string& name) const {
    std::vector<hsize_t> dims;
    Handle ds = open_dataset(name, dims);
    check_type(ds, name, H5T_FLOAT);
    return read_all<double>(ds, name, dims, H5T_NATIVE_DOUBLE);
  }

  void check_type(const Handle& ds, const std::string& name, H5T_class_t cls) const {
    Handle type = type_handle(H5Dget_type(ds.get()));
    if (!type.valid() || H5Tget_class(type.get()) != cls) {
      fail(fmt::format("dataset '/{}' has the wrong element type (expected {})", name,
                       cls == H5T_FLOAT ? "float64" : "uint64"));
    }
  }

  template <class T>
  std::vector<T> read_all(const Handle& ds, const std::string& name, const std::vector<hsize_t>& dims,
                          hid_t mem_type) const {
    std::uint64_t count = 1;
    const std::string what = fmt::format("results file '{}': dataset '/{}'", path_, name);
    for (hsize_t d : dims) count = checked_mul(count, d, what);
    check_memory(checked_mul(count, sizeof(T), what), what);
    std::vector<T> out(static_cast<std::size_t>(count));
    if (count > 0 && H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
      fail(fmt::format("dataset '/{}' cannot be read", name));
    }
    return out;
  }

  Handle open_attribute(const char* name) const {
    if (H5Aexists(file_, name) <= 0) fail(fmt::format("attribute '{}' is missing (not a satalab results file?)", name));
    Handle a = attribute_handle(H5Aopen(file_, name, H5P_DEFAULT));
    if (!a.valid()) fail(fmt::format("attribute '{}' cannot be opened", name));
    return a;
  }

  std::int64_t int_attribute(const char* name) const {
    Handle a = open_attribute(name);
    Handle type = type_handle(H5Aget_type(a.get()));
    if (!type.valid() || H5Tget_class(type.get()) != H5T_INTEGER) {
      fail(fmt::format("attribute '{}' is not an integer", name));
    }
    std::int64_t v = 0;
    if (H5Aread(a.get(), H5T_NATIVE_INT64, &v) < 0) fail(fmt::format("attribute '{}' cannot be read", name));
    return v;
  }

  std::string string_attribute(const char* name) const {
    Handle a = open_attribute(name);
    Handle type = type_handle(H5Aget_type(a.get()));
    if (!type.valid() || H5Tget_class(type.get()) != H5T_STRING) {
      fail(fmt::format("attribute '{}' is not a string", name));
    }
    if (H5Tis_variable_str(type.get()) > 0) {
      Handle mem = string_type();
      char* text = nullptr;
      if (!mem.valid() || H5Aread(a.get(), mem.get(), &text) < 0) {
        fail(fmt::format("attribute '{}' cannot be read", name));
      }
      std::string out = text != nullptr ? text : "";
      H5free_memory(text);
      return out;
    }
    const std::size_t size = H5Tget_size(type.get());
    std::string out(size, '\0');
    if (size > 0 && H5Aread(a.get(), type.get(), out.data()) < 0) {
      fail(fmt::format("attribute '{}' cannot be read", name));
    }
    out.erase(std::find(out.begin(), out.end(), '\0'), out.end());
    return out;
  }

 private:
  hid_t file_;
  std::string path_;
};

std::vector<PointRecord> read_points_table(const Reader& r) {
  std::vector<hsize_t> dims;
  Handle ds = r.open_dataset("points", dims);
  if (dims.size() != 1) r.fail(fmt::format("dataset '/points' has shape {} but must be 1-D", Reader::dims_text(dims)));
  Handle ftype = type_handle(H5Dget_type(ds.get()));
  if (!ftype.valid() || H5Tget_class(ftype.get()) != H5T_COMPOUND) r.fail("dataset '/points' is not a compound table");
  const RowLayout& l = row_layout();
  for (const Column& c : l.columns) {
    if (H5Tget_member_index(ftype.get(), c.name.c_str()) < 0) {
      r.fail(fmt::format("dataset '/points' has no column '{}'", c.name));
    }
  }
  Handle mem = row_memory_type();
  if (!mem.valid()) r.fail("dataset '/points': cannot create the row type");
  const std::size_t rows = static_cast<std::size_t>(dims[0]);
  const std::string what = fmt::format("results file: dataset '/points' ({} rows)", rows);
  check_memory(checked_mul(rows, l.size, what), what);
  std::vector<unsigned char> buffer(rows * l.size, 0);
  if (rows > 0 && H5Dread(ds.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) < 0) {
    r.fail("dataset '/points' cannot be read");
  }
  std::vector<PointRecord> out(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    const unsigned char* row = buffer.data() + i * l.size;
    std::size_t col = 0;
    record_fields(out[i], [&](std::string_view, std::string_view, auto& field) {
      using T = std::remove_cvref_t<decltype(field)>;
      constexpr Kind k = kind_of<T>();
      const unsigned char* at = row + l.columns[col++].offset;
      if constexpr (k == Kind::str) {
        const char* text = nullptr;
        std::memcpy(&text, at, sizeof text);
        field = text != nullptr ? text : "";
      } else if constexpr (k == Kind::flag) {
        std::int8_t v = 0;
        std::memcpy(&v, at, 1);
        field = v != 0;
      } else if constexpr (k == Kind::f64) {
        std::memcpy(&field, at, 8);
      } else if constexpr (k == Kind::u32) {
        std::memcpy(&field, at, 4);
      } else {
        std::uint64_t v = 0;
        std::memcpy(&v, at, 8);
        field = static_cast<T>(v);
      }
    });
  }
  if (rows > 0) {
    Handle space = space_handle(H5Dget_space(ds.get()));
    (void)H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, buffer.data());
  }
  return out;
}

void read_component_arrays(const Reader& r, std::vector<PointRecord>& records, std::size_t c) {
  const std::string prefix = kComponentPrefix[c];
  const std::size_t n = records.size();
  const auto abs_hist = r.read<std::uint64_t>(prefix + "abs_hist", {n, kHistColumns}, H5T_INTEGER, H5T_NATIVE_UINT64);
  const auto rel_hist = r.read<std::uint64_t>(prefix + "rel_hist", {n, kHistColumns}, H5T_INTEGER, H5T_NATIVE_UINT64);
  const std::vector<hsize_t> dims = {n, kPositionBlocks};
  const auto first =
      r.read<std::uint64_t>("position/" + prefix + "first_token", dims, H5T_INTEGER, H5T_NATIVE_UINT64);
  const auto last = r.read<std::uint64_t>("position/" + prefix + "last_token", dims, H5T_INTEGER, H5T_NATIVE_UINT64);
  static constexpr std::array<const char*, 5> kStats = {"median", "p05", "p95", "p99", "max"};
  std::array<std::vector<double>, 10> q;
  for (std::size_t k = 0; k < 10; ++k) {
    q[k] = r.read<double>(fmt::format("position/{}{}_err_{}", prefix, k < 5 ? "abs" : "rel", kStats[k % 5]), dims,
                          H5T_FLOAT, H5T_NATIVE_DOUBLE);
  }
  const auto get_hist = [](const std::uint64_t* in, Log10Histogram& h) {
    std::copy(in, in + kLog10Bins, h.counts.begin());
    h.zeros = in[kLog10Bins];
    h.underflow = in[kLog10Bins + 1];
    h.overflow = in[kLog10Bins + 2];
    h.non_finite = in[kLog10Bins + 3];
  };
  for (std::size_t i = 0; i < n; ++i) {
    ErrorMetrics* m = component(records[i], c);
    if (m == nullptr) continue;
    get_hist(abs_hist.data() + i * kHistColumns, m->abs_histogram);
    get_hist(rel_hist.data() + i * kHistColumns, m->rel_histogram);
    m->by_position.clear();
    for (std::size_t b = 0; b < kPositionBlocks; ++b) {
      const std::size_t at = i * kPositionBlocks + b;
      if (first[at] == kNoBlock) break;
      PositionSummary s;
      s.first_token = static_cast<std::size_t>(first[at]);
      s.last_token = static_cast<std::size_t>(last[at]);
      s.abs_error = {q[0][at], q[1][at], q[2][at], q[3][at], q[4][at]};
      s.rel_error = {q[5][at], q[6][at], q[7][at], q[8][at], q[9][at]};
      m->by_position.push_back(s);
    }
  }
}

// ---------------------------------------------------------------------------
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

// Temporary files `<name>.tmp.<pid>` left by killed writers (we hold the lock).
void remove_stale_temporaries(const std::string& path) {
  const fs::path p(path);
  fs::path dir = p.parent_path();
  if (dir.empty()) dir = ".";
  const std::string stem = p.filename().string() + ".tmp.";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= stem.size() || name.compare(0, stem.size(), stem) != 0) continue;
    const std::string pid = name.substr(stem.size());
    if (!std::all_of(pid.begin(), pid.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) continue;
    std::error_code rm;
    fs::remove(it->path(), rm);
  }
}

}  // namespace

// ---------------------------------------------------------------------------

ResultsContents read_results(const std::string& path) {
  QuietHdf5Errors quiet;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw InvalidArgument(fmt::format("results file '{}': does not exist", path));
  if (fs::is_directory(status)) throw InvalidArgument(fmt::format("results file '{}': is a directory", path));
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InvalidArgument(fmt::format("results file '{}': is not an HDF5 file", path));
  Handle file = file_handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) throw InvalidArgument(fmt::format("results file '{}': cannot be opened as HDF5", path));
  const Reader r(file.get(), path);

  ResultsContents out;
  const std::int64_t version = r.int_attribute("schema_version");
  if (version != kResultsSchemaVersion) {
    r.fail(fmt::format("schema_version {} is not supported (this build reads schema_version {})", version,
                       kResultsSchemaVersion));
  }
  out.schema_version = static_cast<int>(version);
  out.metadata.satalab_version = r.string_attribute("satalab_version");
  out.metadata.git_commit = r.string_attribute("git_commit");
  out.metadata.command_line = r.string_attribute("command_line");
  out.metadata.config_text = r.string_attribute("config_text");
  out.metadata.start_time = r.string_attribute("start_time");
  const std::int64_t total = r.int_attribute("total_points");
  if (total < 0) r.fail(fmt::format("attribute 'total_points' is negative ({})", total));
  out.metadata.total_points = static_cast<std::uint64_t>(total);
  const auto non_negative = [&](const char* name) {
    const std::int64_t v = r.int_attribute(name);
    if (v < 0) r.fail(fmt::format("attribute '{}' is negative ({})", name, v));
    return static_cast<std::uint64_t>(v);
  };
  out.metadata.shard_index = non_negative("shard_index");
  out.metadata.shard_count = non_negative("shard_count");
  out.metadata.shard_points = non_negative("shard_points");
  if (out.metadata.shard_index < 1 || out.metadata.shard_index > out.metadata.shard_count) {
    r.fail(fmt::format("attributes shard_index {} and shard_count {} are inconsistent (need 1 <= index <= count)",
                       out.metadata.shard_index, out.metadata.shard_count));
  }
  const std::string id = r.string_attribute("sweep_id");
  if (id != sweep_id(out.metadata.config_text)) {
    r.fail(fmt::format("attribute 'sweep_id' is '{}' but its config_text hashes to '{}' (the file was modified)", id,
                       sweep_id(out.metadata.config_text)));
  }

  out.records = read_points_table(r);
  (void)r.read<double>("hist_bin_edges", {kLog10Bins + 1}, H5T_FLOAT, H5T_NATIVE_DOUBLE);
  for (std::size_t c = 0; c < kComponentPrefix.size(); ++c) read_component_arrays(r, out.records, c);

  if (r.exists("outputs")) {
    for (PointRecord& rec : out.records) {
      const std::string g = fmt::format("outputs/{}", rec.params.point_id);
      if (!r.exists(g)) continue;
      if (r.exists(g + "/y")) rec.result.y = r.read_any_doubles(g + "/y");
      if (r.exists(g + "/y_truth")) rec.result.y_truth = r.read_any_doubles(g + "/y_truth");
      if (r.exists(g + "/z")) rec.result.z = r.read_any_doubles(g + "/z");
    }
  }
  return out;
}

ResultsFile::ResultsFile(std::string path, const SweepMetadata& metadata, OpenMode mode)
    : path_(std::move(path)), metadata_(metadata), last_write_(-std::numeric_limits<double>::infinity()) {
  if (path_.empty()) throw InvalidArgument("results file '': the path is empty");
  validate_metadata(path_, metadata_);
  if (metadata_.total_points > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    throw InvalidArgument(fmt::format("results file '{}': total_points {} does not fit the int64 attribute", path_,
                                      metadata_.total_points));
  }
  const std::string journal = path_ + ".journal";
  const std::string refuse_hint = "use --resume to continue it or --force to replace it";

  if (mode == OpenMode::create) {
    if (path_exists(path_)) throw InvalidArgument(fmt::format("results file '{}' exists ({})", path_, refuse_hint));
    if (path_exists(journal)) {
      throw InvalidArgument(fmt::format("results file '{}' exists (as the journal '{}' of an interrupted sweep; {})",
                                        path_, journal, refuse_hint));
    }
  }

  bool created = false;
  int raw = -1;
  if (mode == OpenMode::create || !path_exists(journal)) {
    raw = ::open(journal.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    created = raw >= 0;
  } else {
    raw = ::open(journal.c_str(), O_RDWR | O_CLOEXEC);
  }
  if (raw < 0) {
    const int err = errno;
    if (err == EEXIST) throw InvalidArgument(fmt::format("results file '{}' exists ({})", path_, refuse_hint));
    throw InvalidArgument(
        fmt::format("results file '{}': cannot open journal '{}': {}", path_, journal, errno_text(err)));
  }
  Fd fd(raw);
  struct UnlinkOnFailure {
    const std::string& name;
    bool armed;
    ~UnlinkOnFailure() {
      if (armed) ::unlink(name.c_str());
    }
  } cleanup{journal, created};

  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    cleanup.armed = false;
    throw InvalidArgument(fmt::format("results file '{}' is in use by another process (its journal '{}' is locked)",
                                      path_, journal));
  }

  bool need_header = true;
  std::uint64_t keep = 0;
  if (mode == OpenMode::overwrite) {
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
      throw InvalidArgument(fmt::format("results file '{}': cannot remove it: {}", path_, errno_text(errno)));
    }
  } else if (mode == OpenMode::resume) {
    std::optional<ResultsContents> existing;
    if (path_exists(path_)) existing = read_results(path_);
    JournalContents j = read_journal(fd.get(), journal);
    const std::string differs = fmt::format(
        "results file '{}': the sweep config differs from the one it was started with (use --force to replace it "
        "or choose another output file)",
        path_);
    if (existing && existing->metadata.config_text != metadata_.config_text) throw InvalidArgument(differs);
    if (j.header && j.header->config_text != metadata_.config_text) throw InvalidArgument(differs);
    for (const SweepMetadata* m : {existing ? &existing->metadata : nullptr, j.header ? &*j.header : nullptr}) {
      if (m != nullptr && (m->shard_index != metadata_.shard_index || m->shard_count != metadata_.shard_count)) {
        throw InvalidArgument(fmt::format(
            "results file '{}' holds shard {}/{} of the sweep, not {}/{} (resume it with --shard {}/{}{})", path_,
            m->shard_index, m->shard_count, metadata_.shard_index, metadata_.shard_count, m->shard_index,
            m->shard_count, m->shard_count == 1 ? ", i.e. without --shard" : ""));
      }
    }
    if (existing) {
      metadata_.start_time = existing->metadata.start_time;
    } else if (j.header) {
      metadata_.start_time = j.header->start_time;
    }
    if (existing) {
      for (PointRecord& rec : existing->records) {
        if (finished_.insert(rec.params.point_id).second) records_.push_back(std::move(rec));
      }
    }
    for (PointRecord& rec : j.records) {
      if (finished_.insert(rec.params.point_id).second) {
        records_.push_back(std::move(rec));
        dirty_ = true;  // the HDF5 file lacks it
      }
    }
    if (!existing && !records_.empty()) dirty_ = true;
    if (j.header) {
      need_header = false;
      keep = j.good_size;
      journal_points_start_ = j.points_start;
    }
  }

  // Drop a torn tail (or everything, when the header itself is missing).
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    throw InvalidArgument(
        fmt::format("results file '{}': cannot stat journal '{}': {}", path_, journal, errno_text(errno)));
  }
  if (static_cast<std::uint64_t>(st.st_size) != keep) {
    if (::ftruncate(fd.get(), static_cast<off_t>(keep)) != 0 || ::fsync(fd.get()) != 0) {
      throw InvalidArgument(
          fmt::format("results file '{}': cannot truncate journal '{}': {}", path_, journal, errno_text(errno)));
    }
  }
  journal_size_ = keep;
  if (need_header) {
    const std::string bytes = frame(kHeaderMagic, encode_header(metadata_));
    try {
      pwrite_all(fd.get(), bytes, 0);
    } catch (const std::system_error& e) {
      (void)::ftruncate(fd.get(), 0);
      throw InvalidArgument(fmt::format("results file '{}': cannot write journal '{}': {}", path_, journal,
                                        errno_text(e.code().value())));
    }
    if (::fsync(fd.get()) != 0) {
      throw InvalidArgument(
          fmt::format("results file '{}': cannot sync journal '{}': {}", path_, journal, errno_text(errno)));
    }
    journal_size_ = journal_points_start_ = bytes.size();
  }
  if (created) sync_parent_directory(journal);
  remove_stale_temporaries(path_);
  cleanup.armed = false;
  journal_fd_ = fd.release();
}

ResultsFile::~ResultsFile() {
  if (journal_fd_ < 0) return;
  try {
    if (dirty_) {
      write_hdf5();
    } else if (journal_size_ <= journal_points_start_) {
      // The journal holds no point (the HDF5 file, if any, has them all): it
      // is redundant, and a run that recorded nothing leaves no trace.
      ::unlink((path_ + ".journal").c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "satalab: warning: %s (the journal keeps every finished point; rerun with --resume)\n",
                 e.what());
  }
  ::close(journal_fd_);
}

void ResultsFile::add(const PointRecord& record) {
  const std::string journal = path_ + ".journal";
  if (journal_fd_ < 0) {
    throw InvalidArgument(fmt::format("results file '{}': add() after finish()", path_));
  }
  validate_record(path_, record);
  const std::uint64_t id = record.params.point_id;
  if (finished_.count(id) != 0) {
    throw InvalidArgument(fmt::format("results file '{}': point {} was already added", path_, id));
  }
  const std::string bytes = frame(kPointMagic, encode_record(record));
  try {
    pwrite_all(journal_fd_, bytes, journal_size_);
    if (::fsync(journal_fd_) != 0) throw std::system_error(errno, std::generic_category());
  } catch (const std::system_error& e) {
    // Leave the journal as it was before this record.
    (void)::ftruncate(journal_fd_, static_cast<off_t>(journal_size_));
    (void)::fsync(journal_fd_);
    throw InvalidArgument(fmt::format("results file '{}': cannot append point {} to journal '{}': {}", path_, id,
                                      journal, errno_text(e.code().value())));
  }
  journal_size_ += bytes.size();
  records_.push_back(record);
  finished_.insert(id);
  dirty_ = true;
  if (now_seconds() - last_write_ >= rewrite_interval_s) write_hdf5();
}

void ResultsFile::finish() {
  if (journal_fd_ < 0) return;
  if (dirty_ || !path_exists(path_)) write_hdf5();
  const std::string journal = path_ + ".journal";
  if (::unlink(journal.c_str()) != 0 && errno != ENOENT) {
    throw InvalidArgument(
        fmt::format("results file '{}': cannot remove journal '{}': {}", path_, journal, errno_text(errno)));
  }
  sync_parent_directory(journal);
  ::close(journal_fd_);
  journal_fd_ = -1;
}

void ResultsFile::write_hdf5() {
  std::vector<const PointRecord*> rows;
  rows.reserve(records_.size());
  for (const PointRecord& r : records_) rows.push_back(&r);
  std::sort(rows.begin(), rows.end(),
            [](const PointRecord* a, const PointRecord* b) { return a->params.point_id < b->params.point_id; });
  write_results_atomically(path_, metadata_, rows);
  last_write_ = now_seconds();
  dirty_ = false;
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

namespace {

struct FlatField {
  std::string name, bits, shown;
};

// The /points columns of a record as named bit patterns (timings left out).
std::vector<FlatField> flat_fields(const PointRecord& r) {
  std::vector<FlatField> out;
  record_fields(r, [&](std::string_view prefix, std::string_view name, const auto& field) {
    using T = std::remove_cvref_t<decltype(field)>;
    constexpr Kind k = kind_of<T>();
    if (name == "wall_s" || name == "truth_wall_s") return;
    Encoder e;
    std::string shown;
    if constexpr (k == Kind::str) {
      e.str(field);
      shown = "'" + field + "'";
    } else if constexpr (k == Kind::flag) {
      e.u8(field ? 1 : 0);
      shown = field ? "true" : "false";
    } else if constexpr (k == Kind::f64) {
      e.f64(field);
      shown = fmt::format("{}", field);
    } else {
      e.u64(field);
      shown = fmt::format("{}", field);
    }
    out.push_back({std::string(prefix) + std::string(name), std::move(e.bytes()), std::move(shown)});
  });
  return out;
}

std::string component_bits(const ErrorMetrics& m, bool histograms) {
  Encoder e;
  if (histograms) {
    encode_histogram(e, m.abs_histogram);
    encode_histogram(e, m.rel_histogram);
  } else {
    e.u64(m.by_position.size());
    for (const PositionSummary& b : m.by_position) {
      e.u64(b.first_token);
      e.u64(b.last_token);
      encode_quantiles(e, b.abs_error);
      encode_quantiles(e, b.rel_error);
    }
  }
  return std::move(e.bytes());
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

}  // namespace

std::string result_difference(const PointRecord& a, const PointRecord& b) {
  const std::vector<FlatField> fa = flat_fields(a), fb = flat_fields(b);
  for (std::size_t i = 0; i < fa.size(); ++i) {
    if (fa[i].bits != fb[i].bits) return fmt::format("column '{}' ({} vs {})", fa[i].name, fa[i].shown, fb[i].shown);
  }
  for (std::size_t c = 0; c < kComponentPrefix.size(); ++c) {
    const ErrorMetrics* ma = component(a, c);
    const ErrorMetrics* mb = component(b, c);
    if (ma == nullptr || mb == nullptr) continue;  // has_* columns equal: both absent
    if (component_bits(*ma, true) != component_bits(*mb, true)) {
      return fmt::format("datasets '{0}abs_hist'/'{0}rel_hist'", kComponentPrefix[c]);
    }
    if (component_bits(*ma, false) != component_bits(*mb, false)) {
      return fmt::format("datasets 'position/{}*'", kComponentPrefix[c]);
    }
  }
  const std::array<std::pair<const char*, const std::vector<double>*>, 3> oa = {
      std::pair{"y", &a.result.y}, {"y_truth", &a.result.y_truth}, {"z", &a.result.z}};
  const std::array<const std::vector<double>*, 3> ob = {&b.result.y, &b.result.y_truth, &b.result.z};
  for (std::size_t i = 0; i < oa.size(); ++i) {
    if (!oa[i].second->empty() && !ob[i]->empty() && !same_bits(*oa[i].second, *ob[i])) {
      return fmt::format("output '{}'", oa[i].first);
    }
  }
  return {};
}

ResultsContents read_results_with_journal(const std::string& path) {
  const std::string journal = path + ".journal";
  if (!path_exists(journal)) return read_results(path);  // names a missing file
  const int raw = ::open(journal.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    throw InvalidArgument(fmt::format("results file '{}': cannot open journal '{}': {}", path, journal,
                                      errno_text(errno)));
  }
  Fd fd(raw);
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    throw InvalidArgument(fmt::format(
        "results file '{}' is being written by a running sweep (its journal '{}' is locked); wait for it or stop it",
        path, journal));
  }
  JournalContents j = read_journal(fd.get(), journal);
  std::optional<ResultsContents> file;
  if (path_exists(path)) file = read_results(path);
  if (!j.header) {
    if (file) return std::move(*file);
    throw InvalidArgument(
        fmt::format("results file '{}' does not exist and its journal '{}' holds no sweep header", path, journal));
  }
  ResultsContents out;
  if (file) {
    out = std::move(*file);
    if (j.header->config_text != out.metadata.config_text || j.header->shard_index != out.metadata.shard_index ||
        j.header->shard_count != out.metadata.shard_count) {
      throw InvalidArgument(fmt::format("results file '{}': its journal '{}' belongs to another sweep or shard",
                                        path, journal));
    }
  } else {
    out.metadata = *j.header;
    out.schema_version = kResultsSchemaVersion;
  }
  std::set<std::uint64_t> ids;
  for (const PointRecord& r : out.records) ids.insert(r.params.point_id);
  for (PointRecord& r : j.records) {
    if (ids.insert(r.params.point_id).second) out.records.push_back(std::move(r));
  }
  std::sort(out.records.begin(), out.records.end(),
            [](const PointRecord& x, const PointRecord& y) { return x.params.point_id < y.params.point_id; });
  return out;
}

void write_results(const std::string& path, const SweepMetadata& metadata, std::vector<PointRecord> records) {
  validate_metadata(path, metadata);
  std::sort(records.begin(), records.end(),
            [](const PointRecord& x, const PointRecord& y) { return x.params.point_id < y.params.point_id; });
  std::vector<const PointRecord*> rows;
  rows.reserve(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    validate_record(path, records[i]);
    if (i > 0 && records[i].params.point_id == records[i - 1].params.point_id) {
      throw InvalidArgument(
          fmt::format("results file '{}': point {} appears twice", path, records[i].params.point_id));
    }
    rows.push_back(&records[i]);
  }
  write_results_atomically(path, metadata, rows);
}

}  // namespace satalab
