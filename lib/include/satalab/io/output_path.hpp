#pragma once
// Checks that an output file can be written, before any computation starts
// (docs/architecture.md §6): a long run must not fail at its end on something
// knowable at its start, such as a missing or read-only directory.
#include <string>

namespace satalab {

enum class OutputMode {
  create,   // the file must not exist yet
  replace,  // an existing file may be replaced
  extend,   // an existing file is continued (resume) or a new one created
};

// Throws InvalidArgument (one line naming the path and the reason) when the
// path is empty, names a directory, its directory does not exist or is not a
// directory, a file cannot be created in that directory (checked by creating
// and removing a probe file, so read-only file systems and permissions are
// both caught), or the file exists and mode is create. Writes nothing else.
void check_output_path(const std::string& path, OutputMode mode);

}  // namespace satalab
