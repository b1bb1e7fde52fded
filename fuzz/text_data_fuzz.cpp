/// libFuzzer target for the text-set reader (graft::parse_text_set): the
/// input is a file's bytes, read as CSV, TSV (literal and with quoting) and
/// JSON Lines, with columns left out (found by name), given by name and given
/// by index, with and without fixed classes. Any input must either give a
/// consistent set (every label inside the classes, counts adding up) or throw
/// graft::Error; crashes, sanitizer reports and other exceptions are findings.
/// Built with -DGRAFT_FUZZ=ON (scripts/fuzz.sh); the tests replay it over
/// mutated seeds (tests/weights/fuzz_replay_test.cpp).

#include <cstddef>
#include <cstdint>
#include <string>

#include "graft/core/error.h"
#include "graft/text/text_data.h"

#include "fuzz_target.h"

extern "C" int GRAFT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  const std::string bytes = graft::fuzz::input_bytes(data, size);
  struct Variant {
    const char* name;  // the extension picks the format
    const char* text;
    const char* text_b;
    const char* label;
    bool fixed_classes, strict, tsv_quoting;
  };
  static const Variant kVariants[] = {
      {"fuzz.csv", "", "", "", false, false, false},
      {"fuzz.csv", "0", "", "1", false, true, false},
      {"fuzz.csv", "text", "", "label", true, false, false},
      {"fuzz.tsv", "", "", "", false, false, false},
      {"fuzz.tsv", "0", "", "1", false, false, false},
      {"fuzz.tsv", "1", "2", "0", true, false, true},
      {"fuzz.jsonl", "", "", "", false, false, false},
      {"fuzz.jsonl", "text", "text_b", "label", true, true, false},
      {"fuzz", "", "", "", false, false, false},  // sniffed
  };
  for (const Variant& v : kVariants) {
    graft::TextReadOptions o;
    o.text_column = v.text;
    o.text_b_column = v.text_b;
    o.label_column = v.label;
    o.strict = v.strict;
    o.tsv_quoting = v.tsv_quoting;
    if (v.fixed_classes) o.classes = {"0", "1", "neg", "pos"};
    graft::fuzz::refused_or_ok([&] {
      graft::TextSet s = graft::parse_text_set(bytes, v.name, o);
      if (s.examples.empty() || s.classes.empty()) __builtin_trap();
      int64_t total = 0;
      for (int64_t c : s.class_counts()) total += c;
      if (total != static_cast<int64_t>(s.examples.size())) __builtin_trap();
      for (const auto& e : s.examples) {
        if (e.label < 0 || e.label >= static_cast<int>(s.classes.size())) __builtin_trap();
        if (e.line < 1 || (!s.has_pairs && !e.text_b.empty())) __builtin_trap();
      }
    });
  }
  return 0;
}
