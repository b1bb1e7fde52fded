/// libFuzzer target for graft's image header reader (read_image_header:
/// PNG, JPEG, BMP, GIF, PNM, WebP, TIFF dimensions without decoding). Any
/// input must either give dimensions or throw graft::Error. Where the header
/// claims at most a megapixel, the image is also decoded by OpenCV: a decoded
/// image larger than its header said would slip past the pixel limit, and is
/// a finding. Built with -DGRAFT_FUZZ=ON; replayed under sanitizers by
/// fuzz/replay_main.cpp.

#include <cstddef>
#include <cstdint>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "graft/core/error.h"
#include "graft/data/image_header.h"

#ifndef GRAFT_FUZZ_ENTRY
#define GRAFT_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

extern "C" int GRAFT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  graft::ImageHeader h;
  try {
    h = graft::read_image_header(data, size, "fuzz-image");
  } catch (const graft::Error&) {
    return 0;
  }
  if (h.width < 0 || h.height < 0) __builtin_trap();
  if (h.width == 0 || h.height == 0 || h.height > (int64_t{1} << 20) / h.width) return 0;
  cv::Mat m;
  try {
    m = cv::imdecode(std::vector<uint8_t>(data, data + size), cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception&) {
    return 0;
  }
  if (!m.empty() && int64_t(m.rows) * m.cols > h.width * h.height) __builtin_trap();
  return 0;
}
