// Image dimensions read from headers alone (graft/data/image_header.h),
// checked against OpenCV's decode of real files of each format, and the
// pixel limit that decode_image applies before decoding.

#include "graft/data/image_header.h"

#include <sys/resource.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/data/image_set.h"
#include "test_util.h"

namespace graft {
namespace {

using test::error_of;

ImageHeader header_of(const std::string& bytes, const std::string& name = "image") {
  return read_image_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
}

// A non-square image with some structure, so that codecs keep its size.
cv::Mat pattern(int width, int height, int type) {
  cv::Mat m(height, width, type);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width * m.channels(); ++x)
      m.ptr<uint8_t>(y)[x] = static_cast<uint8_t>((x * 7 + y * 13) & 0xff);
  return m;
}

struct Written {
  const char* file;
  const char* format;
  int type;
  std::vector<int> params;
};

TEST(ImageHeader, DimensionsMatchOpenCvForEveryFormatItWrites) {
  test::TempDir dir;
  const std::vector<Written> cases = {
      {"a.png", "PNG", CV_8UC3, {}},
      {"grey16.png", "PNG", CV_16UC1, {}},
      {"a.jpg", "JPEG", CV_8UC3, {}},
      {"progressive.jpg", "JPEG", CV_8UC1, {cv::IMWRITE_JPEG_PROGRESSIVE, 1}},
      {"a.bmp", "BMP", CV_8UC3, {}},
      {"grey.bmp", "BMP", CV_8UC1, {}},
      {"a.ppm", "PNM", CV_8UC3, {}},
      {"a.pgm", "PNM", CV_8UC1, {}},
      {"ascii.pgm", "PNM", CV_8UC1, {cv::IMWRITE_PXM_BINARY, 0}},
      {"a.pam", "PNM", CV_8UC3, {}},
      {"lossy.webp", "WebP", CV_8UC3, {cv::IMWRITE_WEBP_QUALITY, 80}},
      {"lossless.webp", "WebP", CV_8UC3, {cv::IMWRITE_WEBP_QUALITY, 101}},
      {"a.tif", "TIFF", CV_8UC3, {}},
      {"grey16.tif", "TIFF", CV_16UC1, {}},
  };
  for (const auto& [width, height] : {std::pair{37, 23}, std::pair{300, 7}, std::pair{1, 1}}) {
    for (const auto& c : cases) {
      const std::string path = dir / (std::to_string(width) + "x" + c.file);
      ASSERT_TRUE(cv::imwrite(path, pattern(width, height, c.type), c.params)) << path;
      const std::string bytes = read_file(path);
      const cv::Mat decoded = cv::imread(path, cv::IMREAD_UNCHANGED);
      ASSERT_FALSE(decoded.empty()) << path;
      const ImageHeader h = header_of(bytes, path);
      EXPECT_STREQ(h.format, c.format) << path;
      EXPECT_EQ(h.width, decoded.cols) << path;
      EXPECT_EQ(h.height, decoded.rows) << path;
      EXPECT_EQ(h.width, width) << path;
      EXPECT_EQ(h.height, height) << path;
      // And the decode path accepts it under the default limit.
      EXPECT_EQ(load_image(path).cols, width) << path;
    }
  }
}

std::string le(uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}
std::string be(uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

TEST(ImageHeader, HandBuiltHeadersOfFormsOpenCvDoesNotWrite) {
  // GIF (OpenCV 4.6 has no GIF codec): logical screen 640 x 480.
  std::string gif = "GIF89a" + le(640, 2) + le(480, 2) + std::string("\xf7\x00\x00", 3);
  ImageHeader h = header_of(gif);
  EXPECT_STREQ(h.format, "GIF");
  EXPECT_EQ(h.width, 640);
  EXPECT_EQ(h.height, 480);
  EXPECT_EQ(header_of("GIF87a" + le(3, 2) + le(70000 & 0xffff, 2)).height, 70000 & 0xffff);

  // BMP: top-down (negative height), and the OS/2 12-byte core header.
  std::string bmp = "BM" + le(0, 12) + le(40, 4) + le(123, 4) + le(static_cast<uint32_t>(-45), 4);
  h = header_of(bmp);
  EXPECT_EQ(h.width, 123);
  EXPECT_EQ(h.height, 45);
  h = header_of("BM" + le(0, 12) + le(12, 4) + le(9, 2) + le(11, 2));
  EXPECT_EQ(h.width, 9);
  EXPECT_EQ(h.height, 11);

  // Big-endian TIFF, width as SHORT and length as LONG; BigTIFF.
  std::string mm = std::string("MM\0*", 4) + be(8, 4) + be(2, 2) + be(256, 2) + be(3, 2) + be(1, 4) +
                   be(1000, 2) + be(0, 2) + be(257, 2) + be(4, 2) + be(1, 4) + be(70000, 4);
  h = header_of(mm);
  EXPECT_STREQ(h.format, "TIFF");
  EXPECT_EQ(h.width, 1000);
  EXPECT_EQ(h.height, 70000);
  std::string big = std::string("II+\0", 4) + le(8, 2) + le(0, 2) + le(16, 8) + le(2, 8) + le(256, 2) +
                    le(16, 2) + le(1, 8) + le(5, 8) + le(257, 2) + le(3, 2) + le(1, 8) + le(6, 8);
  h = header_of(big);
  EXPECT_EQ(h.width, 5);
  EXPECT_EQ(h.height, 6);

  // A repeated ImageWidth tag (a fuzz finding: libtiff decoded 5 columns
  // where the last tag said 4) counts at its largest.
  std::string twice = std::string("II*\0", 4) + le(8, 4) + le(3, 2) + le(256, 2) + le(4, 2) + le(1, 4) +
                      le(5, 4) + le(257, 2) + le(4, 2) + le(1, 4) + le(4, 4) + le(256, 2) + le(4, 2) +
                      le(1, 4) + le(4, 4);
  h = header_of(twice);
  EXPECT_EQ(h.width, 5);
  EXPECT_EQ(h.height, 4);

  // WebP extended (VP8X) canvas: 24-bit sizes minus one.
  std::string vp8x = "RIFF" + le(30, 4) + "WEBPVP8X" + le(10, 4) + le(0, 4) + le(99999, 3) + le(4, 3);
  h = header_of(vp8x);
  EXPECT_STREQ(h.format, "WebP");
  EXPECT_EQ(h.width, 100000);
  EXPECT_EQ(h.height, 5);

  // PNM with comments; PFM (float).
  h = header_of("P6\n# made by hand\n 12 # width\n34\n255\n");
  EXPECT_EQ(h.width, 12);
  EXPECT_EQ(h.height, 34);
  h = header_of("Pf\n7 8\n-1.0\n");
  EXPECT_EQ(h.width, 7);
  EXPECT_EQ(h.height, 8);

  // JPEG: stray and fill bytes before the SOF after an APP segment.
  std::string jpeg = std::string("\xff\xd8\xff\xe0", 4) + be(4, 2) + "ab" + std::string("xx\xff\xff\xc2", 5) +
                     be(11, 2) + std::string("\x08", 1) + be(480, 2) + be(640, 2) + std::string("\x01\x01\x11\x00", 4);
  h = header_of(jpeg);
  EXPECT_STREQ(h.format, "JPEG");
  EXPECT_EQ(h.width, 640);
  EXPECT_EQ(h.height, 480);
}

TEST(ImageHeader, TruncatedOrUnknownHeadersNameTheFile) {
  test::TempDir dir;
  const std::string path = dir / "a.png";
  ASSERT_TRUE(cv::imwrite(path, pattern(8, 8, CV_8UC3)));
  const std::string png = read_file(path);
  const std::string formats = "; graft reads PNG, JPEG, BMP, GIF, PNM (PBM/PGM/PPM/PAM/PFM), WebP and TIFF";
  EXPECT_EQ(error_of([&] { header_of(png.substr(0, 20), "cut.png"); }),
            "cannot read image 'cut.png': truncated PNG (the header ends at 20 bytes; expected at least 24)" +
                formats);
  EXPECT_EQ(error_of([&] { header_of("hello world", "note.txt"); }),
            "cannot read image 'note.txt': not an image (starts with \"hello wo\")" + formats);
  EXPECT_EQ(error_of([&] { header_of(std::string("\0asm\x01\0\0\0", 8), "a.wasm"); }),
            "cannot read image 'a.wasm': not an image (starts with 00 61 73 6d 01 00 00 00)" + formats);
  EXPECT_EQ(error_of([&] { header_of("", "empty.png"); }),
            "cannot read image 'empty.png': not an image (the file is empty)" + formats);
  EXPECT_EQ(error_of([&] { header_of(std::string("\xff\xd8\xff\xda\x00\x02", 6), "nosof.jpg"); }),
            "cannot read image 'nosof.jpg': damaged JPEG (malformed header: no frame (SOF) marker before the image "
            "data)" + formats);
  EXPECT_NE(error_of([&] { header_of("P5\n12 x\n", "bad.pgm"); })
                .find("the height is 'x' (expected a decimal number)"),
            std::string::npos);
  // A TIFF whose IFD claims more entries than the file holds.
  EXPECT_NE(error_of([&] { header_of(std::string("II*\0", 4) + le(8, 4) + le(60000, 2), "ifd.tif"); })
                .find("cannot read image 'ifd.tif': truncated TIFF (the header ends at"),
            std::string::npos);
}

// Image formats graft does not decode are named by their first bytes;
// anything else is "not an image". The problem and format travel with the
// error, for the counts a run reports.
TEST(ImageHeader, OtherFormatsAreNamedFromTheirFirstBytes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {std::string("\0\0\0\x0cjP  \r\n\x87\n\0\0\0\x14ftypjp2 ", 24), "JPEG 2000"},
      {std::string("\xff\x4f\xff\x51\0\x2f", 6), "JPEG 2000"},
      {std::string("\xff\x0a\xfa\x7f", 4), "JPEG XL"},
      {std::string("\0\0\0\x18" "ftypheic\0\0\0\0mif1heic", 24), "HEIC"},
      {std::string("\0\0\0\x1c" "ftypavif\0\0\0\0avifmif1", 24), "AVIF"},
      {std::string("\0\0\1\0\1\0\x10\x10", 8), "ICO"},
      {"8BPS\0\1", "PSD"},
      {std::string("\x76\x2f\x31\x01\x02\0\0\0", 8), "OpenEXR"},
      {"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n", "Radiance HDR"},
      {"qoif\0\0\0\x10", "QOI"},
      {"%PDF-1.7\n", "PDF"},
      {"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>", "SVG"},
      {std::string("RIFF\x40\0\0\0WEBPVP8X\x0a\0\0\0\x12\0\0\0", 24), "animated WebP"},
  };
  for (const auto& [bytes, format] : cases) {
    try {
      header_of(bytes, "f");
      ADD_FAILURE() << format << " accepted";
    } catch (const ImageError& e) {
      EXPECT_EQ(e.problem(), ImageProblem::kUnsupported) << format;
      EXPECT_EQ(e.format(), format);
      EXPECT_EQ(std::string(e.what()), "cannot read image 'f': unsupported format " + format +
                                           "; graft reads PNG, JPEG, BMP, GIF, PNM (PBM/PGM/PPM/PAM/PFM), WebP and TIFF");
    }
  }
  // "BM" alone does not make a bitmap; an MP4 is not an image.
  for (const std::string& bytes : {std::string("BMW owners club minutes, 2024\n"),
                                   std::string("\0\0\0\x20" "ftypisom\0\0\2\0isomiso2", 24)}) {
    try {
      header_of(bytes, "f");
      ADD_FAILURE() << bytes << " accepted";
    } catch (const ImageError& e) {
      EXPECT_EQ(e.problem(), ImageProblem::kNotAnImage) << e.what();
    }
  }
}

// The per-run line: groups by reason, largest first, counted per class, with
// their first file; "0 of N" when nothing is left.
TEST(ImageHeader, UnreadableSummaryCountsByReasonAndClass) {
  auto u = [](const std::string& path, int label, ImageProblem p, const std::string& format = "") {
    return UnreadableImage{path, label, p, format, "m"};
  };
  const std::vector<std::string> classes = {"ants", "bees", "wasps"};
  const std::vector<UnreadableImage> some = {
      u("b/2.heic", 1, ImageProblem::kUnsupported, "HEIC"), u("a/1.txt", 0, ImageProblem::kNotAnImage),
      u("a/9.heic", 0, ImageProblem::kUnsupported, "HEIC"), u("b/1.heic", 1, ImageProblem::kUnsupported, "HEIC"),
      u("w/1.jpg", 2, ImageProblem::kTruncated, "JPEG"), u("w/2.jp2", 2, ImageProblem::kUnsupported, "JPEG 2000")};
  const std::string formats = "; graft reads PNG, JPEG, BMP, GIF, PNM (PBM/PGM/PPM/PAM/PFM), WebP and TIFF";
  EXPECT_EQ(unreadable_summary(some, 20, classes),
            "6 of 20 files could not be read and are left out: 3 are HEIC, which graft does not read (ants 1, bees 2; "
            "first: 'a/9.heic'), 1 is not an image (ants 1; first: 'a/1.txt'), 1 is JPEG 2000, which graft does not "
            "read (wasps 1; first: 'w/2.jp2'), 1 is truncated (wasps 1; first: 'w/1.jpg')" + formats);
  EXPECT_EQ(unreadable_summary(some, 6, {}, "inputs"),
            "0 of 6 inputs could be read: 3 are HEIC, which graft does not read (first: 'a/9.heic'), 1 is not an "
            "image (first: 'a/1.txt'), 1 is JPEG 2000, which graft does not read (first: 'w/2.jp2'), 1 is "
            "truncated (first: 'w/1.jpg')" + formats);
  EXPECT_EQ(unreadable_summary({}, 6, classes), "");
  // More than 8 classes: the rest are counted.
  std::vector<UnreadableImage> many;
  std::vector<std::string> names;
  for (int c = 0; c < 11; ++c) {
    names.push_back("c" + std::to_string(c));
    many.push_back(u("f" + std::to_string(c), c, ImageProblem::kTooLarge, "PNG"));
  }
  EXPECT_EQ(unreadable_reasons(many, names),
            "11 are larger than --max-pixels allows (c0 1, c1 1, c2 1, c3 1, c4 1, c5 1, c6 1, c7 1 and 3 more; first: "
            "'f0')");
}

// A grey PNG of width x height zero pixels, built with zlib row by row (a
// 20000 x 20000 one compresses to under half a megabyte).
std::string zero_png(uint32_t width, uint32_t height) {
  auto chunk = [](const std::string& type, const std::string& data) {
    std::string c = be(data.size(), 4) + type + data;
    uLong crc = crc32(0, reinterpret_cast<const Bytef*>(c.data() + 4), static_cast<uInt>(c.size() - 4));
    return c + be(crc, 4);
  };
  std::string ihdr = be(width, 4) + be(height, 4) + std::string("\x08\x00\x00\x00\x00", 5);
  z_stream z{};
  deflateInit(&z, 9);
  std::string row(width + 1, '\0'), idat;
  std::vector<unsigned char> out(1 << 16);
  for (uint32_t y = 0; y <= height; ++y) {
    z.next_in = reinterpret_cast<Bytef*>(row.data());
    z.avail_in = y < height ? static_cast<uInt>(row.size()) : 0;
    const int flush = y < height ? Z_NO_FLUSH : Z_FINISH;
    do {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      deflate(&z, flush);
      idat.append(reinterpret_cast<char*>(out.data()), out.size() - z.avail_out);
    } while (z.avail_out == 0);
  }
  deflateEnd(&z);
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", "");
}

long max_rss_kb() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return r.ru_maxrss;
}

TEST(ImageHeader, AnOverLimitPngIsRefusedBeforeDecoding) {
  ASSERT_EQ(max_image_pixels(), kDefaultMaxImagePixels);
  const std::string png = zero_png(20000, 20000);
  ASSERT_LT(png.size(), 1u << 20);
  const ImageHeader h = header_of(png);
  EXPECT_EQ(h.width, 20000);
  EXPECT_EQ(h.height, 20000);
  test::TempDir dir;
  const std::string path = dir / "huge.png";
  write_file_atomic(path, png);
  const long rss_before = max_rss_kb();
  const std::string m = error_of([&] { load_image(path); });
  EXPECT_EQ(m, "cannot read image '" + path + "': too large: 20000x20000 pixels (PNG), over the limit of 50000000 "
                "pixels (--max-pixels); graft reads PNG, JPEG, BMP, GIF, PNM (PBM/PGM/PPM/PAM/PFM), WebP and TIFF");
  const std::vector<uint8_t> bytes(png.begin(), png.end());
  EXPECT_NE(error_of([&] { decode_image(bytes, "huge.png"); }).find("'huge.png': too large: 20000x20000"),
            std::string::npos);
  // Refused from the header: the peak memory of the process did not grow by
  // the 400 MB the pixels would take.
  EXPECT_LT(max_rss_kb() - rss_before, 100 * 1024);
}

TEST(ImageHeader, TheLimitIsASettingAndAppliesToEveryFormat) {
  test::TempDir dir;
  const std::string path = dir / "a.jpg";
  ASSERT_TRUE(cv::imwrite(path, pattern(40, 30, CV_8UC3)));
  EXPECT_EQ(load_image(path).rows, 30);
  set_max_image_pixels(1199);
  const std::string m = error_of([&] { load_image(path); });
  set_max_image_pixels(1200);
  const int rows_at_limit = load_image(path).rows;
  set_max_image_pixels(kDefaultMaxImagePixels);
  EXPECT_NE(m.find("too large: 40x30 pixels (JPEG), over the limit of 1199 pixels"), std::string::npos) << m;
  EXPECT_EQ(rows_at_limit, 30);
  EXPECT_NE(error_of([] { set_max_image_pixels(0); }).find("expected a positive number"), std::string::npos);
  EXPECT_EQ(max_image_pixels(), kDefaultMaxImagePixels);
}

}  // namespace
}  // namespace graft
