/// libFuzzer target for graft::parse_tfjs_weights: the input is a manifest
/// followed by its shards, each introduced by the line "#shard#"
/// ("<manifest>\n#shard#\n<shard 0>\n#shard#\n<shard 1>..."); the manifest's
/// paths take the shards in the order they are named. Any input must either
/// parse or throw graft::Error; crashes, sanitizer reports and other
/// exceptions are findings. Built with -DGRAFT_FUZZ=ON (scripts/fuzz.sh); the
/// tests replay it over mutated seeds (tests/weights/fuzz_replay_test.cpp).

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "graft/core/error.h"
#include "graft/weights/tfjs.h"

#include "fuzz_target.h"

extern "C" int GRAFT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  const std::string bytes = graft::fuzz::input_bytes(data, size);
  const std::string sep = "\n#shard#\n";
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t at; (at = bytes.find(sep, start)) != std::string::npos; start = at + sep.size())
    parts.push_back(bytes.substr(start, at - start));
  parts.push_back(bytes.substr(start));
  std::map<std::string, size_t> assigned;  // shard path -> part index, first come first served
  graft::fuzz::refused_or_ok([&] {
    graft::fuzz::touch_last_elements(graft::parse_tfjs_weights(
        parts[0], "fuzz/model-weights_manifest.json", [&](const std::string& path) {
          auto it = assigned.emplace(path, assigned.size() + 1).first;
          GRAFT_CHECK(it->second < parts.size(), "shard '", path, "' is missing");
          return parts[it->second];
        }));
  });
  return 0;
}
