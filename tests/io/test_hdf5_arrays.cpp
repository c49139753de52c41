// HDF5 input (q, k, v) and output (y, y_truth, z + attributes) of head-major arrays.
#include "satalab/io/hdf5_arrays.hpp"

#include "../support/satalab_test.hpp"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "satalab/error.hpp"

namespace fs = std::filesystem;

namespace {

using satalab::test::has_temp_files;
using satalab::test::read_bytes;
using satalab::test::TempDir;


satalab::HeadArrays make_array(std::size_t heads, std::size_t n, std::size_t dim, std::uint64_t seed) {
  satalab::HeadArrays a;
  a.heads = heads;
  a.n_tokens = n;
  a.dim = dim;
  a.data.resize(a.size());
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-3.0, 3.0);
  for (double& x : a.data) x = dist(rng);
  return a;
}

satalab::QkvArrays make_qkv(std::size_t heads, std::size_t n, std::size_t d, std::size_t dv) {
  return {make_array(heads, n, d, 1), make_array(heads, n, d, 2), make_array(heads, n, dv, 3)};
}

// Writes one raw dataset (any rank, float32 or float64) with the HDF5 C API,
// creating the file when `create` is set and appending otherwise.
void write_raw(const std::string& path, bool create, const std::string& name, const std::vector<hsize_t>& dims,
               const std::vector<double>& values, bool as_float32) {
  const hid_t file = create ? H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)
                            : H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  ASSERT_GE(space, 0);
  const hid_t dset = H5Dcreate2(file, name.c_str(), as_float32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, space,
                                H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(dset, 0);
  if (!values.empty()) {
    if (as_float32) {
      std::vector<float> f(values.begin(), values.end());
      ASSERT_GE(H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, f.data()), 0);
    } else {
      ASSERT_GE(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
    }
  }
  H5Dclose(dset);
  H5Sclose(space);
  ASSERT_GE(H5Fclose(file), 0);
}

std::vector<double> filled(std::size_t count, double value = 0.5) { return std::vector<double>(count, value); }

// Runs read_qkv and returns the InvalidArgument message ("" if nothing thrown).
std::string read_error(const std::string& path) {
  try {
    (void)satalab::read_qkv(path);
  } catch (const satalab::InvalidArgument& e) {
    return e.what();
  }
  return "";
}

void expect_one_line_naming(const std::string& message, const std::string& path, const std::string& dataset) {
  EXPECT_FALSE(message.empty()) << "read_qkv did not throw InvalidArgument";
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("'" + dataset + "'"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

bool bit_equal(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

int run_shell(const std::string& command) {
  const int status = std::system(command.c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

}  // namespace

TEST(Hdf5Qkv, Float64RoundTripIsBitExact) {
  TempDir dir;
  const std::string path = dir.file("qkv.h5");
  satalab::QkvArrays qkv = make_qkv(3, 7, 5, 4);
  // Values that are easy to lose in a text or float32 round trip.
  qkv.q.data[0] = 0.1;
  qkv.q.data[1] = std::numeric_limits<double>::denorm_min();
  qkv.q.data[2] = -0.0;
  qkv.k.data[0] = std::numeric_limits<double>::max();
  qkv.v.data[0] = std::nextafter(1.0, 2.0);
  satalab::write_qkv(path, qkv, false);
  const satalab::QkvArrays back = satalab::read_qkv(path);
  for (const auto& [a, b] : {std::pair{&qkv.q, &back.q}, std::pair{&qkv.k, &back.k}, std::pair{&qkv.v, &back.v}}) {
    EXPECT_EQ(b->heads, a->heads);
    EXPECT_EQ(b->n_tokens, a->n_tokens);
    EXPECT_EQ(b->dim, a->dim);
    EXPECT_TRUE(bit_equal(a->data, b->data));
  }
  EXPECT_TRUE(std::signbit(back.q.data[2]));
  EXPECT_FALSE(has_temp_files(dir.path()));
}

TEST(Hdf5Qkv, Float32FileReadsExactly) {
  TempDir dir;
  const std::string path = dir.file("f32.h5");
  // Values exactly representable in float32, including ones whose nearest
  // double differs from the decimal literal (so a text detour would show).
  std::vector<double> q, k, v;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-10.0f, 10.0f);
  for (int i = 0; i < 2 * 3 * 4; ++i) q.push_back(static_cast<double>(dist(rng)));
  for (int i = 0; i < 2 * 3 * 4; ++i) k.push_back(static_cast<double>(dist(rng)));
  for (int i = 0; i < 2 * 3 * 2; ++i) v.push_back(static_cast<double>(dist(rng)));
  q[0] = static_cast<double>(0.1f);
  q[1] = static_cast<double>(std::numeric_limits<float>::denorm_min());
  k[0] = static_cast<double>(std::numeric_limits<float>::max());
  write_raw(path, true, "q", {2, 3, 4}, q, true);
  write_raw(path, false, "k", {2, 3, 4}, k, true);
  write_raw(path, false, "v", {2, 3, 2}, v, true);
  const satalab::QkvArrays back = satalab::read_qkv(path);
  EXPECT_EQ(back.q.heads, 2u);
  EXPECT_EQ(back.q.n_tokens, 3u);
  EXPECT_EQ(back.q.dim, 4u);
  EXPECT_EQ(back.v.dim, 2u);
  EXPECT_TRUE(bit_equal(back.q.data, q));
  EXPECT_TRUE(bit_equal(back.k.data, k));
  EXPECT_TRUE(bit_equal(back.v.data, v));
}

TEST(Hdf5Qkv, MixedFloat32AndFloat64DatasetsRead) {
  TempDir dir;
  const std::string path = dir.file("mixed.h5");
  write_raw(path, true, "q", {1, 2, 3}, filled(6, 0.25), true);
  write_raw(path, false, "k", {1, 2, 3}, filled(6, 0.1), false);
  write_raw(path, false, "v", {1, 2, 1}, filled(2, 1.5), true);
  const satalab::QkvArrays back = satalab::read_qkv(path);
  EXPECT_EQ(back.q.data, filled(6, 0.25));
  EXPECT_EQ(back.k.data, filled(6, 0.1));
  EXPECT_EQ(back.v.data, filled(2, 1.5));
}

TEST(Hdf5Qkv, MissingDatasetThrowsNamingIt) {
  TempDir dir;
  const std::string path = dir.file("missing.h5");
  write_raw(path, true, "q", {2, 3, 4}, filled(24), false);
  write_raw(path, false, "v", {2, 3, 4}, filled(24), false);
  const std::string message = read_error(path);
  expect_one_line_naming(message, path, "k");
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
}

TEST(Hdf5Qkv, WrongRankThrowsNamingDataset) {
  TempDir dir;
  const std::string path = dir.file("rank.h5");
  write_raw(path, true, "q", {2, 3, 4}, filled(24), false);
  write_raw(path, false, "k", {2, 3, 4}, filled(24), false);
  write_raw(path, false, "v", {6, 4}, filled(24), false);
  const std::string message = read_error(path);
  expect_one_line_naming(message, path, "v");
  EXPECT_NE(message.find("rank 2"), std::string::npos) << message;
}

TEST(Hdf5Qkv, MismatchedHeadsThrowsNamingDataset) {
  TempDir dir;
  const std::string path = dir.file("heads.h5");
  satalab::QkvArrays qkv = make_qkv(2, 5, 3, 3);
  qkv.k = make_array(3, 5, 3, 9);
  satalab::write_qkv(path, qkv, false);
  const std::string message = read_error(path);
  expect_one_line_naming(message, path, "k");
  EXPECT_NE(message.find("[3, 5, 3]"), std::string::npos) << message;
  EXPECT_NE(message.find("heads=2"), std::string::npos) << message;
}

TEST(Hdf5Qkv, MismatchedTokenCountThrowsNamingDataset) {
  TempDir dir;
  const std::string path = dir.file("tokens.h5");
  satalab::QkvArrays qkv = make_qkv(2, 12, 4, 4);
  qkv.v = make_array(2, 10, 4, 9);
  satalab::write_qkv(path, qkv, false);
  const std::string message = read_error(path);
  expect_one_line_naming(message, path, "v");
  EXPECT_NE(message.find("[2, 10, 4]"), std::string::npos) << message;
  EXPECT_NE(message.find("n_tokens=12"), std::string::npos) << message;
}

TEST(Hdf5Qkv, QAndKWithDifferentDThrowsNamingK) {
  TempDir dir;
  const std::string path = dir.file("d.h5");
  satalab::QkvArrays qkv = make_qkv(2, 5, 4, 3);
  qkv.k = make_array(2, 5, 6, 9);
  satalab::write_qkv(path, qkv, false);
  const std::string message = read_error(path);
  expect_one_line_naming(message, path, "k");
  EXPECT_NE(message.find("d=4"), std::string::npos) << message;
}

TEST(Hdf5Qkv, ValueDimensionMayDifferFromQueryDimension) {
  TempDir dir;
  const std::string path = dir.file("dv.h5");
  satalab::write_qkv(path, make_qkv(2, 5, 4, 7), false);
  EXPECT_EQ(satalab::read_qkv(path).v.dim, 7u);
}

TEST(Hdf5Qkv, ZeroDimensionThrowsNamingDataset) {
  TempDir dir;
  const std::string path = dir.file("zero.h5");
  write_raw(path, true, "q", {2, 0, 4}, {}, false);
  write_raw(path, false, "k", {2, 0, 4}, {}, false);
  write_raw(path, false, "v", {2, 0, 4}, {}, false);
  expect_one_line_naming(read_error(path), path, "q");
}

TEST(Hdf5Qkv, NonFloatDatasetThrowsNamingDataset) {
  TempDir dir;
  const std::string path = dir.file("int.h5");
  write_raw(path, true, "q", {1, 2, 2}, filled(4), false);
  write_raw(path, false, "v", {1, 2, 2}, filled(4), false);
  {
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    const hsize_t dims[3] = {1, 2, 2};
    const hid_t space = H5Screate_simple(3, dims, nullptr);
    const hid_t dset = H5Dcreate2(file, "k", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(dset, 0);
    const int values[4] = {1, 2, 3, 4};
    ASSERT_GE(H5Dwrite(dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), 0);
    H5Dclose(dset);
    H5Sclose(space);
    H5Fclose(file);
  }
  const std::string message = read_error(path);
  expect_one_line_naming(message, path, "k");
  EXPECT_NE(message.find("int32"), std::string::npos) << message;
}

TEST(Hdf5Qkv, NaNThrowsNamingDatasetAndFlatIndex) {
  TempDir dir;
  const std::string path = dir.file("nan.h5");
  satalab::QkvArrays qkv = make_qkv(2, 3, 4, 4);
  qkv.q.data[17] = std::numeric_limits<double>::quiet_NaN();
  satalab::write_qkv(path, qkv, false);
  const std::string message = read_error(path);
  expect_one_line_naming(message, path, "q");
  EXPECT_NE(message.find("NaN at flat index 17"), std::string::npos) << message;
}

TEST(Hdf5Qkv, InfThrowsNamingDatasetAndFlatIndex) {
  TempDir dir;
  const std::string path = dir.file("inf.h5");
  satalab::QkvArrays qkv = make_qkv(2, 3, 4, 4);
  qkv.v.data[5] = -std::numeric_limits<double>::infinity();
  qkv.v.data[9] = std::numeric_limits<double>::infinity();
  satalab::write_qkv(path, qkv, false);
  const std::string message = read_error(path);
  expect_one_line_naming(message, path, "v");
  EXPECT_NE(message.find("Inf at flat index 5"), std::string::npos) << message;
}

TEST(Hdf5Qkv, Float32InfThrowsNamingDataset) {
  TempDir dir;
  const std::string path = dir.file("inf32.h5");
  std::vector<double> k = filled(8);
  k[3] = std::numeric_limits<double>::infinity();
  write_raw(path, true, "q", {2, 2, 2}, filled(8), true);
  write_raw(path, false, "k", {2, 2, 2}, k, true);
  write_raw(path, false, "v", {2, 2, 2}, filled(8), true);
  const std::string message = read_error(path);
  expect_one_line_naming(message, path, "k");
  EXPECT_NE(message.find("Inf at flat index 3"), std::string::npos) << message;
}

TEST(Hdf5Qkv, NonexistentFileThrowsNamingIt) {
  TempDir dir;
  const std::string path = dir.file("does_not_exist.h5");
  const std::string message = read_error(path);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(Hdf5Qkv, NonHdf5FileThrowsNamingIt) {
  TempDir dir;
  const std::string path = dir.file("text.h5");
  std::ofstream(path) << "q,k,v\n1,2,3\n";
  const std::string message = read_error(path);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("not an HDF5 file"), std::string::npos) << message;
}

TEST(Hdf5Qkv, WriteQkvRefusesExistingFileWithoutOverwrite) {
  TempDir dir;
  const std::string path = dir.file("qkv.h5");
  satalab::write_qkv(path, make_qkv(1, 2, 2, 2), false);
  const std::string before = read_bytes(path);
  EXPECT_THROW(satalab::write_qkv(path, make_qkv(2, 2, 2, 2), false), satalab::InvalidArgument);
  EXPECT_EQ(read_bytes(path), before);
  satalab::write_qkv(path, make_qkv(2, 2, 2, 2), true);
  EXPECT_EQ(satalab::read_qkv(path).q.heads, 2u);
  EXPECT_FALSE(has_temp_files(dir.path()));
}

namespace {

struct RunOutput {
  satalab::HeadArrays y, y_truth;
  std::vector<double> z;
  std::map<std::string, std::string> attributes;
};

RunOutput make_output(std::size_t heads, std::size_t n, std::size_t dv) {
  RunOutput out{make_array(heads, n, dv, 11), make_array(heads, n, dv, 12), {}, {}};
  out.z.resize(heads * n);
  for (std::size_t i = 0; i < out.z.size(); ++i) out.z[i] = 1.0 + static_cast<double>(i);
  out.attributes = {{"method", "sata"}, {"format", "bf16"}, {"note", "P=4 \xc2\xb5-test"}};
  return out;
}

void write_output(const std::string& path, const RunOutput& out, bool overwrite) {
  satalab::write_run_output(path, out.y, out.y_truth, out.z, out.attributes, overwrite);
}

std::string write_error(const std::string& path, const RunOutput& out, bool overwrite) {
  try {
    write_output(path, out, overwrite);
  } catch (const satalab::InvalidArgument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Hdf5RunOutput, RefusesExistingFileWithoutOverwriteAndLeavesItByteIdentical) {
  TempDir dir;
  const std::string path = dir.file("out.h5");
  write_output(path, make_output(2, 3, 4), false);
  const std::string before = read_bytes(path);
  ASSERT_FALSE(before.empty());
  const std::string message = write_error(path, make_output(1, 5, 2), false);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("exists"), std::string::npos) << message;
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_FALSE(has_temp_files(dir.path()));
}

TEST(Hdf5RunOutput, RefusesExistingNonHdf5FileWithoutOverwrite) {
  TempDir dir;
  const std::string path = dir.file("notes.txt");
  std::ofstream(path) << "precious";
  EXPECT_THROW(write_output(path, make_output(1, 2, 2), false), satalab::InvalidArgument);
  EXPECT_EQ(read_bytes(path), "precious");
}

TEST(Hdf5RunOutput, OverwriteReplacesExistingFile) {
  TempDir dir;
  const std::string path = dir.file("out.h5");
  std::ofstream(path) << "old contents";
  write_output(path, make_output(1, 5, 2), true);
  EXPECT_NE(read_bytes(path), "old contents");
  EXPECT_GT(H5Fis_hdf5(path.c_str()), 0);
  EXPECT_FALSE(has_temp_files(dir.path()));
}

TEST(Hdf5RunOutput, LeavesNoTemporaryFilesBehind) {
  TempDir dir;
  write_output(dir.file("a.h5"), make_output(2, 3, 4), false);
  write_output(dir.file("a.h5"), make_output(2, 3, 4), true);
  EXPECT_THROW(write_output(dir.file("a.h5"), make_output(2, 3, 4), false), satalab::InvalidArgument);
  // A failure after the temporary file exists: renaming onto a directory.
  fs::create_directory(dir.path() / "b.h5");
  const std::string message = write_error(dir.file("b.h5"), make_output(2, 3, 4), true);
  EXPECT_NE(message.find(dir.file("b.h5")), std::string::npos) << message;
  EXPECT_TRUE(fs::is_directory(dir.path() / "b.h5"));
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir.path())) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a.h5", "b.h5"}));
}

TEST(Hdf5RunOutput, MismatchedYAndYTruthShapesThrow) {
  TempDir dir;
  const std::string path = dir.file("out.h5");
  RunOutput out = make_output(2, 3, 4);
  out.y_truth = make_array(2, 3, 5, 1);
  const std::string message = write_error(path, out, false);
  EXPECT_NE(message.find("y_truth"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(has_temp_files(dir.path()));
}

TEST(Hdf5RunOutput, WrongZLengthThrows) {
  TempDir dir;
  const std::string path = dir.file("out.h5");
  RunOutput out = make_output(2, 3, 4);
  out.z.pop_back();
  const std::string message = write_error(path, out, false);
  EXPECT_NE(message.find("'z'"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(path));
}

TEST(Hdf5RunOutput, DataSizeNotMatchingDeclaredShapeThrows) {
  TempDir dir;
  RunOutput out = make_output(2, 3, 4);
  out.y.data.pop_back();
  const std::string message = write_error(dir.file("out.h5"), out, false);
  EXPECT_NE(message.find("'y'"), std::string::npos) << message;
}

TEST(Hdf5RunOutput, DatasetsHaveExpectedShapesAndValues) {
  TempDir dir;
  const std::string path = dir.file("out.h5");
  const RunOutput out = make_output(2, 3, 4);
  write_output(path, out, false);
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  const auto check = [&](const char* name, const std::vector<hsize_t>& dims, const std::vector<double>& values) {
    const hid_t dset = H5Dopen2(file, name, H5P_DEFAULT);
    ASSERT_GE(dset, 0) << name;
    const hid_t space = H5Dget_space(dset);
    std::vector<hsize_t> got(static_cast<std::size_t>(H5Sget_simple_extent_ndims(space)));
    H5Sget_simple_extent_dims(space, got.data(), nullptr);
    EXPECT_EQ(got, dims) << name;
    const hid_t type = H5Dget_type(dset);
    EXPECT_EQ(H5Tget_class(type), H5T_FLOAT) << name;
    EXPECT_EQ(H5Tget_size(type), 8u) << name;
    std::vector<double> data(values.size());
    ASSERT_GE(H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), 0);
    EXPECT_TRUE(bit_equal(data, values)) << name;
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(dset);
  };
  check("y", {2, 3, 4}, out.y.data);
  check("y_truth", {2, 3, 4}, out.y_truth.data);
  check("z", {2, 3}, out.z);
  H5Fclose(file);
}

TEST(Hdf5RunOutput, PythonH5pyReadsShapesAndStringAttributes) {
  const std::string python = SATALAB_PYTHON;
  if (python.empty() || run_shell("'" + python + "' -c 'import h5py, numpy' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "'" << python << "' cannot import h5py";
  }
  TempDir dir;
  const std::string path = dir.file("out.h5");
  write_output(path, make_output(2, 3, 4), false);
  const std::string script_path = dir.file("check.py");
  std::ofstream(script_path) << R"PY(import sys
import h5py
with h5py.File(sys.argv[1], "r") as f:
    assert f["y"].shape == (2, 3, 4), f["y"].shape
    assert f["y_truth"].shape == (2, 3, 4), f["y_truth"].shape
    assert f["z"].shape == (2, 3), f["z"].shape
    assert f["y"].dtype == "float64"
    assert float(f["z"][1, 2]) == 6.0
    method = f.attrs["method"]
    assert isinstance(method, str), type(method)
    assert method == "sata", method
    assert f.attrs["note"] == "P=4 \u00b5-test", f.attrs["note"]
sys.exit(0)
)PY";
  EXPECT_EQ(run_shell("'" + python + "' '" + script_path + "' '" + path + "'"), 0);
}
