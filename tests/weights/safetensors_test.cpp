#include "graft/weights/safetensors.h"

#include <gtest/gtest.h>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "test_util.h"

namespace graft {
namespace {

// The same formulas as tests/reference/safetensors_fixtures.py.
TensorList expected_tensors() {
  return {
      {"f32", torch::arange(24, torch::kFloat32).reshape({2, 3, 4}) / 7.0 - 1.5},
      {"f16", (torch::arange(10, torch::kFloat32) / 3.0).to(torch::kFloat16)},
      {"bf16", (torch::arange(6, torch::kFloat32).reshape({3, 2}) * 1.25 - 2).to(torch::kBFloat16)},
      {"i64", torch::arange(5, torch::kInt64) * 1000000007 - 3},
      {"u8", torch::arange(7, torch::kUInt8) * 37},
      {"scalar", torch::tensor(3.5f)},
      {"empty", torch::zeros({0, 4})},
  };
}

void expect_same_list(const TensorList& got, const TensorList& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first);
    EXPECT_EQ(got[i].second.scalar_type(), want[i].second.scalar_type()) << want[i].first;
    EXPECT_TRUE(torch::equal(got[i].second, want[i].second)) << want[i].first;
  }
}

TEST(Safetensors, RoundTripIsBitExact) {
  test::TempDir dir;
  std::string path = dir / "a.safetensors";
  save_safetensors(path, expected_tensors(), {{"writer", "graft"}});
  SafetensorsFile f = load_safetensors(path);
  expect_same_list(f.tensors, expected_tensors());
  EXPECT_EQ(f.metadata.at("writer"), "graft");
  // Data starts on an 8-byte boundary, as the format recommends.
  std::string bytes = read_file(path);
  uint64_t len = 0;
  for (int i = 0; i < 8; ++i) len |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  EXPECT_EQ(len % 8, 0u);
}

TEST(Safetensors, ReadsAFileWrittenByPythonAndWritesTheSameBytes) {
  if (!test::have_fixture("python_written.safetensors")) GTEST_SKIP() << "no python3-torch fixtures";
  std::string path = test::fixture("python_written.safetensors");
  SafetensorsFile f = load_safetensors(path);
  expect_same_list(f.tensors, expected_tensors());
  EXPECT_EQ(f.metadata.at("writer"), "tests/reference/st.py");
  EXPECT_EQ(safetensors_bytes(f.tensors, f.metadata), read_file(path));
}

TEST(Safetensors, PythonReadsAFileWrittenByGraft) {
  if (!test::have_fixture("python_written.safetensors")) GTEST_SKIP() << "no python3-torch fixtures";
  test::TempDir dir;
  std::string path = dir / "graft.safetensors";
  save_safetensors(path, expected_tensors(), {{"writer", "graft"}});
  std::string cmd = std::string("/usr/bin/python3 ") + GRAFT_SOURCE_DIR +
                    "/tests/reference/safetensors_fixtures.py " + path + " > /dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST(Safetensors, BadFilesNameTheProblem) {
  std::string good = safetensors_bytes(expected_tensors());
  auto message = [](const std::string& bytes) {
    try {
      parse_safetensors(bytes, "bad.safetensors");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("abc").find("bad.safetensors"), std::string::npos);
  EXPECT_NE(message(good.substr(0, good.size() - 3)).find("truncated"), std::string::npos);
  std::string huge = good;
  huge[7] = '\x7f';
  EXPECT_NE(message(huge).find("exceeds the file size"), std::string::npos);
  std::string bad_dtype = good;
  auto pos = bad_dtype.find("\"F32\"");
  bad_dtype.replace(pos, 5, "\"Q32\"");
  EXPECT_NE(message(bad_dtype).find("'Q32'"), std::string::npos);
  std::string not_json = good;
  not_json[8] = '[';
  EXPECT_NE(message(not_json).find("bad.safetensors"), std::string::npos);
}

TEST(AtomicFile, ReplacesWholeOrNothing) {
  test::TempDir dir;
  std::string path = dir / "f.bin";
  write_file_atomic(path, "first");
  write_file_atomic(path, "second");
  EXPECT_EQ(read_file(path), "second");
  // A folder that does not exist: clear error, nothing left behind.
  try {
    write_file_atomic(dir / "missing/f.bin", "x");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing/f.bin"), std::string::npos);
  }
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(std::string(1000, 'a')),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

}  // namespace
}  // namespace graft
