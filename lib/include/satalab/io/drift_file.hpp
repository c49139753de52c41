#pragma once
// The files of `satalab drift` (docs/results-schema.md, "Drift files"): the
// results, and the checkpoint a killed run resumes from. Both are HDF5,
// written atomically (a temporary file fsynced and renamed into place), with
// the build that wrote them; the checkpoint also holds every state exactly.
#include <map>
#include <string>

#include "satalab/experiment/drift.hpp"

namespace satalab {

// The results of `run` (positions it has not reached are NaN). The string
// attributes are added to the root group. An existing file is refused
// (InvalidArgument) unless overwrite.
void write_drift_file(const std::string& path, const DriftRun& run,
                      const std::map<std::string, std::string>& attributes, bool overwrite);

// Replaces `path` by a checkpoint of `run` (its results so far, its states,
// the elapsed seconds).
void write_drift_checkpoint(const std::string& path, const DriftRun& run, double elapsed_seconds);

// Restores `run` from the checkpoint at `path` and returns the elapsed
// seconds it recorded. InvalidArgument naming the file: missing, not a drift
// checkpoint, or of another configuration (naming the first key that differs).
double read_drift_checkpoint(const std::string& path, DriftRun& run);

}  // namespace satalab
