/// libFuzzer target for the IDX readers (parse_idx_images / parse_idx_labels;
/// the first byte picks which). Any input must either parse or throw
/// graft::Error. Built with -DGRAFT_FUZZ=ON (scripts/fuzz.sh); the tests
/// replay it over mutated seeds (tests/weights/fuzz_replay_test.cpp).

#include <cstddef>
#include <cstdint>
#include <vector>

#include "graft/core/error.h"
#include "graft/data/image_set.h"

#include "fuzz_target.h"

extern "C" int GRAFT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::vector<uint8_t> bytes(data + 1, data + size);
  graft::fuzz::refused_or_ok([&] {
    if (data[0] & 1) {
      graft::IdxImages im = graft::parse_idx_images(bytes, "fuzz-images-idx3-ubyte");
      if (!im.pixels.empty()) (void)im.pixels.back();
      if (static_cast<int64_t>(im.pixels.size()) != im.count * im.rows * im.cols) __builtin_trap();
    } else {
      std::vector<uint8_t> labels = graft::parse_idx_labels(bytes, "fuzz-labels-idx1-ubyte");
      (void)labels.size();
    }
  });
  return 0;
}
