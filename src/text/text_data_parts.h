#pragma once
// What the text-set readers share (text_data.cpp: CSV, TSV, JSON Lines;
// text_folder.cpp: folders of class files). Private to src/text/.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "graft/text/text_data.h"

namespace graft::text_data_detail {

// Where the examples come from: a label string and one or two texts per record.
struct Labelled {
  int64_t line;
  std::string label;
  std::string text, text_b;
  bool text_null = false;
};

// True when s (valid UTF-8) holds nothing but white space.
bool is_blank(std::string_view s);
// Skips a UTF-8 byte order mark and checks that the rest is UTF-8; throws
// graft::Error naming `source`, the offset and the line.
std::string_view checked_utf8(const std::string& bytes, const std::string& source);
// Classes, label indices and empty-text skipping, the same for every format.
TextSet finish(TextSet set, std::vector<Labelled> records, const TextReadOptions& o);

}  // namespace graft::text_data_detail
