// ResultsFile: a sweep's results file made crash safe by an fsync'd journal
// and atomic temp+rename rewrites (results_hdf5.cpp writes the HDF5 file). The layout and the journal
// format are specified in docs/results-schema.md; keep the two in step.
#include "satalab/io/results_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <optional>
#include <system_error>
#include <utility>

#include "atomic_file.hpp"
#include "journal.hpp"
#include "results_schema.hpp"
#include "satalab/error.hpp"
#include "satalab/memory.hpp"

namespace satalab {
namespace {

using namespace detail;

// Journal record magics: the ASCII bytes "SLJH" (header) and "SLJP" (point),
// read as little-endian u32.
constexpr std::uint32_t kHeaderMagic = 0x484A4C53u;
constexpr std::uint32_t kPointMagic = 0x504A4C53u;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
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

}  // namespace

using namespace detail;

ResultsFile::ResultsFile(std::string path, const SweepMetadata& metadata, OpenMode mode, bool allow_mixed_builds)
    : path_(std::move(path)), metadata_(metadata), last_write_(-std::numeric_limits<double>::infinity()) {
  const BuildInfo& me = build_info();
  if (path_.empty()) throw InvalidArgument("results file '': the path is empty");
  validate_metadata(path_, metadata_);
  if (metadata_.total_points > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    throw InvalidArgument(fmt::format("results file '{}': total_points {} does not fit the int64 attribute", path_,
                                      metadata_.total_points));
  }
  const std::string journal = path_ + ".journal";

  if (mode == OpenMode::create) {
    if (path_exists(path_)) throw ResultsFileExists(fmt::format("results file '{}' exists", path_));
    if (path_exists(journal)) {
      throw ResultsFileExists(
          fmt::format("results file '{}' exists (as the journal '{}' of an interrupted sweep)", path_, journal));
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
    if (err == EEXIST) throw ResultsFileExists(fmt::format("results file '{}' exists", path_));
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
  metadata_.builds = {me};  // resume: the existing points' builds, then this one
  if (mode == OpenMode::overwrite) {
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
      throw InvalidArgument(fmt::format("results file '{}': cannot remove it: {}", path_, errno_text(errno)));
    }
  } else if (mode == OpenMode::resume) {
    std::optional<ResultsContents> existing;
    if (path_exists(path_)) existing = read_results(path_);
    JournalContents j = read_journal(fd.get(), journal);
    const auto differs = [&] {
      return ResumeMismatch(
          ResumeMismatch::Kind::config, {},
          fmt::format("results file '{}': the sweep config differs from the one it was started with", path_));
    };
    if (existing && existing->metadata.config_text != metadata_.config_text) throw differs();
    if (j.header && j.header->config_text != metadata_.config_text) throw differs();
    for (const SweepMetadata* m : {existing ? &existing->metadata : nullptr, j.header ? &*j.header : nullptr}) {
      if (m != nullptr && (m->shard_index != metadata_.shard_index || m->shard_count != metadata_.shard_count)) {
        throw ResumeMismatch(ResumeMismatch::Kind::shard, {m->shard_index, m->shard_count},
                             fmt::format("results file '{}' holds shard {}/{} of the sweep, not {}/{}", path_,
                                         m->shard_index, m->shard_count, metadata_.shard_index,
                                         metadata_.shard_count));
      }
    }
    if (existing) {
      metadata_.start_time = existing->metadata.start_time;
    } else if (j.header) {
      metadata_.start_time = j.header->start_time;
    }
    // Builds: the existing points' (the journal's points were computed by the
    // file's writer, or without a file by the journal's writer, known by its
    // commit), then this binary's.
    std::vector<BuildInfo> builds;
    if (existing) builds = existing->metadata.builds;
    const BuildInfo journal_build =
        existing ? existing->writer.value_or(unknown_build())
                 : (j.header && j.header->git_commit == me.commit ? me
                                                                   : unknown_build(j.header ? j.header->git_commit
                                                                                            : "unknown"));
    if (existing) {
      for (PointRecord& rec : existing->records) {
        if (finished_.insert(rec.params.point_id).second) records_.push_back(std::move(rec));
      }
    }
    for (PointRecord& rec : j.records) {
      if (finished_.insert(rec.params.point_id).second) {
        rec.build = build_index(builds, journal_build);
        records_.push_back(std::move(rec));
        dirty_ = true;  // the HDF5 file lacks it
      }
    }
    if (!existing && !records_.empty()) dirty_ = true;
    if (const std::string difference = builds_difference(builds, me); !difference.empty() && !allow_mixed_builds) {
      throw MixedBuilds(fmt::format("results file '{}' was written by another build ({})", path_, difference));
    }
    build_ = build_index(builds, me);
    metadata_.builds = std::move(builds);
    if (j.header) {
      need_header = false;
      keep = j.good_size;
      journal_points_start_ = j.points_start;
    }
    // The journal holds only points of the file's writer: when that is
    // another build, the file takes its points (written now, as this build)
    // and the journal restarts empty.
    if (!records_.empty() && (!existing || !existing->writer || !build_difference(*existing->writer, me).empty())) {
      write_hdf5();
      if (j.header) keep = j.points_start;
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
    std::fprintf(stderr, "satalab: warning: %s (the journal keeps every finished point: resuming the file continues from it)\n",
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
  records_.back().build = build_;
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
  const BuildInfo& me = build_info();
  BuildInfo journal_build;  // as ResultsFile attributes the journal's points
  if (file) {
    journal_build = file->writer.value_or(unknown_build());
    out = std::move(*file);
    if (j.header->config_text != out.metadata.config_text || j.header->shard_index != out.metadata.shard_index ||
        j.header->shard_count != out.metadata.shard_count) {
      throw InvalidArgument(fmt::format("results file '{}': its journal '{}' belongs to another sweep or shard",
                                        path, journal));
    }
  } else {
    out.metadata = *j.header;
    out.schema_version = kResultsSchemaVersion;
    journal_build = j.header->git_commit == me.commit ? me : unknown_build(j.header->git_commit);
  }
  std::set<std::uint64_t> ids;
  for (const PointRecord& r : out.records) ids.insert(r.params.point_id);
  for (PointRecord& r : j.records) {
    if (ids.insert(r.params.point_id).second) {
      r.build = build_index(out.metadata.builds, journal_build);
      out.records.push_back(std::move(r));
    }
  }
  std::sort(out.records.begin(), out.records.end(),
            [](const PointRecord& x, const PointRecord& y) { return x.params.point_id < y.params.point_id; });
  return out;
}

}  // namespace satalab
