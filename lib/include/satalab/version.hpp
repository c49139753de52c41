#pragma once

namespace satalab {

// The project version (CMake's PROJECT_VERSION) and the git commit the library
// was built from (12 hex digits, "unknown" outside a git checkout). Defined in
// a file generated at every build (cmake/write_version.cmake), so that a new
// commit recompiles one file instead of everything.
const char* version();
const char* git_commit();

}  // namespace satalab
