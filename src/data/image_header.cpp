#include "graft/data/image_header.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>

#include "graft/core/error.h"

namespace graft {

namespace {

std::atomic<int64_t> g_max_pixels{kDefaultMaxImagePixels};

// Bounds-checked reads from the start of the file; every miss names the file.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size, const std::string& name, const char* format)
      : d_(data), n_(size), name_(name), format_(format) {}

  void need(uint64_t pos, uint64_t len) const {
    GRAFT_CHECK(pos <= n_ && len <= n_ - pos, "image '", name_, "': the ", format_,
                " header is truncated (", n_, " bytes; expected at least ", pos + len, ")");
  }
  uint64_t le(uint64_t pos, int width) const {
    need(pos, width);
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i) v = (v << 8) | d_[pos + i];
    return v;
  }
  uint64_t be(uint64_t pos, int width) const {
    need(pos, width);
    uint64_t v = 0;
    for (int i = 0; i < width; ++i) v = (v << 8) | d_[pos + i];
    return v;
  }
  uint8_t at(uint64_t pos) const {
    need(pos, 1);
    return d_[pos];
  }
  bool starts(uint64_t pos, const char* s) const {
    size_t len = std::strlen(s);
    return pos <= n_ && len <= n_ - pos && std::memcmp(d_ + pos, s, len) == 0;
  }
  size_t size() const { return n_; }
  [[noreturn]] void bad(const std::string& what) const {
    throw Error(str_cat("image '", name_, "': malformed ", format_, " header: ", what));
  }

 private:
  const uint8_t* d_;
  size_t n_;
  const std::string& name_;
  const char* format_;
};

ImageHeader png(const Bytes& b) {
  if (!b.starts(12, "IHDR")) b.bad("the first chunk is not IHDR");
  return {"PNG", static_cast<int64_t>(b.be(16, 4)), static_cast<int64_t>(b.be(20, 4))};
}

ImageHeader jpeg(const Bytes& b) {
  uint64_t pos = 2;  // after SOI
  for (;;) {
    // As libjpeg: stray bytes before a marker are skipped, as are fill bytes.
    while (pos < b.size() && b.at(pos) != 0xFF) ++pos;
    while (pos < b.size() && b.at(pos) == 0xFF) ++pos;
    const uint8_t marker = b.at(pos++);
    if (marker == 0x01 || marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7)) continue;
    if (marker == 0xD9 || marker == 0xDA) b.bad("no frame (SOF) marker before the image data");
    const uint64_t len = b.be(pos, 2);
    if (len < 2) b.bad(str_cat("segment length ", len, " at byte ", pos, " (expected at least 2)"));
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
                     marker != 0xCC;
    if (sof) {
      if (len < 7) b.bad(str_cat("frame segment of ", len, " bytes (expected at least 7)"));
      const int64_t height = static_cast<int64_t>(b.be(pos + 3, 2));
      const int64_t width = static_cast<int64_t>(b.be(pos + 5, 2));
      if (height == 0) b.bad("height 0 (a DNL marker, which the decoder does not support)");
      return {"JPEG", width, height};
    }
    pos += len;
  }
}

ImageHeader bmp(const Bytes& b) {
  const uint64_t dib = b.le(14, 4);
  if (dib == 12) return {"BMP", static_cast<int64_t>(b.le(18, 2)), static_cast<int64_t>(b.le(20, 2))};
  if (dib < 16) b.bad(str_cat("info header of ", dib, " bytes (expected 12 or at least 16)"));
  const int64_t width = static_cast<int32_t>(static_cast<uint32_t>(b.le(18, 4)));
  const int64_t height = static_cast<int32_t>(static_cast<uint32_t>(b.le(22, 4)));
  // A negative height is a top-down bitmap; a negative width is invalid.
  return {"BMP", width < 0 ? -width : width, height < 0 ? -height : height};
}

ImageHeader gif(const Bytes& b) {
  return {"GIF", static_cast<int64_t>(b.le(6, 2)), static_cast<int64_t>(b.le(8, 2))};
}

// PNM: "P1".."P6", "Pf", "PF": whitespace- and comment-separated decimal
// width and height after the magic. "P7" (PAM): "WIDTH n" and "HEIGHT n"
// lines before "ENDHDR".
ImageHeader pnm(const Bytes& b) {
  uint64_t pos = 2;
  auto skip = [&] {
    for (;;) {
      while (pos < b.size() && std::strchr(" \t\r\n\v\f", b.at(pos)) && b.at(pos) != 0) ++pos;
      if (pos < b.size() && b.at(pos) == '#') {
        while (pos < b.size() && b.at(pos) != '\n') ++pos;
        continue;
      }
      return;
    }
  };
  auto word = [&] {
    skip();
    std::string w;
    while (pos < b.size() && !std::strchr(" \t\r\n\v\f#", b.at(pos)) && w.size() < 32)
      w.push_back(static_cast<char>(b.at(pos++)));
    return w;
  };
  auto number = [&](const char* what) {
    std::string w = word();
    if (w.empty()) {
      b.need(pos, 1);  // the header ends here: truncated
      b.bad(str_cat("no ", what, " (byte ", static_cast<int>(b.at(pos)), " at offset ", pos, ")"));
    }
    if (w.size() > 12 || w.find_first_not_of("0123456789") != std::string::npos)
      b.bad(str_cat("the ", what, " is '", w, "' (expected a decimal number)"));
    return static_cast<int64_t>(std::stoll(w));
  };
  if (b.at(1) != '7') {
    const int64_t width = number("width");
    const int64_t height = number("height");
    return {"PNM", width, height};
  }
  int64_t width = -1, height = -1;
  for (;;) {
    std::string w = word();
    if (w.empty()) {
      b.need(pos, 1);
      b.bad(str_cat("byte ", static_cast<int>(b.at(pos)), " at offset ", pos, " before ENDHDR"));
    }
    if (w == "ENDHDR") break;
    if (w == "WIDTH") width = number("width");
    if (w == "HEIGHT") height = number("height");
  }
  if (width < 0 || height < 0) b.bad("no WIDTH or HEIGHT before ENDHDR");
  return {"PNM", width, height};
}

ImageHeader webp(const Bytes& b) {
  if (b.starts(12, "VP8 ")) {
    if (b.at(23) != 0x9D || b.at(24) != 0x01 || b.at(25) != 0x2A) b.bad("no VP8 start code");
    return {"WebP", static_cast<int64_t>(b.le(26, 2) & 0x3FFF),
            static_cast<int64_t>(b.le(28, 2) & 0x3FFF)};
  }
  if (b.starts(12, "VP8L")) {
    if (b.at(20) != 0x2F) b.bad("no VP8L signature");
    const uint64_t v = b.le(21, 4);
    return {"WebP", static_cast<int64_t>((v & 0x3FFF) + 1),
            static_cast<int64_t>(((v >> 14) & 0x3FFF) + 1)};
  }
  if (b.starts(12, "VP8X"))
    return {"WebP", static_cast<int64_t>(b.le(24, 3) + 1), static_cast<int64_t>(b.le(27, 3) + 1)};
  b.need(12, 4);
  b.bad("the first chunk is not VP8, VP8L or VP8X");
}

ImageHeader tiff(const Bytes& b) {
  const bool little = b.at(0) == 'I';
  const bool big = b.at(2) == 43 || b.at(3) == 43;  // BigTIFF
  auto u = [&](uint64_t pos, int width) { return little ? b.le(pos, width) : b.be(pos, width); };
  const uint64_t ifd = big ? u(8, 8) : u(4, 4);
  const uint64_t count = big ? u(ifd, 8) : u(ifd, 2);
  const uint64_t first = ifd + (big ? 8 : 2), step = big ? 20 : 12;
  if (count > (b.size() - std::min<uint64_t>(b.size(), first)) / step)
    b.need(first, count > UINT64_MAX / step ? UINT64_MAX : count * step);
  int64_t width = -1, height = -1;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t e = first + i * step;
    const uint64_t tag = u(e, 2), type = u(e + 2, 2);
    if (tag != 256 && tag != 257) continue;
    const uint64_t value_at = e + (big ? 12 : 8);
    uint64_t v;
    if (type == 3)
      v = u(value_at, 2);  // SHORT
    else if (type == 4)
      v = u(value_at, 4);  // LONG
    else if (type == 16 && big)
      v = u(value_at, 8);  // LONG8
    else
      b.bad(str_cat("image ", tag == 256 ? "width" : "length", " tag of type ", type,
                    " (expected SHORT or LONG)"));
    if (v > static_cast<uint64_t>(INT64_MAX)) v = INT64_MAX;
    // A repeated tag counts at its largest: whichever one the decoder
    // believes, the limit then holds.
    int64_t& field = tag == 256 ? width : height;
    field = std::max(field, static_cast<int64_t>(v));
  }
  if (width < 0 || height < 0) b.bad("the first IFD has no ImageWidth or ImageLength tag");
  return {"TIFF", width, height};
}

}  // namespace

ImageHeader read_image_header(const uint8_t* data, size_t size, const std::string& name) {
  auto is = [&](const char* magic, size_t at = 0) {
    size_t n = std::strlen(magic);
    return at + n <= size && std::memcmp(data + at, magic, n) == 0;
  };
  if (is("\x89PNG\r\n\x1a\n")) return png(Bytes(data, size, name, "PNG"));
  if (size >= 2 && data[0] == 0xFF && data[1] == 0xD8) return jpeg(Bytes(data, size, name, "JPEG"));
  if (is("BM")) return bmp(Bytes(data, size, name, "BMP"));
  if (is("GIF87a") || is("GIF89a")) return gif(Bytes(data, size, name, "GIF"));
  if (size >= 2 && data[0] == 'P' &&
      ((data[1] >= '1' && data[1] <= '7') || data[1] == 'f' || data[1] == 'F'))
    return pnm(Bytes(data, size, name, "PNM"));
  if (is("RIFF") && is("WEBP", 8)) return webp(Bytes(data, size, name, "WebP"));
  if (size >= 4 && ((data[0] == 'I' && data[1] == 'I' && (data[2] == 42 || data[2] == 43) && data[3] == 0) ||
                    (data[0] == 'M' && data[1] == 'M' && data[2] == 0 && (data[3] == 42 || data[3] == 43))))
    return tiff(Bytes(data, size, name, "TIFF"));
  throw Error(str_cat("image '", name, "' is not a PNG, JPEG, BMP, GIF, PNM (PGM/PPM), WebP or "
                      "TIFF file (unknown signature in its first ", std::min<size_t>(size, 8),
                      " bytes)"));
}

int64_t max_image_pixels() { return g_max_pixels.load(std::memory_order_relaxed); }

void set_max_image_pixels(int64_t pixels) {
  GRAFT_CHECK(pixels > 0, "the image pixel limit is ", pixels, "; expected a positive number");
  g_max_pixels.store(pixels, std::memory_order_relaxed);
}

ImageHeader check_image_header(const uint8_t* bytes, size_t size, const std::string& name) {
  ImageHeader h = read_image_header(bytes, size, name);
  const int64_t limit = max_image_pixels();
  GRAFT_CHECK(h.width >= 0 && h.height >= 0, "image '", name, "': the ", h.format,
              " header gives negative dimensions ", h.width, "x", h.height);
  GRAFT_CHECK(h.width == 0 || h.height <= limit / h.width, "image '", name, "' is ", h.width, "x",
              h.height, " pixels (", h.format, "), over the limit of ", limit,
              " pixels; expected at most that many (the limit is set by set_max_image_pixels)");
  return h;
}

}  // namespace graft
