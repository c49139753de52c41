#pragma once
// HDF5 input and output of head-major arrays for `satalab run`:
// --input FILE.h5 with datasets q, k, v of shape [heads, n_tokens, d] (float32
// or float64), and --save OUT.h5 with y, y_truth [heads, n_tokens, d_value]
// and z [heads, n_tokens], all float64.
#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "satalab/tensor.hpp"

namespace satalab {

// Reads q, k, v. Throws InvalidArgument (one line, naming the file and the
// dataset) when the file cannot be opened, a dataset is missing, is not rank 3,
// is not float32/float64, shapes disagree (heads and n_tokens equal for all
// three, q and k the same d), a dimension is 0, or any value is NaN or Inf
// (naming the dataset and the flat index of the first bad value).
QkvArrays read_qkv(const std::string& path);

// Writes q, k, v as float64 datasets (for tests and sample inputs).
void write_qkv(const std::string& path, const QkvArrays& qkv, bool overwrite);

// Writes y, y_truth (float64 [heads, n_tokens, d_value]), z (float64
// [heads, n_tokens]), the string attributes and the build attributes
// (build_commit, build_compiler, build_flags, build_isa, build_exp_library) on
// the root group. The file is written under a temporary name in the same
// directory and renamed into place, so a reader never sees a half-written file. An existing file is refused
// (InvalidArgument) unless overwrite is true.
void write_run_output(const std::string& path, const HeadArrays& y, const HeadArrays& y_truth,
                      std::span<const double> z, const std::map<std::string, std::string>& attributes,
                      bool overwrite);

}  // namespace satalab
