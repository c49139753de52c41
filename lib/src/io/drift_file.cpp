// The files of `satalab drift` (io/drift_file.hpp; docs/results-schema.md, "Drift files").
#include "satalab/io/drift_file.hpp"

#include <fmt/format.h>
#include <hdf5.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <vector>

#include "atomic_file.hpp"
#include "hdf5_attributes.hpp"
#include "hdf5_handles.hpp"
#include "satalab/build_info.hpp"
#include "satalab/error.hpp"
#include "satalab/version.hpp"

namespace satalab {
namespace {

using detail::Handle;

constexpr const char* kFormat = "satalab drift";
constexpr const char* kCheckpointFormat = "satalab drift checkpoint";
constexpr const char* kFormatVersion = "1";
const double kNaN = std::numeric_limits<double>::quiet_NaN();

void write_array(hid_t file, const std::string& path, const char* name, const std::vector<hsize_t>& dims,
                 const std::vector<double>& values) {
  const std::string where = fmt::format("drift file '{}': dataset '{}'", path, name);
  Handle space = detail::space_handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  if (!space.valid()) throw InvalidArgument(fmt::format("{}: cannot create dataspace", where));
  Handle dataset = detail::dataset_handle(
      H5Dcreate2(file, name, H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!dataset.valid()) throw InvalidArgument(fmt::format("{} cannot be created", where));
  if (!values.empty() && H5Dwrite(dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0) {
    throw InvalidArgument(fmt::format("{} cannot be written", where));
  }
  if (!dataset.close()) throw InvalidArgument(fmt::format("{} cannot be closed", where));
}

std::vector<double> read_array(hid_t file, const std::string& path, const char* name, std::size_t expected) {
  Handle dataset = detail::dataset_handle(H5Dopen2(file, name, H5P_DEFAULT));
  if (!dataset.valid()) throw InvalidArgument(fmt::format("drift checkpoint '{}': dataset '{}' is missing", path, name));
  Handle space = detail::space_handle(H5Dget_space(dataset.get()));
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  if (count < 0 || static_cast<std::size_t>(count) != expected) {
    throw InvalidArgument(fmt::format("drift checkpoint '{}': dataset '{}' has {} values (expected {})", path, name,
                                      count, expected));
  }
  std::vector<double> out(expected);
  if (expected > 0 && H5Dread(dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
    throw InvalidArgument(fmt::format("drift checkpoint '{}': dataset '{}' cannot be read", path, name));
  }
  return out;
}

void attribute(hid_t file, const std::string& path, const std::string& name, const std::string& value) {
  if (!detail::write_string_attribute(file, name.c_str(), value)) {
    throw InvalidArgument(fmt::format("drift file '{}': attribute '{}' cannot be written", path, name));
  }
}

// Appends `row` (or `width` NaNs when it is empty: a position not reached).
void append(std::vector<double>& out, const std::vector<double>& row, std::size_t width) {
  if (row.size() == width) {
    out.insert(out.end(), row.begin(), row.end());
  } else {
    out.insert(out.end(), width, kNaN);
  }
}

// The configuration and the results so far: shared by results and checkpoints.
void write_results(hid_t file, const std::string& path, const DriftRun& run) {
  const DriftConfig& c = run.config();
  const DriftResults& r = run.results();
  const std::size_t n = r.positions.size(), H = c.heads, M = c.modes.size(), dv = c.d_value, P = c.taylor_terms;
  const auto hn = static_cast<hsize_t>(n), hH = static_cast<hsize_t>(H), hM = static_cast<hsize_t>(M);
  const auto hdv = static_cast<hsize_t>(dv), hP = static_cast<hsize_t>(P);
  std::vector<double> positions(r.positions.begin(), r.positions.end());
  write_array(file, path, "positions", {hn}, positions);

  std::vector<double> truth_y, truth_z, truth_max, taylor_y, taylor_z_terms, baseline_y, baseline_z;
  std::vector<double> truncation_rel, baseline_abs, baseline_rel;
  for (std::size_t h = 0; h < H; ++h) {
    for (std::size_t i = 0; i < n; ++i) {
      const DriftTruth& t = r.truth[h][i];
      const bool done = i < r.done_positions;
      append(truth_y, t.y, dv);
      truth_z.push_back(done ? t.z : kNaN);
      truth_max.push_back(done ? t.max_score : kNaN);
      append(taylor_y, t.taylor_y, dv);
      append(taylor_z_terms, t.taylor_z_terms, P);
      append(baseline_y, t.baseline_y, dv);
      baseline_z.push_back(done ? t.baseline_z : kNaN);
      truncation_rel.push_back(drift_row_error(t.taylor_y, t.y).rel);
      const RowError b = drift_row_error(t.baseline_y, t.y);
      baseline_abs.push_back(b.abs);
      baseline_rel.push_back(b.rel);
    }
  }
  write_array(file, path, "truth_y", {hH, hn, hdv}, truth_y);
  write_array(file, path, "truth_z", {hH, hn}, truth_z);
  write_array(file, path, "truth_max_score", {hH, hn}, truth_max);
  write_array(file, path, "taylor_y", {hH, hn, hdv}, taylor_y);
  write_array(file, path, "taylor_z_terms", {hH, hn, hP}, taylor_z_terms);
  write_array(file, path, "baseline_y", {hH, hn, hdv}, baseline_y);
  write_array(file, path, "baseline_z", {hH, hn}, baseline_z);
  write_array(file, path, "truncation_rel_error", {hH, hn}, truncation_rel);
  write_array(file, path, "baseline_abs_error", {hH, hn}, baseline_abs);
  write_array(file, path, "baseline_rel_error", {hH, hn}, baseline_rel);

  std::vector<double> sata_y, sata_z, sata_z_terms, abs_error, rel_error, rounding_rel;
  for (std::size_t m = 0; m < M; ++m) {
    for (std::size_t h = 0; h < H; ++h) {
      for (std::size_t i = 0; i < n; ++i) {
        const DriftSata& s = r.sata[m][h][i];
        const DriftTruth& t = r.truth[h][i];
        append(sata_y, s.y, dv);
        sata_z.push_back(i < r.done_positions ? s.z : kNaN);
        append(sata_z_terms, s.z_terms, P);
        const RowError total = drift_row_error(s.y, t.y);
        abs_error.push_back(total.abs);
        rel_error.push_back(total.rel);
        rounding_rel.push_back(drift_row_error(s.y, t.taylor_y).rel);
      }
    }
  }
  write_array(file, path, "sata_y", {hM, hH, hn, hdv}, sata_y);
  write_array(file, path, "sata_z", {hM, hH, hn}, sata_z);
  write_array(file, path, "sata_z_terms", {hM, hH, hn, hP}, sata_z_terms);
  write_array(file, path, "sata_abs_error", {hM, hH, hn}, abs_error);
  write_array(file, path, "sata_rel_error", {hM, hH, hn}, rel_error);
  write_array(file, path, "sata_rounding_rel_error", {hM, hH, hn}, rounding_rel);

  std::string modes;
  for (auto m : c.modes) {
    if (!modes.empty()) modes += ",";
    modes += state_accumulation_name(m);
  }
  attribute(file, path, "config", drift_config_text(c));
  attribute(file, path, "modes", modes);
  attribute(file, path, "precision", c.precision);
  attribute(file, path, "satalab_version", version());
  attribute(file, path, "git_commit", git_commit());
  if (!detail::write_int_attribute(file, "tokens_done", static_cast<std::int64_t>(run.tokens_done())) ||
      !detail::write_int_attribute(file, "done_positions", static_cast<std::int64_t>(r.done_positions))) {
    throw InvalidArgument(fmt::format("drift file '{}': attribute 'tokens_done' cannot be written", path));
  }
  if (const char* name = detail::write_build_attributes(file, build_info())) {
    throw InvalidArgument(fmt::format("drift file '{}': attribute '{}' cannot be written", path, name));
  }
}

std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream sa(a), sb(b);
  std::string la, lb;
  while (true) {
    const bool ga = static_cast<bool>(std::getline(sa, la)), gb = static_cast<bool>(std::getline(sb, lb));
    if (!ga && !gb) return "";
    if (!ga) la = "(nothing)";
    if (!gb) lb = "(nothing)";
    if (la != lb) return fmt::format("{} there, {} here", la, lb);
  }
}

}  // namespace

void write_drift_file(const std::string& path, const DriftRun& run,
                      const std::map<std::string, std::string>& attributes, bool overwrite) {
  detail::AtomicWrite how;
  how.label = "drift file";
  how.replace = overwrite;
  detail::write_hdf5_atomically(path, how, [&](hid_t file) {
    write_results(file, path, run);
    attribute(file, path, "format", kFormat);
    attribute(file, path, "format_version", kFormatVersion);
    for (const auto& [name, value] : attributes) attribute(file, path, name, value);
  });
}

void write_drift_checkpoint(const std::string& path, const DriftRun& run, double elapsed_seconds) {
  detail::AtomicWrite how;
  how.label = "drift checkpoint";
  how.replace = true;
  how.strict_sync = true;
  detail::write_hdf5_atomically(path, how, [&](hid_t file) {
    write_results(file, path, run);
    attribute(file, path, "format", kCheckpointFormat);
    attribute(file, path, "format_version", kFormatVersion);
    attribute(file, path, "elapsed_seconds", fmt::format("{:.17g}", elapsed_seconds));
    // The states of every (mode, head), mode-major, one after another: their
    // sizes differ by mode (state_sizes gives them).
    const auto snapshots = run.state_snapshots();
    std::vector<double> flat, sizes;
    for (const auto& s : snapshots) {
      flat.insert(flat.end(), s.begin(), s.end());
      sizes.push_back(static_cast<double>(s.size()));
    }
    write_array(file, path, "states", {static_cast<hsize_t>(flat.size())}, flat);
    write_array(file, path, "state_sizes", {static_cast<hsize_t>(sizes.size())}, sizes);
  });
}

double read_drift_checkpoint(const std::string& path, DriftRun& run) {
  detail::QuietHdf5Errors quiet;
  if (!detail::path_exists(path)) {
    throw InvalidArgument(fmt::format("drift checkpoint '{}' does not exist (nothing to resume)", path));
  }
  Handle file = detail::file_handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) throw InvalidArgument(fmt::format("drift checkpoint '{}' is not an HDF5 file", path));
  std::string format, config, elapsed;
  if (detail::read_string_attribute(file.get(), "format", format) != detail::AttributeStatus::ok ||
      format != kCheckpointFormat) {
    throw InvalidArgument(fmt::format("'{}' is not a drift checkpoint (format attribute '{}')", path, format));
  }
  if (detail::read_string_attribute(file.get(), "config", config) != detail::AttributeStatus::ok) {
    throw InvalidArgument(fmt::format("drift checkpoint '{}': attribute 'config' is missing", path));
  }
  const std::string here = drift_config_text(run.config());
  if (config != here) {
    throw InvalidArgument(fmt::format("drift checkpoint '{}' is of another configuration ({})", path,
                                      first_difference(config, here)));
  }
  std::int64_t tokens = 0, done = 0;
  if (detail::read_int_attribute(file.get(), "tokens_done", tokens) != detail::AttributeStatus::ok ||
      detail::read_int_attribute(file.get(), "done_positions", done) != detail::AttributeStatus::ok ||
      detail::read_string_attribute(file.get(), "elapsed_seconds", elapsed) != detail::AttributeStatus::ok) {
    throw InvalidArgument(fmt::format("drift checkpoint '{}': tokens_done, done_positions or elapsed_seconds missing",
                                      path));
  }
  const DriftConfig& c = run.config();
  DriftResults r = run.results();
  const std::size_t n = r.positions.size(), H = c.heads, M = c.modes.size(), dv = c.d_value, P = c.taylor_terms;
  if (done < 0 || static_cast<std::size_t>(done) > n || tokens < 0) {
    throw InvalidArgument(fmt::format("drift checkpoint '{}': done_positions = {} is out of range", path, done));
  }
  r.done_positions = static_cast<std::size_t>(done);
  const auto truth_y = read_array(file.get(), path, "truth_y", H * n * dv);
  const auto truth_z = read_array(file.get(), path, "truth_z", H * n);
  const auto truth_max = read_array(file.get(), path, "truth_max_score", H * n);
  const auto taylor_y = read_array(file.get(), path, "taylor_y", H * n * dv);
  const auto taylor_terms = read_array(file.get(), path, "taylor_z_terms", H * n * P);
  const auto baseline_y = read_array(file.get(), path, "baseline_y", H * n * dv);
  const auto baseline_z = read_array(file.get(), path, "baseline_z", H * n);
  const auto sata_y = read_array(file.get(), path, "sata_y", M * H * n * dv);
  const auto sata_z = read_array(file.get(), path, "sata_z", M * H * n);
  const auto sata_terms = read_array(file.get(), path, "sata_z_terms", M * H * n * P);
  const auto slice = [](const std::vector<double>& a, std::size_t row, std::size_t width) {
    return std::vector<double>(a.begin() + static_cast<std::ptrdiff_t>(row * width),
                               a.begin() + static_cast<std::ptrdiff_t>((row + 1) * width));
  };
  for (std::size_t h = 0; h < H; ++h) {
    for (std::size_t i = 0; i < r.done_positions; ++i) {
      DriftTruth& t = r.truth[h][i];
      const std::size_t row = h * n + i;
      t.y = slice(truth_y, row, dv);
      t.z = truth_z[row];
      t.max_score = truth_max[row];
      t.taylor_y = slice(taylor_y, row, dv);
      t.taylor_z_terms = slice(taylor_terms, row, P);
      t.baseline_y = slice(baseline_y, row, dv);
      t.baseline_z = baseline_z[row];
      for (std::size_t m = 0; m < M; ++m) {
        DriftSata& s = r.sata[m][h][i];
        const std::size_t srow = (m * H + h) * n + i;
        s.y = slice(sata_y, srow, dv);
        s.z = sata_z[srow];
        s.z_terms = slice(sata_terms, srow, P);
      }
    }
  }
  const auto expected = run.state_snapshots();
  std::size_t total = 0;
  for (const auto& e : expected) total += e.size();
  const auto sizes = read_array(file.get(), path, "state_sizes", expected.size());
  const auto flat = read_array(file.get(), path, "states", total);
  std::vector<std::vector<double>> snapshots(expected.size());
  std::size_t at = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (sizes[i] != static_cast<double>(expected[i].size())) {
      throw InvalidArgument(fmt::format("drift checkpoint '{}': state {} has {} numbers (expected {})", path, i,
                                        sizes[i], expected[i].size()));
    }
    snapshots[i].assign(flat.begin() + static_cast<std::ptrdiff_t>(at),
                        flat.begin() + static_cast<std::ptrdiff_t>(at + expected[i].size()));
    at += expected[i].size();
  }
  run.restore(static_cast<std::uint64_t>(tokens), snapshots, r);
  return std::stod(elapsed);
}

}  // namespace satalab
