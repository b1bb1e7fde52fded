#include "graft/core/files.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "test_util.h"

namespace graft {
namespace {

// Each kind of path that is not a regular file has its own message naming it.
TEST(CoreFiles, CheckInputFileNamesWhatThePathIs) {
  test::TempDir dir;
  test::write_bytes(dir / "a.txt", "x");
  std::filesystem::create_symlink(dir / "a.txt", dir / "link.txt");
  EXPECT_NO_THROW(check_input_file(dir / "a.txt"));
  EXPECT_NO_THROW(check_input_file(dir / "link.txt"));
  EXPECT_EQ(test::error_of([&] { check_input_file(dir / "none"); }),
            "'" + dir / "none" + "' does not exist (expected a file)");
  EXPECT_EQ(test::error_of([&] { check_input_file(dir.path()); }),
            "'" + dir.path() + "' is a folder (expected a file; give the files in it, e.g. " +
                dir.path() + "/*)");
  EXPECT_EQ(test::error_of([] { check_input_file("/dev/null"); }),
            "'/dev/null' is not a regular file");
}

}  // namespace
}  // namespace graft
