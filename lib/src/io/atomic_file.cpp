#include "atomic_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cstdio>
#include <system_error>

#include "hdf5_handles.hpp"
#include "satalab/error.hpp"

namespace satalab::detail {

namespace fs = std::filesystem;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

bool path_exists(const std::string& path) {
  std::error_code ec;
  const auto status = fs::symlink_status(path, ec);
  return !ec && fs::exists(status);
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

bool fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  errno = err;
  return ok;
}

void write_hdf5_atomically(const std::string& path, const AtomicWrite& how, const std::function<void(hid_t)>& fill) {
  QuietHdf5Errors quiet;
  const auto fail = [&](const std::string& problem) {
    return InvalidArgument(fmt::format("{} '{}': {}", how.label, path, problem));
  };
  if (path.empty()) throw InvalidArgument(fmt::format("{} '': the path is empty", how.label));
  if (!how.replace && path_exists(path)) throw fail("already exists (refusing to overwrite it)");
  const std::string tmp = fmt::format("{}.tmp.{}", path, static_cast<long>(::getpid()));
  RemoveOnFailure cleanup{tmp};
  {
    Handle fcpl = plist_handle(H5Pcreate(H5P_FILE_CREATE));
    if (!fcpl.valid() || (!how.track_times && H5Pset_obj_track_times(fcpl.get(), false) < 0)) {
      throw fail("cannot create HDF5 property lists");
    }
    errno = 0;
    Handle file = file_handle(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT));
    if (!file.valid()) {
      throw fail(fmt::format("cannot create temporary file '{}'{}", tmp, errno != 0 ? ": " + errno_text(errno) : ""));
    }
    fill(file.get());
    errno = 0;
    if (!file.close()) throw fail(fmt::format("cannot finish writing temporary file '{}'", tmp));
  }
  // Make the data durable before the rename publishes it.
  if (!fsync_path(tmp) && how.strict_sync) {
    throw fail(fmt::format("cannot sync temporary file '{}': {}", tmp, errno_text(errno)));
  }
  bool moved = false;
  if (!how.replace) {
    // link(2) refuses an existing target atomically (rename would replace a
    // file created meanwhile); where hard links are unsupported, rename.
    if (::link(tmp.c_str(), path.c_str()) == 0) {
      ::unlink(tmp.c_str());
      moved = true;
    } else {
      const int err = errno;
      if (err == EEXIST) throw fail("already exists (refusing to overwrite it)");
      if (err != EPERM && err != ENOTSUP && err != EOPNOTSUPP && err != EXDEV && err != EMLINK) {
        throw fail(fmt::format("cannot move temporary file '{}' into place: {}", tmp, errno_text(err)));
      }
      if (path_exists(path)) throw fail("already exists (refusing to overwrite it)");
    }
  }
  if (!moved && std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    throw fail(fmt::format("cannot rename temporary file '{}' into place: {}", tmp, errno_text(err)));
  }
  cleanup.armed = false;
  sync_parent_directory(path);
}

}  // namespace satalab::detail
