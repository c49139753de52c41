#pragma once
// Files replaced atomically and durably (internal to io/): errno text, the
// parent-directory sync that makes a rename durable, an owned descriptor, and
// the clean-up of temporaries `<name>.tmp.<pid>` left by killed writers.
#include <hdf5.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <utility>

namespace satalab::detail {

std::string errno_text(int err);
// True when `path` exists (a dangling link counts).
bool path_exists(const std::string& path);
// Makes a rename/create/unlink in the directory of `path` durable (best effort).
void sync_parent_directory(const std::string& path);
// Deletes `<path>.tmp.<digits>` files next to `path` (call while holding the file's lock).
void remove_stale_temporaries(const std::string& path);
// fsyncs the file at `path`; false (errno set) when it cannot be opened or synced.
bool fsync_path(const std::string& path);

// How write_hdf5_atomically publishes a file.
struct AtomicWrite {
  const char* label = "file";  // messages: "<label> '<path>': ..."
  bool replace = false;        // replace an existing file (rename); else refuse it atomically (link)
  bool track_times = true;     // false: no object modification times, so equal contents give equal bytes
  bool strict_sync = false;    // a failed fsync of the temporary is an error (else best effort)
};

// Writes an HDF5 file atomically: `fill(file)` writes into `<path>.tmp.<pid>`
// in the same directory, which is closed, fsync'd and moved over `path`,
// and the directory synced. Without `replace`, an existing `path` is refused
// ("already exists (refusing to overwrite it)") atomically with link(2)
// (rename where hard links are unsupported). On any failure the temporary is
// removed and `path` left as it was. Errors: InvalidArgument naming the file.
void write_hdf5_atomically(const std::string& path, const AtomicWrite& how, const std::function<void(hid_t)>& fill);

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

}  // namespace satalab::detail
