#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "graft/core/error.h"
#include "graft/data/image_set.h"
#include "test_util.h"

namespace graft {
namespace {

using test::error_of;

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

using test::contains;

TEST(DataImageSet, HymenopteraSkipsTheGif) {
  std::string root = test::shared_data("hymenoptera/train");
  if (root.empty()) GTEST_SKIP() << "no ../shared/data/hymenoptera";
  ImageSet set = open_image_set(root);
  EXPECT_EQ(set.classes, (std::vector<std::string>{"ants", "bees"}));
  EXPECT_EQ(set.class_counts(), (std::vector<int64_t>{123, 121}));
  EXPECT_EQ(set.skipped, 1);
  bool has_jpeg = false;
  for (const Sample& s : set.samples) {
    EXPECT_FALSE(contains(s.path, ".gif")) << s.path;
    has_jpeg |= contains(s.path, "formica.jpeg");
  }
  EXPECT_TRUE(has_jpeg);
  // Sorted by path within a class.
  for (size_t i = 1; i < set.size(); ++i) {
    if (set.samples[i].label == set.samples[i - 1].label) {
      EXPECT_LT(set.samples[i - 1].path, set.samples[i].path);
    }
  }
  OpenOptions strict;
  strict.strict = true;
  std::string msg = error_of([&] { open_image_set(root, strict); });
  EXPECT_TRUE(contains(msg, root + "/ants/imageNotFound.gif")) << msg;
}

TEST(DataImageSet, PgmWithCommentLoads) {
  std::string path = test::shared_data("att_faces/s1/1.pgm");
  if (path.empty()) GTEST_SKIP() << "no ../shared/data/att_faces";
  cv::Mat m = load_image(path);
  ASSERT_EQ(m.type(), CV_8UC1);
  ASSERT_EQ(m.cols, 92);
  ASSERT_EQ(m.rows, 112);
  // P5 with a '#' comment line: the pixels are the last 92 * 112 bytes.
  std::string bytes = read_file(path);
  ASSERT_EQ(bytes.substr(0, 3), "P5\n");
  ASSERT_EQ(bytes[3], '#');
  std::string pixels = bytes.substr(bytes.size() - 92 * 112);
  EXPECT_EQ(std::memcmp(m.data, pixels.data(), pixels.size()), 0);

  ImageSet faces = open_image_set(test::shared_data("att_faces"));
  EXPECT_EQ(faces.classes.size(), 40u);
  EXPECT_EQ(faces.size(), 400u);
  EXPECT_EQ(faces.skipped, 0);  // README sits next to the class folders, not in them
  EXPECT_EQ(faces.classes[0], "s1");
  EXPECT_EQ(faces.classes[1], "s10");  // sorted by name, as torchvision's ImageFolder
}

TEST(DataImageSet, DecodesToRgbOrGrey) {
  test::TempDir tmp;
  // OpenCV writes BGR(A); load() must give RGB with alpha dropped.
  cv::Mat bgr(2, 3, CV_8UC3, cv::Scalar(10, 20, 30));
  cv::imwrite(tmp / "bgr.png", bgr);
  cv::Mat rgb = load_image(tmp / "bgr.png");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(1, 2), cv::Vec3b(30, 20, 10));

  cv::Mat bgra(2, 3, CV_8UC4, cv::Scalar(10, 20, 30, 7));
  cv::imwrite(tmp / "bgra.png", bgra);
  rgb = load_image(tmp / "bgra.png");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(30, 20, 10));

  cv::Mat deep(2, 2, CV_16UC1, cv::Scalar(65535));
  deep.at<uint16_t>(0, 1) = 257 * 100;
  cv::imwrite(tmp / "deep.png", deep);
  cv::Mat grey = load_image(tmp / "deep.png");
  ASSERT_EQ(grey.type(), CV_8UC1);
  EXPECT_EQ(grey.at<uint8_t>(0, 0), 255);
  EXPECT_EQ(grey.at<uint8_t>(0, 1), 100);

  cv::Mat g(4, 4, CV_8UC1, cv::Scalar(77));
  cv::imwrite(tmp / "g.jpg", g);
  grey = load_image(tmp / "g.jpg");
  ASSERT_EQ(grey.type(), CV_8UC1);
  EXPECT_NEAR(grey.at<uint8_t>(2, 2), 77, 1);
}

TEST(DataImageSet, CorruptFilesNameTheFile) {
  test::TempDir tmp;
  cv::Mat img(64, 64, CV_8UC3);
  cv::randu(img, 0, 255);
  cv::imwrite(tmp / "whole.jpg", img);
  cv::imwrite(tmp / "whole.png", img);
  std::string jpg = read_file(tmp / "whole.jpg"), png = read_file(tmp / "whole.png");
  write_file(tmp / "cut.jpg", jpg.substr(0, jpg.size() * 2 / 3));
  write_file(tmp / "cut.png", png.substr(0, png.size() * 2 / 3));
  write_file(tmp / "garbage.png", "\x89PNG\r\n\x1a\n this is not a PNG body at all");
  write_file(tmp / "empty.jpg", "");
  EXPECT_EQ(load_image(tmp / "whole.jpg").size(), cv::Size(64, 64));
  // Every cut of a JPEG before its end-of-image marker is an error (libjpeg
  // alone would fill the rest with grey); bytes after the marker are fine.
  for (size_t len = 2; len < jpg.size(); len += 1 + jpg.size() / 50) {
    write_file(tmp / "part.jpg", jpg.substr(0, len));
    EXPECT_THROW(load_image(tmp / "part.jpg"), Error) << len;
  }
  write_file(tmp / "part.jpg", jpg.substr(0, jpg.size() - 1));
  EXPECT_THROW(load_image(tmp / "part.jpg"), Error);
  write_file(tmp / "tail.jpg", jpg + "trailing bytes");
  EXPECT_EQ(cv::norm(load_image(tmp / "tail.jpg"), load_image(tmp / "whole.jpg"), cv::NORM_INF), 0);
  for (const char* name : {"cut.jpg", "cut.png", "garbage.png", "empty.jpg", "absent.png"}) {
    std::string msg = error_of([&] { load_image(tmp / name); });
    EXPECT_TRUE(contains(msg, tmp / name)) << msg;
  }
}

TEST(DataImageSet, FolderSkipsNonImagesAndHiddenFiles) {
  test::TempDir tmp;
  test::write_synthetic_image_folder(tmp.path(), 3, 4, 8);
  write_file(tmp / "class0/notes.txt", "not an image");
  write_file(tmp / "class1/fake.png", "plain text with a png name");
  write_file(tmp / "class2/.DS_Store", "hidden");
  fs::create_directories(tmp / ".hidden_class");
  fs::create_directories(tmp / "class2/.thumbs");
  cv::imwrite(tmp / "class2/.thumbs/t.png", cv::Mat(4, 4, CV_8UC1, cv::Scalar(1)));
  fs::create_directories(tmp / "class2/nested");
  cv::imwrite(tmp / "class2/nested/deep.png", cv::Mat(4, 4, CV_8UC1, cv::Scalar(1)));

  ImageSet set = open_image_set(tmp.path());
  EXPECT_EQ(set.classes, (std::vector<std::string>{"class0", "class1", "class2"}));
  EXPECT_EQ(set.class_counts(), (std::vector<int64_t>{4, 4, 5}));
  EXPECT_EQ(set.skipped, 2);
  EXPECT_EQ(set.root, tmp.path());
  EXPECT_EQ(set.identity(0), tmp / "class0/img0.png");

  OpenOptions strict;
  strict.strict = true;
  std::string msg = error_of([&] { open_image_set(tmp.path(), strict); });
  EXPECT_TRUE(contains(msg, tmp / "class0/notes.txt")) << msg;
}

TEST(DataImageSet, BadFoldersNameThePath) {
  test::TempDir tmp;
  std::string msg = error_of([&] { open_image_set(tmp / "nowhere"); });
  EXPECT_TRUE(contains(msg, tmp / "nowhere")) << msg;

  fs::create_directories(tmp / "empty");
  msg = error_of([&] { open_image_set(tmp / "empty"); });
  EXPECT_TRUE(contains(msg, tmp / "empty")) << msg;
  EXPECT_TRUE(contains(msg, "no class sub-folders")) << msg;

  fs::create_directories(tmp / "flat");
  cv::imwrite(tmp / "flat/a.png", cv::Mat(4, 4, CV_8UC1, cv::Scalar(1)));
  msg = error_of([&] { open_image_set(tmp / "flat"); });
  EXPECT_TRUE(contains(msg, "no class sub-folders")) << msg;
  EXPECT_TRUE(contains(msg, "1 files directly")) << msg;

  fs::create_directories(tmp / "data/cat");
  fs::create_directories(tmp / "data/dog");
  cv::imwrite(tmp / "data/cat/a.png", cv::Mat(4, 4, CV_8UC1, cv::Scalar(1)));
  write_file(tmp / "data/dog/readme.txt", "woof");
  msg = error_of([&] { open_image_set(tmp / "data"); });
  EXPECT_TRUE(contains(msg, "class folder '" + tmp / "data/dog' holds no images")) << msg;
  EXPECT_TRUE(contains(msg, "jpg")) << msg;
}

/// A set of `counts[c]` fake samples per class (no files needed).
ImageSet fake_set(const std::vector<int>& counts) {
  ImageSet set;
  set.root = "fake";
  for (size_t c = 0; c < counts.size(); ++c) set.classes.push_back("c" + std::to_string(c));
  // Classes interleaved, to check that order is kept.
  for (int i = 0, left = 1; left; ++i) {
    left = 0;
    for (size_t c = 0; c < counts.size(); ++c) {
      if (i < counts[c]) {
        set.samples.push_back(Sample{"c" + std::to_string(c) + "/" + std::to_string(i), -1, int(c)});
        left = 1;
      }
    }
  }
  return set;
}

std::vector<std::string> paths(const ImageSet& s) {
  std::vector<std::string> p;
  for (const Sample& x : s.samples) p.push_back(x.path);
  return p;
}

/// True when b's samples appear in a in the same relative order.
bool keeps_order(const ImageSet& whole, const ImageSet& part) {
  auto all = paths(whole);
  size_t at = 0;
  for (const std::string& p : paths(part)) {
    while (at < all.size() && all[at] != p) ++at;
    if (at == all.size()) return false;
  }
  return true;
}

TEST(DataSplit, StratifiedCountsAndReproducible) {
  ImageSet set = fake_set({10, 25, 3, 7});
  auto [train, val] = split_stratified(set, 0.2, 42);
  // round(0.2 * n), at least one: 2, 5, 1 (0.6 rounds to 1), 1 (1.4 rounds to 1).
  EXPECT_EQ(val.class_counts(), (std::vector<int64_t>{2, 5, 1, 1}));
  EXPECT_EQ(train.class_counts(), (std::vector<int64_t>{8, 20, 2, 6}));
  EXPECT_EQ(train.classes, set.classes);
  EXPECT_TRUE(keeps_order(set, train));
  EXPECT_TRUE(keeps_order(set, val));
  std::set<std::string> all;
  for (auto& p : paths(train)) all.insert(p);
  for (auto& p : paths(val)) all.insert(p);
  EXPECT_EQ(all.size(), set.size());

  auto [train2, val2] = split_stratified(set, 0.2, 42);
  EXPECT_EQ(paths(val2), paths(val));
  auto [train3, val3] = split_stratified(set, 0.2, 43);
  EXPECT_NE(paths(val3), paths(val));

  // A split of 5% of 3 images still puts one aside.
  auto [t4, v4] = split_stratified(fake_set({3, 40}), 0.05, 1);
  EXPECT_EQ(v4.class_counts(), (std::vector<int64_t>{1, 2}));

  auto [t5, v5] = split_stratified(set, 0.0, 1);
  EXPECT_EQ(t5.size(), set.size());
  EXPECT_EQ(v5.size(), 0u);
}

TEST(DataSplit, EmptySideIsAnError) {
  std::string msg = error_of([&] { split_stratified(fake_set({5, 1}), 0.2, 0); });
  EXPECT_TRUE(contains(msg, "--val-split")) << msg;
  EXPECT_TRUE(contains(msg, "'c1'")) << msg;
  msg = error_of([&] { split_stratified(fake_set({4, 4}), 0.9, 0); });
  EXPECT_TRUE(contains(msg, "--val-split")) << msg;
  msg = error_of([&] { split_stratified(fake_set({4, 4}), 1.5, 0); });
  EXPECT_TRUE(contains(msg, "--val-split 1.5")) << msg;
}

TEST(DataSplit, TakePerClass) {
  ImageSet set = fake_set({10, 3, 6});
  ImageSet few = take_per_class(set, 4, 7);
  EXPECT_EQ(few.class_counts(), (std::vector<int64_t>{4, 3, 4}));
  EXPECT_TRUE(keeps_order(set, few));
  EXPECT_EQ(paths(take_per_class(set, 4, 7)), paths(few));
  EXPECT_NE(paths(take_per_class(set, 4, 8)), paths(few));
  EXPECT_EQ(take_per_class(set, 100, 7).size(), set.size());
}

TEST(DataSplit, SelectAndAlignClasses) {
  ImageSet set = fake_set({2, 3, 4});
  ImageSet sel = select_classes(set, {"c2", "c0"});
  EXPECT_EQ(sel.classes, (std::vector<std::string>{"c2", "c0"}));
  EXPECT_EQ(sel.class_counts(), (std::vector<int64_t>{4, 2}));
  for (const Sample& s : sel.samples) EXPECT_EQ(s.path.substr(0, 2), sel.classes[s.label]);
  std::string msg = error_of([&] { select_classes(set, {"c9"}); });
  EXPECT_TRUE(contains(msg, "'c9'")) << msg;
  EXPECT_TRUE(contains(msg, "c0, c1, c2")) << msg;

  // A validation set with fewer classes, in another order.
  ImageSet val = select_classes(set, {"c1", "c0"});
  ImageSet aligned = align_classes(val, set.classes, "--val");
  EXPECT_EQ(aligned.classes, set.classes);
  for (const Sample& s : aligned.samples) EXPECT_EQ(s.path.substr(0, 2), set.classes[s.label]);
  msg = error_of([&] { align_classes(set, {"c0", "c1"}, "--val"); });
  EXPECT_TRUE(contains(msg, "--val")) << msg;
  EXPECT_TRUE(contains(msg, "'c2'")) << msg;
}

TEST(DataSplit, SubsetSharesIdxAndChecksRange) {
  ImageSet set = fake_set({2, 2});
  ImageSet sub = set.subset({3, 0});
  ASSERT_EQ(sub.size(), 2u);
  EXPECT_EQ(sub.samples[0].path, set.samples[3].path);
  EXPECT_EQ(sub.samples[1].path, set.samples[0].path);
  std::string msg = error_of([&] { set.subset({4}); });
  EXPECT_TRUE(contains(msg, "4")) << msg;
}

}  // namespace
}  // namespace graft

namespace graft {
namespace {

// Hardening: links are followed, but a cycle (cat/loop -> ., loop -> .) is
// listed once and a file reached by two names is one sample, so the same
// image never lands on both sides of the split.
TEST(DataImageSet, SymlinkLoopsAndDuplicatesAreListedOnce) {
  namespace fs = std::filesystem;
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "data", 2, 6, 16);
  fs::create_directory_symlink(".", dir / "data/class0/loop");       // a cycle
  fs::create_directory_symlink("..", dir / "data/class0/up");        // back to the root
  fs::create_directory_symlink(".", dir / "data/loop");              // the root as a class
  fs::create_directory_symlink("class1", dir / "data/class1_again"); // a second name
  fs::create_symlink("img0.png", dir / "data/class1/same.png");      // a file twice
  fs::create_directories(dir / "data/class1/sub");
  test::write_synthetic_image_folder(dir / "more", 1, 2, 16, 3, 5);
  fs::create_directory_symlink(dir / "more/class0", dir / "data/class1/sub/linked");  // new data
  ImageSet set = open_image_set(dir / "data");
  EXPECT_EQ(set.classes, (std::vector<std::string>{"class0", "class1"}));
  auto counts = set.class_counts();
  EXPECT_EQ(counts[0], 6);
  EXPECT_EQ(counts[1], 8);  // its own 6 and the 2 reached through a real link
  std::set<std::string> paths;
  for (const auto& s : set.samples) paths.insert(fs::canonical(s.path).string());
  EXPECT_EQ(paths.size(), set.samples.size()) << "a file listed twice";
  auto [train, val] = split_stratified(set, 0.5, 1);
  std::set<std::string> train_paths;
  for (const auto& s : train.samples) train_paths.insert(fs::canonical(s.path).string());
  for (const auto& s : val.samples)
    EXPECT_EQ(train_paths.count(fs::canonical(s.path).string()), 0u) << s.path;
}

}  // namespace
}  // namespace graft
