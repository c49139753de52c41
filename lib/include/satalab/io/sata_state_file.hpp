#pragma once
// A SATA decode state in an HDF5 file, to stop a decode loop and continue it
// later (or elsewhere) with the same numbers.
//
// Layout: dataset `state`, [features, d_value+1] (z in the last column),
// float32 for float-carrier policies (fp32, fp16, bf16, *-acc32), float64 for
// fp64 and, rounded, for mp<bits>; for mp<bits> also `state_hex`, the same
// values exactly as hexadecimal strings (MPFR "%Ra"), which load() reads.
// String attributes on the root group: format ("satalab SATA state"),
// format_version ("1"), satalab_version, git_commit, d_key, d_value,
// taylor_terms, tokens, precision, coefficient_placement, chunk, and
// softmax_denominator (a decimal that round-trips, or "sqrt(d_key)"); and the
// build that wrote it: build_commit, build_compiler, build_flags, build_isa,
// build_exp_library (satalab/build_info.hpp; absent in older files, not read).
#include <string>

#include "satalab/attention/runtime_sata_state.hpp"

namespace satalab {

// Written under a temporary name and renamed into place; an existing file is
// refused (InvalidArgument) unless overwrite.
void write_sata_state(const std::string& path, const RuntimeSataState& state, bool overwrite);

// Throws InvalidArgument naming the file and what is wrong (missing, not a
// state file, a missing attribute or dataset, a shape that does not match).
RuntimeSataState read_sata_state(const std::string& path);

}  // namespace satalab
