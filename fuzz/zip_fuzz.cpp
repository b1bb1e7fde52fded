/// libFuzzer target for graft's zip reader (src/weights/zip_reader.h) on its
/// own: the end records (zip64 too), the central directory, the checks that
/// entries lie apart from each other and before the central directory, then
/// each entry's local header and CRC. Any input must either be read or throw
/// graft::Error. Built with -DGRAFT_FUZZ=ON; replayed under sanitizers by
/// fuzz/replay_main.cpp.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "graft/core/error.h"
#include "../src/weights/zip_reader.h"

#include "fuzz_target.h"

extern "C" int GRAFT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  const std::string bytes = graft::fuzz::input_bytes(data, size);
  graft::fuzz::refused_or_ok([&] {
    graft::zip::Reader zip(bytes, "fuzz.zip");
    uint64_t total = 0;
    for (const auto& name : zip.names()) {
      if (!zip.has(name)) __builtin_trap();
      graft::fuzz::refused_or_ok([&] {
        std::string_view entry = zip.read(name);
        // Inside the archive, and together no larger than it (entries do
        // not share bytes).
        if (entry.data() < bytes.data() || entry.data() + entry.size() > bytes.data() + bytes.size())
          __builtin_trap();
        total += entry.size();
        if (total > bytes.size()) __builtin_trap();
        if (!entry.empty()) {
          volatile char last = entry.back();
          (void)last;
        }
      });
    }
  });
  return 0;
}
