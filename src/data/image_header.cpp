#include "graft/data/image_header.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>

#include "graft/core/error.h"

namespace graft {

const char* supported_image_formats() {
  return "PNG, JPEG, BMP, GIF, PNM (PBM/PGM/PPM/PAM/PFM), WebP and TIFF";
}

namespace {

std::string image_reason(ImageProblem problem, const std::string& format, const std::string& detail) {
  const std::string more = detail.empty() ? "" : str_cat(" (", detail, ")");
  switch (problem) {
    case ImageProblem::kNotAnImage: return "not an image" + more;
    case ImageProblem::kUnsupported: return str_cat("unsupported format ", format, more);
    case ImageProblem::kTruncated: return str_cat("truncated ", format.empty() ? "file" : format, more);
    case ImageProblem::kTooLarge: return str_cat("too large: ", detail);
    case ImageProblem::kDamaged: return str_cat("damaged ", format.empty() ? "image" : format, more);
    case ImageProblem::kCannotOpen: return "the file cannot be read" + more;
  }
  return detail;
}

}  // namespace

ImageError::ImageError(const std::string& path, ImageProblem problem, const std::string& format,
                       const std::string& detail)
    : Error(str_cat("cannot read image '", path, "': ", image_reason(problem, format, detail),
                    "; graft reads ", supported_image_formats())),
      path_(path),
      problem_(problem),
      format_(format),
      reason_(image_reason(problem, format, detail)) {}

std::string describe_file_start(const uint8_t* bytes, size_t size) {
  if (size == 0) return "the file is empty";
  const size_t n = std::min<size_t>(size, 8);
  bool text = true;
  for (size_t i = 0; i < n; ++i)
    text = text && ((bytes[i] >= 0x20 && bytes[i] < 0x7F) || bytes[i] == '\n' || bytes[i] == '\r' ||
                    bytes[i] == '\t');
  std::string out = "starts with ";
  if (text) {
    out += '"';
    for (size_t i = 0; i < n; ++i) {
      const char c = static_cast<char>(bytes[i]);
      if (c == '\n') out += "\\n";
      else if (c == '\r') out += "\\r";
      else if (c == '\t') out += "\\t";
      else if (c == '"' || c == '\\') out += std::string("\\") + c;
      else out += c;
    }
    return out + '"';
  }
  static const char* hex = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    if (i) out += ' ';
    out += hex[bytes[i] >> 4];
    out += hex[bytes[i] & 15];
  }
  return out;
}

UnreadableImage unreadable_image(const Error& e, const std::string& path, int label) {
  UnreadableImage u;
  u.path = path;
  u.label = label;
  u.message = e.what();
  if (const auto* image = dynamic_cast<const ImageError*>(&e)) {
    u.problem = image->problem();
    u.format = image->format();
  }
  return u;
}

namespace {

// How a group of unreadable files is described, e.g. "are HEIC, which graft
// does not read".
std::string unreadable_phrase(ImageProblem problem, const std::string& format, bool one) {
  const char* are = one ? "is" : "are";
  switch (problem) {
    case ImageProblem::kNotAnImage: return one ? "is not an image" : "are not images";
    case ImageProblem::kUnsupported: return str_cat(are, " ", format, ", which graft does not read");
    case ImageProblem::kTruncated: return str_cat(are, " truncated");
    case ImageProblem::kTooLarge: return str_cat(are, " larger than --max-pixels allows");
    case ImageProblem::kDamaged: return str_cat(are, " damaged");
    case ImageProblem::kCannotOpen: return "cannot be opened";
  }
  return "";
}

}  // namespace

std::string unreadable_reasons(const std::vector<UnreadableImage>& unreadable,
                               const std::vector<std::string>& labels) {
  struct Group {
    ImageProblem problem;
    std::string format;
    std::vector<const UnreadableImage*> files;
  };
  std::vector<Group> groups;
  for (const UnreadableImage& u : unreadable) {
    const std::string format = u.problem == ImageProblem::kUnsupported ? u.format : "";
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const Group& g) { return g.problem == u.problem && g.format == format; });
    if (it == groups.end()) it = groups.insert(groups.end(), Group{u.problem, format, {}});
    it->files.push_back(&u);
  }
  // Largest first, then by reason and format; the first file by label and
  // path: the same line whatever order the files were tried in.
  std::sort(groups.begin(), groups.end(), [](const Group& a, const Group& b) {
    if (a.files.size() != b.files.size()) return a.files.size() > b.files.size();
    if (a.problem != b.problem) return a.problem < b.problem;
    return a.format < b.format;
  });
  for (Group& g : groups)
    std::sort(g.files.begin(), g.files.end(), [](const UnreadableImage* a, const UnreadableImage* b) {
      return a->label != b->label ? a->label < b->label : a->path < b->path;
    });
  std::string out;
  for (const Group& g : groups) {
    out += str_cat(out.empty() ? "" : ", ", g.files.size(), " ",
                   unreadable_phrase(g.problem, g.format, g.files.size() == 1), " (");
    if (!labels.empty()) {
      // Count per label, in label order; at most 8 named.
      std::vector<int64_t> per(labels.size() + 1, 0);
      for (const UnreadableImage* u : g.files)
        ++per[u->label >= 0 && static_cast<size_t>(u->label) < labels.size() ? static_cast<size_t>(u->label)
                                                                              : labels.size()];
      int named = 0, more = 0;
      for (size_t l = 0; l < labels.size(); ++l) {
        if (per[l] == 0) continue;
        if (named == 8) {
          ++more;
          continue;
        }
        out += str_cat(named++ ? ", " : "", labels[l], " ", per[l]);
      }
      if (more > 0) out += str_cat(" and ", more, " more");
      out += "; ";
    }
    out += str_cat("first: '", g.files.front()->path, "')");
  }
  return out;
}

std::string unreadable_summary(const std::vector<UnreadableImage>& unreadable, int64_t total,
                               const std::vector<std::string>& labels, const std::string& noun) {
  if (unreadable.empty()) return "";
  const int64_t n = static_cast<int64_t>(unreadable.size());
  const std::string head = n >= total ? str_cat("0 of ", total, " ", noun, " could be read: ")
                                      : str_cat(n, " of ", total, " ", noun, " could not be read and are left out: ");
  return str_cat(head, unreadable_reasons(unreadable, labels), "; graft reads ", supported_image_formats());
}

const char* image_format_of(const uint8_t* data, size_t size, const std::string& name) {
  auto is = [&](const char* magic, size_t at = 0, size_t n = 0) {
    if (n == 0) n = std::strlen(magic);
    return at + n <= size && std::memcmp(data + at, magic, n) == 0;
  };
  auto le = [&](size_t at, int width) {
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i) v = (v << 8) | data[at + i];
    return v;
  };
  if (is("\x89PNG\r\n\x1a\n")) return "PNG";
  if (size >= 2 && data[0] == 0xFF && data[1] == 0xD8) return "JPEG";
  if (is("BM")) {
    // The info header's size: a text file starting with "BM" is not a bitmap
    // (a shorter file is a truncated one).
    if (size < 18) return "BMP";
    const uint64_t dib = le(14, 4);
    if (dib == 12 || dib == 16 || dib == 40 || dib == 52 || dib == 56 || dib == 64 || dib == 108 ||
        dib == 124)
      return "BMP";
  }
  if (is("GIF87a") || is("GIF89a")) return "GIF";
  if (size >= 2 && data[0] == 'P' &&
      ((data[1] >= '1' && data[1] <= '7') || data[1] == 'f' || data[1] == 'F'))
    return "PNM";
  if (is("RIFF") && is("WEBP", 8)) {
    // OpenCV 4.6 decodes still WebP only: VP8X flags bit 1 is animation.
    if (is("VP8X", 12) && size > 20 && (data[20] & 0x02))
      throw ImageError(name, ImageProblem::kUnsupported, "animated WebP", "");
    return "WebP";
  }
  if (size >= 4 && ((data[0] == 'I' && data[1] == 'I' && (data[2] == 42 || data[2] == 43) && data[3] == 0) ||
                    (data[0] == 'M' && data[1] == 'M' && data[2] == 0 && (data[3] == 42 || data[3] == 43))))
    return "TIFF";

  // Image formats that graft does not decode, named so that the message says
  // what the file is.
  const char* other = nullptr;
  if (is("\0\0\0\x0cjP  \r\n\x87\n", 0, 12) || is("\xff\x4f\xff\x51")) other = "JPEG 2000";
  else if (is("\0\0\0\x0cJXL \r\n\x87\n", 0, 12) || is("\xff\x0a")) other = "JPEG XL";
  else if (is("ftyp", 4) && size >= 12) {
    const std::string brand(reinterpret_cast<const char*>(data) + 8, 4);
    if (brand == "avif" || brand == "avis") other = "AVIF";
    else if (brand == "heic" || brand == "heix" || brand == "hevc" || brand == "hevx" || brand == "heim" ||
             brand == "heis" || brand == "mif1" || brand == "msf1")
      other = "HEIC";
  } else if (size >= 6 && (is("\0\0\1\0", 0, 4) || is("\0\0\2\0", 0, 4)) && le(4, 2) > 0) {
    other = data[2] == 1 ? "ICO" : "CUR";
  } else if (is("8BPS")) other = "PSD";
  else if (is("\x76\x2f\x31\x01")) other = "OpenEXR";
  else if (is("#?RADIANCE") || is("#?RGBE")) other = "Radiance HDR";
  else if (is("\x59\xa6\x6a\x95")) other = "Sun raster";
  else if (is("qoif")) other = "QOI";
  else if (is("DDS ")) other = "DDS";
  else if (is("%PDF-")) other = "PDF";
  else if (is("<svg") ||
           (is("<?xml") && std::string(reinterpret_cast<const char*>(data), std::min<size_t>(size, 256))
                                   .find("<svg") != std::string::npos))
    other = "SVG";
  if (other) throw ImageError(name, ImageProblem::kUnsupported, other, "");
  throw ImageError(name, ImageProblem::kNotAnImage, "", describe_file_start(data, size));
}

namespace {

std::atomic<int64_t> g_max_pixels{kDefaultMaxImagePixels};

// Bounds-checked reads from the start of the file; every miss names the file.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size, const std::string& name, const char* format)
      : d_(data), n_(size), name_(name), format_(format) {}

  void need(uint64_t pos, uint64_t len) const {
    if (pos <= n_ && len <= n_ - pos) return;
    throw ImageError(name_, ImageProblem::kTruncated, format_,
                     str_cat("the header ends at ", n_, " bytes; expected at least ",
                             len > UINT64_MAX - pos ? UINT64_MAX : pos + len));
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
    throw ImageError(name_, ImageProblem::kDamaged, format_, str_cat("malformed header: ", what));
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
  const std::string format = image_format_of(data, size, name);
  if (format == "PNG") return png(Bytes(data, size, name, "PNG"));
  if (format == "JPEG") return jpeg(Bytes(data, size, name, "JPEG"));
  if (format == "BMP") return bmp(Bytes(data, size, name, "BMP"));
  if (format == "GIF") return gif(Bytes(data, size, name, "GIF"));
  if (format == "PNM") return pnm(Bytes(data, size, name, "PNM"));
  if (format == "WebP") return webp(Bytes(data, size, name, "WebP"));
  return tiff(Bytes(data, size, name, "TIFF"));
}

int64_t max_image_pixels() { return g_max_pixels.load(std::memory_order_relaxed); }

void set_max_image_pixels(int64_t pixels) {
  GRAFT_CHECK(pixels > 0, "the image pixel limit is ", pixels, "; expected a positive number");
  g_max_pixels.store(pixels, std::memory_order_relaxed);
}

ImageHeader check_image_header(const uint8_t* bytes, size_t size, const std::string& name) {
  ImageHeader h = read_image_header(bytes, size, name);
  const int64_t limit = max_image_pixels();
  if (h.width < 0 || h.height < 0)
    throw ImageError(name, ImageProblem::kDamaged, h.format,
                     str_cat("the header gives negative dimensions ", h.width, "x", h.height));
  if (h.width != 0 && h.height > limit / h.width)
    throw ImageError(name, ImageProblem::kTooLarge, h.format,
                     str_cat(h.width, "x", h.height, " pixels (", h.format, "), over the limit of ",
                             limit, " pixels (--max-pixels)"));
  return h;
}

}  // namespace graft
