#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/data/image_set.h"
#include "graft/weights/safetensors.h"
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

// The GIF among hymenoptera's JPEGs is read (as Pillow reads it: see
// GifFramesEqualPillow).
TEST(DataImageSet, HymenopteraReadsTheGif) {
  std::string root = test::shared_data("hymenoptera/train");
  if (root.empty()) GTEST_SKIP() << "no ../shared/data/hymenoptera";
  ImageSet set = open_image_set(root);
  EXPECT_EQ(set.classes, (std::vector<std::string>{"ants", "bees"}));
  EXPECT_EQ(set.class_counts(), (std::vector<int64_t>{124, 121}));
  EXPECT_EQ(set.skipped, 0);
  bool has_jpeg = false, has_gif = false;
  for (const Sample& s : set.samples) {
    has_gif |= contains(s.path, "/ants/imageNotFound.gif");
    has_jpeg |= contains(s.path, "formica.jpeg");
  }
  EXPECT_TRUE(has_jpeg);
  EXPECT_TRUE(has_gif);
  // Sorted by path within a class.
  for (size_t i = 1; i < set.size(); ++i) {
    if (set.samples[i].label == set.samples[i - 1].label) {
      EXPECT_LT(set.samples[i - 1].path, set.samples[i].path);
    }
  }
  EXPECT_EQ(load_image(root + "/ants/imageNotFound.gif").size(), cv::Size(300, 300));
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
  // Each names the file, the reason and the formats graft reads.
  const std::string formats = "; graft reads PNG, JPEG, BMP, GIF, PNM (PBM/PGM/PPM/PAM/PFM), WebP and TIFF";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"cut.jpg", "truncated JPEG (no end-of-image marker)"},
      {"cut.png", "truncated PNG (the data ends early)"},
      {"garbage.png", "damaged PNG (malformed header: the first chunk is not IHDR)"},
      {"empty.jpg", "not an image (the file is empty)"},
      {"absent.png", "the file cannot be read (No such file or directory)"},
  };
  for (const auto& [name, reason] : cases)
    EXPECT_EQ(error_of([&] { load_image(tmp / name); }), "cannot read image '" + tmp / name + "': " + reason + formats);
}

// The format comes from the first bytes: a PNG named .jpg is read, a text
// file named .png is not an image, an ICO is a format graft does not read.
TEST(DataImageSet, TheFormatComesFromTheBytesNotTheName) {
  test::TempDir tmp;
  cv::Mat img(5, 7, CV_8UC3);
  cv::randu(img, 0, 255);
  cv::imwrite(tmp / "real.png", img);
  std::filesystem::copy_file(tmp / "real.png", tmp / "png.jpg");
  EXPECT_EQ(cv::norm(load_image(tmp / "png.jpg"), load_image(tmp / "real.png"), cv::NORM_INF), 0);
  write_file(tmp / "notes.png", "plain text with a png name");
  write_file(tmp / "icon.png", test::ico_bytes(img));
  const std::string formats = "; graft reads PNG, JPEG, BMP, GIF, PNM (PBM/PGM/PPM/PAM/PFM), WebP and TIFF";
  EXPECT_EQ(error_of([&] { load_image(tmp / "notes.png"); }),
            "cannot read image '" + tmp / "notes.png" + "': not an image (starts with \"plain te\")" + formats);
  EXPECT_EQ(error_of([&] { load_image(tmp / "icon.png"); }),
            "cannot read image '" + tmp / "icon.png" + "': unsupported format ICO" + formats);
}

// GIF: a GIF written here (test::gif_bytes) decodes to its pixels exactly,
// grey to grey; a cut one is truncated at every length; a frame past the
// pixel limit is refused before its pixels are read.
TEST(DataImageSet, GifDecodesAndItsErrorsSayWhy) {
  cv::Mat rgb(9, 13, CV_8UC3), grey(6, 5, CV_8UC1);
  for (int y = 0; y < rgb.rows; ++y)
    for (int x = 0; x < rgb.cols; ++x) rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(x * 19, y * 27, (x * y) % 5 * 50);
  for (int i = 0; i < 30; ++i) grey.data[i] = static_cast<uint8_t>(i * 8);
  const std::string a = test::gif_bytes(rgb), g = test::gif_bytes(grey);
  auto decode = [](const std::string& bytes, const std::string& name = "x.gif") {
    return decode_image(std::vector<uint8_t>(bytes.begin(), bytes.end()), name);
  };
  cv::Mat m = decode(a);
  ASSERT_EQ(m.type(), CV_8UC3);
  EXPECT_EQ(cv::norm(m, rgb, cv::NORM_INF), 0);
  m = decode(g);
  ASSERT_EQ(m.type(), CV_8UC1);
  EXPECT_EQ(cv::norm(m, grey, cv::NORM_INF), 0);
  for (size_t len = 13; len < a.size() - 1; len += 37) {
    try {
      decode(a.substr(0, len));
      ADD_FAILURE() << "a GIF cut at " << len << " decoded";
    } catch (const ImageError& e) {
      EXPECT_EQ(e.problem(), ImageProblem::kTruncated) << len << ": " << e.what();
      EXPECT_TRUE(contains(e.what(), "cannot read image 'x.gif': truncated GIF (")) << e.what();
    }
  }
  // No image before the trailer; a frame of 60000 x 60000 on a 4 x 4 screen.
  EXPECT_TRUE(contains(error_of([&] { decode(a.substr(0, 13 + 768) + ";"); }),
                       "'x.gif': damaged GIF (the file holds no image)"));
  std::string big = a.substr(0, 13 + 768) + std::string(",\0\0\0\0\x60\xea\x60\xea\0\x08\x01\0\0;", 15);
  big[6] = 4, big[7] = 0, big[8] = 4, big[9] = 0;
  EXPECT_TRUE(contains(error_of([&] { decode(big); }),
                       "'x.gif': too large: 60000x60000 pixels (GIF, the first frame's extent), over the limit of "
                       "50000000 pixels (--max-pixels)"));
}

// Pillow's decoding of GIFs it wrote (tests/reference/gif_fixtures.py): an
// adaptive palette, interlaced and not, a transparent index on a canvas
// larger than the frame, an offset frame without transparency, a frame past
// the screen, a local colour table, three frames (the first is read), grey
// ones, and hymenoptera's real GIF. Pixels equal; grey palettes give grey.
TEST(DataImageSet, GifFramesEqualPillow) {
  if (!test::have_fixture("gif/gif.safetensors")) GTEST_SKIP() << "fixture gif/gif.safetensors missing (run make_fixtures.py)";
  SafetensorsFile file = load_safetensors(test::fixture("gif/gif.safetensors"));
  const auto cases = nlohmann::json::parse(file.metadata.at("cases"));
  ASSERT_GE(cases.size(), 8u);
  for (const auto& [name, tensor] : file.tensors) {
    cv::Mat m = load_image(test::fixture("gif/" + name + ".gif"));
    const bool grey = cases.at(name).at("grey").get<bool>();
    ASSERT_EQ(m.channels(), grey ? 1 : 3) << name;
    cv::Mat rgb = m;
    if (grey) cv::merge(std::vector<cv::Mat>{m, m, m}, rgb);
    ASSERT_EQ(tensor.sizes().vec(), (std::vector<int64_t>{rgb.rows, rgb.cols, 3})) << name;
    const torch::Tensor ours = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8);
    EXPECT_TRUE(torch::equal(ours, tensor)) << name << ": " << (ours.to(torch::kInt32) - tensor.to(torch::kInt32)).abs().max().item<int>();
  }
  // The AT&T face as a GIF is the PGM's pixels.
  if (file.metadata.count("cases") && cases.contains("grey_face")) {
    const std::string pgm = test::shared_data("att_faces/s1/1.pgm");
    if (!pgm.empty())
      EXPECT_EQ(cv::norm(load_image(test::fixture("gif/grey_face.gif")), load_image(pgm), cv::NORM_INF), 0);
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

  // Named by content: a GIF named .dat is an image, an ICO is not read.
  write_file(tmp / "class1/photo.dat", test::gif_bytes(cv::Mat(4, 4, CV_8UC1, cv::Scalar(9))));
  write_file(tmp / "class2/icon.png", test::ico_bytes(cv::Mat(4, 4, CV_8UC3, cv::Scalar(1, 2, 3))));

  ImageSet set = open_image_set(tmp.path());
  EXPECT_EQ(set.classes, (std::vector<std::string>{"class0", "class1", "class2"}));
  EXPECT_EQ(set.class_counts(), (std::vector<int64_t>{4, 5, 5}));
  EXPECT_EQ(set.skipped, 3);
  EXPECT_EQ(set.root, tmp.path());
  EXPECT_EQ(set.identity(0), tmp / "class0/img0.png");
  ASSERT_EQ(set.unreadable.size(), 3u);
  EXPECT_EQ(unreadable_summary(set.unreadable, 17, set.classes),
            "3 of 17 files could not be read and are left out: 2 are not images (class0 1, class1 1; first: '" +
                tmp / "class0/notes.txt" + "'), 1 is ICO, which graft does not read (class2 1; first: '" +
                tmp / "class2/icon.png" +
                "'); graft reads PNG, JPEG, BMP, GIF, PNM (PBM/PGM/PPM/PAM/PFM), WebP and TIFF");
  // --classes keeps the unreadable files of the classes kept, relabelled.
  ImageSet two = select_classes(set, {"class2", "class1"});
  ASSERT_EQ(two.unreadable.size(), 2u);
  EXPECT_EQ(two.skipped, 2);
  EXPECT_EQ(two.unreadable[0].label, 1);  // class1's fake.png
  EXPECT_EQ(two.unreadable[1].label, 0);  // class2's icon.png

  OpenOptions strict;
  strict.strict = true;
  std::string msg = error_of([&] { open_image_set(tmp.path(), strict); });
  EXPECT_EQ(msg, "cannot read image '" + tmp / "class0/notes.txt" +
                     "': not an image (starts with \"not an i\"); graft reads PNG, JPEG, BMP, GIF, PNM "
                     "(PBM/PGM/PPM/PAM/PFM), WebP and TIFF (in image folder '" + tmp.path() +
                     "'; --strict makes this an error)");
}

// Nothing readable: the error counts the files and says why, for the whole
// folder first, then for a class.
TEST(DataImageSet, AFolderWithNothingReadableSaysWhy) {
  test::TempDir tmp;
  for (const char* c : {"a", "b"}) {
    fs::create_directories(tmp / c);
    for (int i = 0; i < 3; ++i)
      write_file(tmp / (std::string(c) + "/" + std::to_string(i) + ".ico"),
                 test::ico_bytes(cv::Mat(4, 4, CV_8UC3, cv::Scalar(i))));
  }
  write_file(tmp / "b/readme.txt", "about b");
  EXPECT_EQ(error_of([&] { open_image_set(tmp.path()); }),
            "image folder '" + tmp.path() + "': 0 of 7 files could be read: 6 are ICO, which graft does not read (a 3, "
            "b 3; first: '" + tmp / "a/0.ico" + "'), 1 is not an image (b 1; first: '" + tmp / "b/readme.txt" +
            "'); graft reads PNG, JPEG, BMP, GIF, PNM (PBM/PGM/PPM/PAM/PFM), WebP and TIFF");
  write_file(tmp / "b/ok.gif", test::gif_bytes(cv::Mat(4, 4, CV_8UC1, cv::Scalar(3))));
  EXPECT_EQ(error_of([&] { open_image_set(tmp.path()); }),
            "class folder '" + tmp / "a" + "' holds no readable image: 3 are ICO, which graft does not read (first: '" +
                tmp / "a/0.ico" + "'); graft reads PNG, JPEG, BMP, GIF, PNM (PBM/PGM/PPM/PAM/PFM), WebP and TIFF");
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
  EXPECT_TRUE(contains(msg, "class folder '" + tmp / "data/dog' holds no readable image: 1 is not an image")) << msg;
  EXPECT_TRUE(contains(msg, "graft reads PNG, JPEG")) << msg;
  fs::create_directories(tmp / "data/emu");
  msg = error_of([&] { open_image_set(tmp / "data"); });
  EXPECT_TRUE(contains(msg, "class folder '" + tmp / "data/dog' holds no readable image")) << msg;
  fs::remove(tmp / "data/dog/readme.txt");
  msg = error_of([&] { open_image_set(tmp / "data"); });
  EXPECT_TRUE(contains(msg, "class folder '" + tmp / "data/dog' holds no files")) << msg;
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
