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

#include "fuzz_target.h"

extern "C" int GRAFT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  graft::fuzz::refused_or_ok([&] {
    graft::fuzz::touch_last_elements(
        graft::parse_torch_checkpoint(graft::fuzz::input_bytes(data, size), "fuzz.pth"));
  });
  return 0;
}
