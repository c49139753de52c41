#include "satalab/io/output_path.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "satalab/error.hpp"

namespace satalab {

void check_output_path(const std::string& path, OutputMode mode) {
  namespace fs = std::filesystem;
  if (path.empty()) throw InvalidArgument("output file '': the path is empty");
  std::error_code ec;
  const fs::path target(path);
  if (fs::is_directory(target, ec)) {
    throw InvalidArgument(fmt::format("output file '{}': is a directory (give a file name)", path));
  }
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const fs::file_status status = fs::status(dir, ec);
  if (!fs::exists(status)) {
    throw InvalidArgument(fmt::format("output file '{}': directory '{}' does not exist", path, dir.string()));
  }
  if (!fs::is_directory(status)) {
    throw InvalidArgument(fmt::format("output file '{}': '{}' is not a directory", path, dir.string()));
  }
  if (mode == OutputMode::create && fs::exists(target, ec)) {
    throw InvalidArgument(fmt::format("output file '{}': already exists (refusing to overwrite it)", path));
  }
  // A probe file in the same directory: the one test that sees permissions,
  // read-only mounts and full quota tables alike (root ignores mode bits).
  const std::string probe = (dir / fmt::format(".satalab-write-probe-{}", ::getpid())).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    throw InvalidArgument(fmt::format("output file '{}': cannot create files in directory '{}' ({})", path,
                                      dir.string(), std::strerror(errno)));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace satalab
