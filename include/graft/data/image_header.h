#pragma once
/// Image dimensions from the first bytes of an image file, without decoding
/// it: the check that keeps a small file claiming a huge image (a 1 MB PNG of
/// 20000 x 20000 zero pixels) from being decoded into gigabytes.

#include <cstddef>
#include <cstdint>
#include <string>

namespace graft {

struct ImageHeader {
  const char* format = "";  // "PNG", "JPEG", "BMP", "GIF", "PNM", "WebP", "TIFF"
  int64_t width = 0;
  int64_t height = 0;
};

/// Reads the format and dimensions of PNG (IHDR), JPEG (the first SOF
/// marker), BMP (BITMAPCOREHEADER or later), GIF (logical screen), PNM
/// (P1-P7, Pf/PF), WebP (VP8, VP8L, VP8X) and TIFF (the first IFD; BigTIFF
/// too) from `bytes`. Throws graft::Error naming `name` if the bytes are none
/// of these formats or their header is truncated or malformed.
ImageHeader read_image_header(const uint8_t* bytes, size_t size, const std::string& name);

/// Largest image (width x height, in pixels) that decode_image and the
/// readers built on it decode. Default kDefaultMaxImagePixels; a process-wide
/// setting (the CLI's --max-pixels will set it).
constexpr int64_t kDefaultMaxImagePixels = 50'000'000;
int64_t max_image_pixels();
/// Sets the limit; `pixels` must be positive (graft::Error otherwise).
void set_max_image_pixels(int64_t pixels);

/// read_image_header, then refuses an image over max_image_pixels() with a
/// graft::Error naming `name`, its width x height and the limit. Returns the
/// header otherwise.
ImageHeader check_image_header(const uint8_t* bytes, size_t size, const std::string& name);

}  // namespace graft
