/// libFuzzer target for graft's image decoding wrapper (decode_image: OpenCV
/// decoders, the truncated-JPEG check, conversion to 8-bit grey or RGB). Any
/// input must either decode or throw graft::Error. decode_image refuses a
/// header claiming more than max_image_pixels() (50 megapixels) itself; run
/// it with OPENCV_IO_MAX_IMAGE_PIXELS set low as well (scripts/fuzz.sh,
/// scripts/test.sh), so that images below that limit stay small under fuzzing.
/// Built with -DGRAFT_FUZZ=ON; replayed under sanitizers by
/// fuzz/replay_main.cpp.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "graft/core/error.h"
#include "graft/data/image_set.h"

#ifndef GRAFT_FUZZ_ENTRY
#define GRAFT_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

extern "C" int GRAFT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  try {
    cv::Mat m = graft::decode_image(bytes, "fuzz-image");
    if (m.depth() != CV_8U || (m.channels() != 1 && m.channels() != 3) || m.empty()) __builtin_trap();
    volatile uint8_t last = m.ptr<uint8_t>(m.rows - 1)[m.cols * m.channels() - 1];
    (void)last;
  } catch (const graft::Error&) {
  }
  return 0;
}
