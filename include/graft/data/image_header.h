#pragma once
/// Image dimensions from the first bytes of an image file, without decoding
/// it: the check that keeps a small file claiming a huge image (a 1 MB PNG of
/// 20000 x 20000 zero pixels) from being decoded into gigabytes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "graft/core/error.h"

namespace graft {

/// The formats graft decodes, as messages list them: "PNG, JPEG, BMP, GIF,
/// PNM (PBM/PGM/PPM/PAM/PFM), WebP and TIFF". The format is decided by the
/// file's first bytes, never by its name.
const char* supported_image_formats();

/// Why an image file cannot be used.
enum class ImageProblem {
  kNotAnImage,   // no image signature: "not an image (starts with ...)"
  kUnsupported,  // an image format graft does not decode (JPEG 2000, HEIC, ...)
  kTruncated,    // the file ends early
  kTooLarge,     // over max_image_pixels()
  kDamaged,      // a known format whose data the decoder refuses
  kCannotOpen,   // the file cannot be opened or read
};

/// An image file that cannot be used: one message style for every verb,
///   cannot read image 'PATH': REASON; graft reads PNG, JPEG, ...
/// where REASON is "not an image (starts with \"...\")", "unsupported
/// format X", "truncated X (...)", "too large: ...", "damaged X (...)" or
/// "the file cannot be read (...)".
class ImageError : public Error {
 public:
  /// `format` names the format when known ("" otherwise); `detail` says more
  /// (may be empty).
  ImageError(const std::string& path, ImageProblem problem, const std::string& format,
             const std::string& detail);
  const std::string& path() const { return path_; }
  ImageProblem problem() const { return problem_; }
  const std::string& format() const { return format_; }
  /// The REASON part of the message.
  const std::string& reason() const { return reason_; }

 private:
  std::string path_;
  ImageProblem problem_;
  std::string format_;
  std::string reason_;
};

/// An image file left out, and why: what a run counts and summarises.
struct UnreadableImage {
  std::string path;
  int label = -1;  // class or identity index; -1 for none
  ImageProblem problem = ImageProblem::kDamaged;
  std::string format;   // the format when known (kUnsupported: what the file is)
  std::string message;  // the full message (ImageError::what())
};

/// From an error thrown while reading `path`: an ImageError keeps its problem
/// and format; any other graft::Error counts as kDamaged.
UnreadableImage unreadable_image(const Error& e, const std::string& path, int label);

/// The reasons of `unreadable`, grouped (an unsupported format per format),
/// largest group first, each with its count per label (named by `labels`;
/// left out when `labels` is empty) and its first file:
///   "164 are GIF, which graft does not read (s1 11, s2 11, ...; first: 'a.gif'), 2 are truncated (...)"
std::string unreadable_reasons(const std::vector<UnreadableImage>& unreadable,
                               const std::vector<std::string>& labels);

/// One line for a run: "0 of 164 files could be read: REASONS; graft reads
/// FORMATS" when every one of `total` is unreadable, else "5 of 170 files
/// could not be read and are left out: REASONS; graft reads FORMATS". `noun`
/// replaces "files" ("training images", "inputs"). "" when `unreadable` is
/// empty.
std::string unreadable_summary(const std::vector<UnreadableImage>& unreadable, int64_t total,
                               const std::vector<std::string>& labels, const std::string& noun = "files");

/// "starts with \"hello wo\"" (printable text) or "starts with 00 00 01 00"
/// (bytes in hex): the first up to 8 bytes, for "not an image" messages.
std::string describe_file_start(const uint8_t* bytes, size_t size);

/// The format of an image file from its first bytes (256 are enough):
/// "PNG", "JPEG", "BMP", "GIF", "PNM", "WebP" or "TIFF". Throws ImageError
/// naming `name`: kUnsupported for an image format graft does not decode
/// (JPEG 2000, JPEG XL, HEIC, AVIF, animated WebP, ICO, PSD, OpenEXR,
/// Radiance HDR, Sun raster, QOI, DDS, SVG, PDF), kNotAnImage otherwise.
const char* image_format_of(const uint8_t* bytes, size_t size, const std::string& name);

struct ImageHeader {
  const char* format = "";  // "PNG", "JPEG", "BMP", "GIF", "PNM", "WebP", "TIFF"
  int64_t width = 0;
  int64_t height = 0;
};

/// Reads the format and dimensions of PNG (IHDR), JPEG (the first SOF
/// marker), BMP (BITMAPCOREHEADER or later), GIF (logical screen), PNM
/// (P1-P7, Pf/PF), WebP (VP8, VP8L, VP8X) and TIFF (the first IFD; BigTIFF
/// too) from `bytes`. Throws ImageError naming `name` if the bytes are none
/// of these formats (image_format_of) or their header is truncated
/// (kTruncated) or malformed (kDamaged).
ImageHeader read_image_header(const uint8_t* bytes, size_t size, const std::string& name);

/// Largest image (width x height, in pixels) that decode_image and the
/// readers built on it decode. Default kDefaultMaxImagePixels; a process-wide
/// setting (the CLI's --max-pixels will set it).
constexpr int64_t kDefaultMaxImagePixels = 50'000'000;
int64_t max_image_pixels();
/// Sets the limit; `pixels` must be positive (graft::Error otherwise).
void set_max_image_pixels(int64_t pixels);

/// read_image_header, then refuses an image over max_image_pixels() with an
/// ImageError (kTooLarge) naming `name`, its width x height and the limit.
/// Returns the header otherwise.
ImageHeader check_image_header(const uint8_t* bytes, size_t size, const std::string& name);

}  // namespace graft
