/// libFuzzer target for graft::parse_torch_checkpoint (zip and legacy
/// torch.save files): any input must either parse or throw graft::Error;
/// crashes, leaks, sanitizer reports and other exceptions are findings.
/// Built with -DGRAFT_FUZZ=ON (scripts/fuzz.sh); the tests replay it over
/// mutated seeds (tests/weights/fuzz_replay_test.cpp).

#include <cstddef>
#include <cstdint>
#include <string>

#include "graft/core/error.h"
#include "graft/weights/torch_checkpoint.h"

#ifndef GRAFT_FUZZ_ENTRY
#define GRAFT_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

extern "C" int GRAFT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    graft::TensorList tensors = graft::parse_torch_checkpoint(bytes, "fuzz.pth");
    // Touch every tensor so that a view outside its storage shows up under ASan.
    for (const auto& entry : tensors) {
      const torch::Tensor& t = entry.second;
      if (t.numel() > 0) (void)t.contiguous().flatten()[t.numel() - 1].item<double>();
    }
  } catch (const graft::Error&) {
  }
  return 0;
}
