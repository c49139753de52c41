#pragma once
// The realistic-workload pieces of a point (workload/modifiers.hpp) as the
// sweep and `satalab run` read them.
#include <string>
#include <vector>

#include "satalab/io/hdf5_arrays.hpp"
#include "satalab/io/results_file.hpp"
#include "satalab/workload/modifiers.hpp"

namespace satalab::cli {

// The point's modifiers with their parameters, in the order listed.
std::vector<WorkloadModifier> workload_modifiers(const PointParams& p);

// fitted: n_tokens per head drawn with the per-head statistics of `source`
// (read from `path`). InvalidArgument when the point's heads, d_key or d_value
// differ from the file's (naming both).
QkvArrays fitted_workload_inputs(const QkvArrays& source, const std::string& path, std::size_t heads,
                                 std::size_t n_tokens, std::size_t d_key, std::size_t d_value, std::uint64_t seed);

}  // namespace satalab::cli
