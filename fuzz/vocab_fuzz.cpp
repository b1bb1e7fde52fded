/// libFuzzer target for the WordPiece tokenizer: the input is a vocab.txt,
/// a NUL byte, then a text (or a pair: a second NUL separates A and B).
/// Vocabulary and text must either work or throw graft::Error; every id must
/// be inside the vocabulary and every encoding at most max_length long.
/// Built with -DGRAFT_FUZZ=ON (scripts/fuzz.sh); the tests replay it over
/// mutated seeds (tests/weights/fuzz_replay_test.cpp).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "graft/core/error.h"
#include "graft/text/wordpiece.h"

#include "fuzz_target.h"

extern "C" int GRAFT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  const std::string bytes = graft::fuzz::input_bytes(data, size);
  const size_t cut = bytes.find('\0');
  if (cut == std::string::npos) return 0;
  std::string text = bytes.substr(cut + 1);
  std::optional<std::string> second;
  if (size_t c2 = text.find('\0'); c2 != std::string::npos) {
    second = text.substr(c2 + 1);
    text.resize(c2);
  }
  graft::fuzz::refused_or_ok([&] {
    graft::WordPiece wp = graft::WordPiece::from_text(bytes.substr(0, cut), {}, "fuzz vocab");
    const int max_length = 16;
    graft::Encoding e = second ? wp.encode(text, std::string_view(*second), max_length)
                               : wp.encode(text, std::nullopt, max_length);
    if (e.input_ids.size() > static_cast<size_t>(max_length)) __builtin_trap();
    for (int64_t id : e.input_ids)
      if (id < 0 || id >= static_cast<int64_t>(wp.size())) __builtin_trap();
    for (int64_t id : wp.ids(text)) (void)wp.token(id);
  });
  return 0;
}
