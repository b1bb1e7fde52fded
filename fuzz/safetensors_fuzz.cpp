/// libFuzzer target for graft::parse_safetensors: any input must either parse
/// or throw graft::Error; crashes, leaks, sanitizer reports and other
/// exceptions are findings. Built only with -DGRAFT_FUZZ=ON (scripts/fuzz.sh).

#include <cstddef>
#include <cstdint>
#include <string>

#include "graft/core/error.h"
#include "graft/weights/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    graft::SafetensorsFile file = graft::parse_safetensors(bytes, "fuzz.safetensors");
    // Touch every tensor so that a bad offset or shape shows up under ASan.
    for (const auto& entry : file.tensors) {
      const torch::Tensor& t = entry.second;
      if (t.numel() > 0) (void)t.flatten()[t.numel() - 1].item<double>();
    }
  } catch (const graft::Error&) {
  }
  return 0;
}
