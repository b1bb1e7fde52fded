#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <zlib.h>

#include "graft/core/error.h"
#include "graft/data/image_set.h"
#include "test_util.h"

namespace graft {
namespace {

using test::error_of;

namespace fs = std::filesystem;

const char* const kFashion = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

// Reference values were read from the same files with Python's gzip + numpy.

std::vector<int64_t> histogram(const std::vector<uint8_t>& labels) {
  std::vector<int64_t> h(10, 0);
  for (uint8_t l : labels) ++h.at(l);
  return h;
}

int64_t pixel_sum(const IdxImages& im, int64_t i) {
  int64_t s = 0;
  for (int64_t k = 0; k < im.rows * im.cols; ++k) s += im.pixels[i * im.rows * im.cols + k];
  return s;
}

using test::write_bytes;

std::string be32(uint32_t v) {
  return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

/// A raw IDX image file with `count` images of rows x cols (pixels i % 251).
std::string idx_images(uint32_t count, uint32_t rows, uint32_t cols, uint32_t magic = 0x803) {
  std::string s = be32(magic) + be32(count) + be32(rows) + be32(cols);
  for (uint32_t i = 0; i < count * rows * cols; ++i) s += char(i % 251);
  return s;
}

std::string idx_labels(uint32_t count) {
  std::string s = be32(0x801) + be32(count);
  for (uint32_t i = 0; i < count; ++i) s += char(i % 10);
  return s;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
  gzclose(f);
}

TEST(DataIdx, FashionMnistTest) {
  if (!fs::exists(kFashion)) GTEST_SKIP() << "Debian's dataset-fashion-mnist is not installed";
  IdxImages im = read_idx_images(kFashion);
  EXPECT_EQ(im.count, 10000);
  EXPECT_EQ(im.rows, 28);
  EXPECT_EQ(im.cols, 28);
  ASSERT_EQ(im.pixels.size(), size_t(10000 * 28 * 28));
  int64_t total = 0;
  for (uint8_t p : im.pixels) total += p;
  EXPECT_EQ(total, 573469082);
  EXPECT_EQ(pixel_sum(im, 0), 33456);
  EXPECT_EQ(pixel_sum(im, 9999), 24390);
  const uint8_t row10[] = {0, 0, 0, 4, 0, 53, 129, 120, 147, 175};
  for (int x = 0; x < 10; ++x) EXPECT_EQ(im.pixels[10 * 28 + 10 + x], row10[x]) << x;

  auto labels = read_idx_labels("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(histogram(labels), std::vector<int64_t>(10, 1000));
  EXPECT_EQ(std::vector<uint8_t>(labels.begin(), labels.begin() + 10),
            (std::vector<uint8_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
}

TEST(DataIdx, MnistTestAsImageSet) {
  std::string dir = test::shared_data("mnist_test");
  if (dir.empty()) GTEST_SKIP() << "no ../shared/data/mnist_test";
  ImageSet set = open_image_set(dir + "/t10k-images-idx3-ubyte.gz");
  ASSERT_EQ(set.size(), 10000u);
  EXPECT_EQ(set.classes, (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
  EXPECT_EQ(set.class_counts(),
            (std::vector<int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}));
  EXPECT_EQ(set.samples[0].label, 7);
  EXPECT_EQ(set.samples[1].label, 2);
  cv::Mat m = set.load(1);
  ASSERT_EQ(m.type(), CV_8UC1);
  ASSERT_EQ(m.rows, 28);
  ASSERT_EQ(m.cols, 28);
  const uint8_t row10[] = {0, 0, 76, 247, 253, 231, 63, 0, 0, 0};
  for (int x = 0; x < 10; ++x) EXPECT_EQ(m.at<uint8_t>(10, 10 + x), row10[x]) << x;
  EXPECT_EQ(cv::sum(set.load(0))[0], 18454);
  EXPECT_EQ(set.identity(5), dir + "/t10k-images-idx3-ubyte.gz#5");
}

TEST(DataIdx, RawAndGzipReadTheSame) {
  test::TempDir tmp;
  write_bytes(tmp / "a-images-idx3-ubyte", idx_images(3, 4, 5));
  write_bytes(tmp / "a-labels-idx1-ubyte", idx_labels(3));
  write_gz(tmp / "b-images-idx3-ubyte.gz", idx_images(3, 4, 5));
  write_gz(tmp / "b-labels-idx1-ubyte.gz", idx_labels(3));
  IdxImages a = read_idx_images(tmp / "a-images-idx3-ubyte");
  IdxImages b = read_idx_images(tmp / "b-images-idx3-ubyte.gz");
  EXPECT_EQ(a.count, 3);
  EXPECT_EQ(a.rows, 4);
  EXPECT_EQ(a.cols, 5);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_EQ(a.pixels[59], 59);
  ImageSet set = open_image_set(tmp / "a-images-idx3-ubyte");
  EXPECT_EQ(set.size(), 3u);
  EXPECT_EQ(set.samples[2].label, 2);
  EXPECT_EQ(set.load(2).at<uint8_t>(3, 4), 59);
}

TEST(DataIdx, BadFilesNameFileAndField) {
  test::TempDir tmp;
  std::string magic = tmp / "magic-images-idx3-ubyte";
  write_bytes(magic, idx_images(2, 3, 3, 0x804));
  std::string msg = error_of([&] { read_idx_images(magic); });
  EXPECT_NE(msg.find(magic), std::string::npos) << msg;
  EXPECT_NE(msg.find("magic"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0x804"), std::string::npos) << msg;

  std::string labels_as_images = tmp / "l-images-idx3-ubyte";
  write_bytes(labels_as_images, idx_labels(5));
  msg = error_of([&] { read_idx_images(labels_as_images); });
  EXPECT_NE(msg.find("magic 0x801"), std::string::npos) << msg;

  std::string truncated = tmp / "t-images-idx3-ubyte";
  std::string bytes = idx_images(4, 3, 3);
  write_bytes(truncated, bytes.substr(0, bytes.size() - 5));
  msg = error_of([&] { read_idx_images(truncated); });
  EXPECT_NE(msg.find(truncated), std::string::npos) << msg;
  EXPECT_NE(msg.find("31 bytes of data (expected 36"), std::string::npos) << msg;

  std::string header = tmp / "h-images-idx3-ubyte";
  write_bytes(header, bytes.substr(0, 10));
  msg = error_of([&] { read_idx_images(header); });
  EXPECT_NE(msg.find(header), std::string::npos) << msg;
  EXPECT_NE(msg.find("too short"), std::string::npos) << msg;

  // A gzip stream cut in the middle.
  std::string gz = tmp / "g-images-idx3-ubyte.gz";
  write_gz(gz, idx_images(50, 28, 28));
  std::string whole;
  {
    std::ifstream f(gz, std::ios::binary);
    whole.assign(std::istreambuf_iterator<char>(f), {});
  }
  write_bytes(gz, whole.substr(0, whole.size() / 2));
  msg = error_of([&] { read_idx_images(gz); });
  EXPECT_NE(msg.find(gz), std::string::npos) << msg;

  msg = error_of([&] { read_idx_images(tmp / "missing-images-idx3-ubyte.gz"); });
  EXPECT_NE(msg.find("missing-images-idx3-ubyte.gz"), std::string::npos) << msg;
}

TEST(DataIdx, ImageSetChecksLabels) {
  test::TempDir tmp;
  std::string images = tmp / "x-images-idx3-ubyte";
  write_bytes(images, idx_images(4, 2, 2));
  std::string msg = error_of([&] { open_image_set(images); });
  EXPECT_NE(msg.find("x-labels-idx1-ubyte"), std::string::npos) << msg;

  write_bytes(tmp / "x-labels-idx1-ubyte", idx_labels(3));
  msg = error_of([&] { open_image_set(images); });
  EXPECT_NE(msg.find("3 labels"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4 images"), std::string::npos) << msg;

  std::string other = tmp / "notes.txt";
  write_bytes(other, "hello");
  msg = error_of([&] { open_image_set(other); });
  EXPECT_NE(msg.find(other), std::string::npos) << msg;
}

}  // namespace
}  // namespace graft
