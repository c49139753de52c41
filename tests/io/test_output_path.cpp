// check_output_path: every reason an output file could not be written, found
// before any work starts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "satalab/error.hpp"
#include "satalab/io/output_path.hpp"

namespace satalab {
namespace {

namespace fs = std::filesystem;

std::string message(const std::string& path, OutputMode mode) {
  try {
    check_output_path(path, mode);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "ok";
}

class OutputPath : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("satalab-output-path-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(OutputPath, AcceptsANewFileInAnExistingDirectoryAndLeavesNothingBehind) {
  EXPECT_EQ(message((dir_ / "out.h5").string(), OutputMode::create), "ok");
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(OutputPath, RefusesAMissingDirectoryADirectoryAndAFileAsDirectory) {
  const std::string missing = (dir_ / "no" / "out.h5").string();
  EXPECT_EQ(message(missing, OutputMode::create),
            "output file '" + missing + "': directory '" + (dir_ / "no").string() + "' does not exist");
  EXPECT_EQ(message(dir_.string(), OutputMode::replace),
            "output file '" + dir_.string() + "': is a directory (give a file name)");
  std::ofstream(dir_ / "plain") << "x";
  const std::string under_file = (dir_ / "plain" / "out.h5").string();
  EXPECT_EQ(message(under_file, OutputMode::create),
            "output file '" + under_file + "': '" + (dir_ / "plain").string() + "' is not a directory");
  EXPECT_EQ(message("", OutputMode::create), "output file '': the path is empty");
}

TEST_F(OutputPath, AnExistingFileIsRefusedOnlyWhenItMustBeCreated) {
  const std::string path = (dir_ / "out.h5").string();
  std::ofstream(path) << "x";
  EXPECT_EQ(message(path, OutputMode::create), "output file '" + path + "': already exists (refusing to overwrite it)");
  EXPECT_EQ(message(path, OutputMode::replace), "ok");
  EXPECT_EQ(message(path, OutputMode::extend), "ok");
}

TEST_F(OutputPath, RefusesADirectoryNoFileCanBeCreatedIn) {
  // Mode bits do not stop root; /proc is a directory nobody can create files in.
  const std::string path = "/proc/out.h5";
  const std::string m = message(path, OutputMode::create);
  EXPECT_EQ(m.rfind("output file '/proc/out.h5': cannot create files in directory '/proc' (", 0), 0u) << m;
}

}  // namespace
}  // namespace satalab
