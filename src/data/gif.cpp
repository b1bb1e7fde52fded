#include "gif.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include <gif_lib.h>

#include "graft/core/error.h"
#include "graft/data/image_header.h"

namespace graft {

namespace {

struct GifSource {
  const uint8_t* data;
  size_t size;
  size_t pos;
  bool ran_out;  // a read asked for more than was left
};

// giflib's read callback: bytes from memory; fewer than asked at the end,
// which giflib reports as D_GIF_ERR_READ_FAILED.
int gif_read_memory(GifFileType* gif, GifByteType* out, int n) {
  auto* s = static_cast<GifSource*>(gif->UserData);
  const size_t want = static_cast<size_t>(std::max(n, 0));
  const size_t take = std::min<size_t>(want, s->size - s->pos);
  s->ran_out = s->ran_out || take < want;
  std::memcpy(out, s->data + s->pos, take);
  s->pos += take;
  return static_cast<int>(take);
}

struct GifFileCloser {
  void operator()(GifFileType* gif) const {
    int error = 0;
    DGifCloseFile(gif, &error);
  }
};

// giflib names some reads that ran out of data otherwise (a screen
// descriptor cut in its colour table is "no screen descriptor"): running out
// is what makes a GIF truncated.
[[noreturn]] void gif_failed(int code, const GifSource& source, const std::string& name, const std::string& during) {
  if (source.ran_out)
    throw ImageError(name, ImageProblem::kTruncated, "GIF", str_cat("the data ends in ", during));
  const char* what = GifErrorString(code);
  throw ImageError(name, ImageProblem::kDamaged, "GIF",
                   str_cat(what ? what : "unknown giflib error", " (giflib error ", code, ") in ", during));
}

}  // namespace

cv::Mat decode_gif(const std::vector<uint8_t>& bytes, const std::string& name) {
  GifSource source{bytes.data(), bytes.size(), 0, false};
  int error = 0;
  std::unique_ptr<GifFileType, GifFileCloser> gif(DGifOpen(&source, gif_read_memory, &error));
  if (!gif) gif_failed(error, source, name, "the screen descriptor or colour table");
  GifFileType* g = gif.get();

  // Extensions up to the first image: the last graphic control extension
  // that sets the transparency flag names the transparent index (as Pillow).
  int transparent = -1;
  for (;;) {
    GifRecordType type = UNDEFINED_RECORD_TYPE;
    if (DGifGetRecordType(g, &type) == GIF_ERROR) gif_failed(g->Error, source, name, "the blocks before the first image");
    if (type == IMAGE_DESC_RECORD_TYPE) break;
    if (type == TERMINATE_RECORD_TYPE)
      throw ImageError(name, ImageProblem::kDamaged, "GIF", "the file holds no image");
    if (type != EXTENSION_RECORD_TYPE) continue;
    int code = 0;
    GifByteType* block = nullptr;
    if (DGifGetExtension(g, &code, &block) == GIF_ERROR) gif_failed(g->Error, source, name, "an extension");
    bool first = true;
    while (block != nullptr) {
      // block[0] is the sub-block's length; a graphic control extension's
      // first sub-block is flags, delay (2 bytes), transparent index.
      if (first && code == GRAPHICS_EXT_FUNC_CODE && block[0] >= 4 && (block[1] & 1)) transparent = block[4];
      first = false;
      if (DGifGetExtensionNext(g, &block) == GIF_ERROR) gif_failed(g->Error, source, name, "an extension");
    }
  }
  if (DGifGetImageDesc(g) == GIF_ERROR) gif_failed(g->Error, source, name, "the first image descriptor");
  const GifImageDesc& d = g->Image;
  const int64_t left = d.Left, top = d.Top, fw = d.Width, fh = d.Height;
  const int64_t width = std::max<int64_t>(g->SWidth, left + fw);
  const int64_t height = std::max<int64_t>(g->SHeight, top + fh);
  if (width == 0 || height == 0)
    throw ImageError(name, ImageProblem::kDamaged, "GIF", str_cat("the image is ", width, "x", height, " pixels"));
  const int64_t limit = max_image_pixels();
  if (height > limit / width)
    throw ImageError(name, ImageProblem::kTooLarge, "GIF",
                     str_cat(width, "x", height, " pixels (GIF, the first frame's extent), over the limit of ", limit,
                             " pixels (--max-pixels)"));

  // The frame's indices on the canvas.
  std::vector<uint8_t> index(static_cast<size_t>(width * height), static_cast<uint8_t>(std::max(transparent, 0)));
  if (fw > 0 && fh > 0) {
    std::vector<GifPixelType> line(static_cast<size_t>(fw));
    auto read_row = [&](int64_t y) {
      if (DGifGetLine(g, line.data(), static_cast<int>(fw)) == GIF_ERROR)
        gif_failed(g->Error, source, name, str_cat("the pixels of row ", y));
      std::memcpy(index.data() + (top + y) * width + left, line.data(), static_cast<size_t>(fw));
    };
    if (d.Interlace) {
      // Rows 0, 8, 16, ...; 4, 12, ...; 2, 6, ...; 1, 3, ...
      const int64_t start[] = {0, 4, 2, 1}, step[] = {8, 8, 4, 2};
      for (int pass = 0; pass < 4; ++pass)
        for (int64_t y = start[pass]; y < fh; y += step[pass]) read_row(y);
    } else {
      for (int64_t y = 0; y < fh; ++y) read_row(y);
    }
  }

  const ColorMapObject* map = d.ColorMap ? d.ColorMap : g->SColorMap;
  uint8_t rgb[256][3] = {};
  bool grey = true;
  for (int i = 0; i < 256; ++i) {
    if (!map) {
      rgb[i][0] = rgb[i][1] = rgb[i][2] = static_cast<uint8_t>(i);
    } else if (i < map->ColorCount) {
      rgb[i][0] = map->Colors[i].Red;
      rgb[i][1] = map->Colors[i].Green;
      rgb[i][2] = map->Colors[i].Blue;
    }
    grey = grey && rgb[i][0] == rgb[i][1] && rgb[i][1] == rgb[i][2];
  }
  cv::Mat out(static_cast<int>(height), static_cast<int>(width), grey ? CV_8UC1 : CV_8UC3);
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t* in = index.data() + y * width;
    uint8_t* o = out.ptr<uint8_t>(static_cast<int>(y));
    if (grey) {
      for (int64_t x = 0; x < width; ++x) o[x] = rgb[in[x]][0];
    } else {
      for (int64_t x = 0; x < width; ++x) std::memcpy(o + 3 * x, rgb[in[x]], 3);
    }
  }
  return out;
}

}  // namespace graft
