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

// The lines of a text, numbered from 1, each without its '\n' (a "\r\n"
// line keeps its '\r'). for (std::string_view l; lines.next(l);) ...
class Lines {
 public:
  explicit Lines(std::string_view s) : s_(s) {}
  bool next(std::string_view& line) {
    if (pos_ >= s_.size()) return false;
    ++number_;
    const size_t nl = s_.find('\n', pos_);
    const size_t end = nl == std::string_view::npos ? s_.size() : nl;
    line = s_.substr(pos_, end - pos_);
    pos_ = nl == std::string_view::npos ? s_.size() : nl + 1;
    return true;
  }
  // The number of the line next() gave last.
  int64_t number() const { return number_; }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  int64_t number_ = 0;
};

// True when s (valid UTF-8) holds nothing but white space.
bool is_blank(std::string_view s);
// Skips a UTF-8 byte order mark and checks that the rest is UTF-8; throws
// graft::Error naming `source`, the offset and the line.
std::string_view checked_utf8(const std::string& bytes, const std::string& source);
// Classes, label indices and empty-text skipping, the same for every format.
TextSet finish(TextSet set, std::vector<Labelled> records, const TextReadOptions& o);

}  // namespace graft::text_data_detail
