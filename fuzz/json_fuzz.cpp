/// libFuzzer target for the JSON reader that every JSON file of graft goes
/// through (graft/core/json.h: nesting bounded before parsing, errors naming
/// the source, excerpts cut short) and for face galleries read from a file.
/// The input must be accepted or rejected with graft::Error. Small enough
/// for the sanitizer replay; tests/weights/fuzz_replay_test.cpp also runs
/// json_files_fuzz, which feeds every JSON reader of the whole library.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "graft/core/error.h"
#include "graft/core/json.h"
#include "graft/face/gallery.h"

#include "fuzz_target.h"

extern "C" int GRAFT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  const std::string text = graft::fuzz::input_bytes(data, size);
  graft::fuzz::refused_or_ok([&] {
    const nlohmann::json j = graft::parse_json(text, "fuzz");
    (void)graft::json_excerpt(j, 64);
    (void)graft::json_kind(j);
    (void)graft::parse_ordered_json(text, "fuzz");
    graft::fuzz::refused_or_ok([&] { (void)graft::json_get<int64_t>(j, "epochs", "fuzz"); });
    graft::fuzz::refused_or_ok(
        [&] { (void)graft::json_get_or<std::vector<std::string>>(j, "classes", {}, "fuzz"); });
  });
  // The same bytes as a gallery file (removed first: rewriting a file in
  // place makes ext4 flush its old data).
  static const std::string path =
      (std::filesystem::temp_directory_path() /
       ("graft-json-fuzz-gallery-" + std::to_string(::getpid()) + ".json"))
          .string();
  std::filesystem::remove(path);
  std::ofstream(path, std::ios::binary) << text;
  graft::fuzz::refused_or_ok([&] { (void)graft::read_gallery(path); });
  return 0;
}
