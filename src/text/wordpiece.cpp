#include "graft/text/wordpiece.h"

#include <algorithm>
#include <cstdio>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "unicode.h"

namespace graft {
namespace {

using unicode::CharClass;

constexpr const char* kPad = "[PAD]";
constexpr const char* kUnk = "[UNK]";
constexpr const char* kCls = "[CLS]";
constexpr const char* kSep = "[SEP]";
constexpr const char* kMask = "[MASK]";

std::string hex_byte(unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", b);
  return buf;
}

size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Scratch buffers of one call, so that words reuse their allocations.
struct Scratch {
  std::u32string word, lowered, decomposed, piece;
  std::string bytes, key;
  std::vector<size_t> offsets;
};

// The special token ([CLS], [MASK] ...) that starts at text[i], if any.
const std::pair<std::string, int64_t>* special_at(const std::vector<std::pair<std::string, int64_t>>& specials,
                                                  std::string_view text, size_t i) {
  if (text[i] != '[') return nullptr;
  for (const auto& sp : specials)
    if (text.compare(i, sp.first.size(), sp.first) == 0) return &sp;
  return nullptr;
}

}  // namespace

WordPiece WordPiece::from_file(const std::string& vocab_path, WordPieceOptions options) {
  return from_text(read_file(vocab_path), options, "vocabulary '" + vocab_path + "'");
}

WordPiece WordPiece::from_text(std::string data, WordPieceOptions options, const std::string& source) {
  if (data.compare(0, 3, "\xEF\xBB\xBF") == 0) data.erase(0, 3);
  std::vector<std::string> tokens;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    size_t end = nl == std::string::npos ? data.size() : nl;
    size_t stop = (end > pos && data[end - 1] == '\r') ? end - 1 : end;
    tokens.emplace_back(data, pos, stop - pos);
    pos = nl == std::string::npos ? data.size() : nl + 1;
  }
  return WordPiece(std::move(tokens), options, source);
}

WordPiece::WordPiece(std::vector<std::string> tokens, WordPieceOptions options, std::string source)
    : tokens_(std::move(tokens)), options_(options) {
  GRAFT_CHECK(!tokens_.empty(), source, " is empty: expected one token per line");
  GRAFT_CHECK(tokens_.size() <= 0x7FFFFFFF, source, " has ", tokens_.size(),
              " tokens: at most 2^31 - 1 are supported");
  GRAFT_CHECK(options_.max_input_chars_per_word > 0, "max_input_chars_per_word is ",
              options_.max_input_chars_per_word, ": expected a positive number");
  strip_accents_ = options_.strip_accents.value_or(options_.lower_case);
  ids_.reserve(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const std::string& t = tokens_[i];
    GRAFT_CHECK(!t.empty(), source, " line ", i + 1, " is empty: expected one token per line");
    size_t bad = unicode::find_invalid_utf8(t);
    GRAFT_CHECK(bad == t.size(), source, " line ", i + 1, ": invalid UTF-8 (byte ",
                hex_byte(static_cast<unsigned char>(t[bad])), " at column ", bad + 1,
                "): expected a UTF-8 vocabulary");
    auto [it, inserted] = ids_.emplace(t, static_cast<int32_t>(i));
    GRAFT_CHECK(inserted, source, " line ", i + 1, ": token '", t, "' repeats line ",
                it->second + 1, ": expected each token once");
    int chars = static_cast<int>(count_chars(t));
    if (t.size() > 2 && t.compare(0, 2, "##") == 0) max_suffix_chars_ = std::max(max_suffix_chars_, chars - 2);
    max_piece_chars_ = std::max(max_piece_chars_, chars);
  }
  std::string missing;
  auto special = [&](const char* name) -> int64_t {
    auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    missing += missing.empty() ? name : std::string(", ") + name;
    return -1;
  };
  pad_id_ = special(kPad);
  unk_id_ = special(kUnk);
  cls_id_ = special(kCls);
  sep_id_ = special(kSep);
  mask_id_ = special(kMask);
  GRAFT_CHECK(missing.empty(), source, " has no ", missing,
              ": a BERT vocabulary needs [PAD], [UNK], [CLS], [SEP] and [MASK]");
  if (!options_.split_special_tokens) {
    specials_ = {{kMask, mask_id_}, {kPad, pad_id_}, {kUnk, unk_id_}, {kCls, cls_id_}, {kSep, sep_id_}};
  }
}

const char* WordPiece::unicode_version() { return unicode::version(); }

const std::string& WordPiece::token(int64_t id) const {
  GRAFT_CHECK(id >= 0 && id < static_cast<int64_t>(tokens_.size()), "token id ", id,
              " is outside the vocabulary: expected 0 to ", tokens_.size() - 1);
  return tokens_[static_cast<size_t>(id)];
}

std::optional<int64_t> WordPiece::find(std::string_view token) const {
  auto it = ids_.find(std::string(token));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

void WordPiece::append_ids(std::string_view text, std::vector<int64_t>& out) const {
  Scratch s;

  // WordPiece proper: greedy longest match first over one word.
  auto word_pieces = [&](const std::u32string& piece) {
    if (piece.empty()) return;
    if (piece.size() > static_cast<size_t>(options_.max_input_chars_per_word)) {
      out.push_back(unk_id_);
      return;
    }
    s.bytes.clear();
    s.offsets.clear();
    for (char32_t cp : piece) {
      s.offsets.push_back(s.bytes.size());
      unicode::append_utf8(cp, s.bytes);
    }
    s.offsets.push_back(s.bytes.size());
    const size_t n = piece.size(), mark = out.size();
    size_t start = 0;
    while (start < n) {
      size_t limit = static_cast<size_t>(start == 0 ? max_piece_chars_ : max_suffix_chars_);
      size_t end = std::min(n, start + limit);
      int32_t found = -1;
      for (; end > start; --end) {
        if (start == 0) {
          s.key.assign(s.bytes, 0, s.offsets[end]);
        } else {
          s.key.assign("##");
          s.key.append(s.bytes, s.offsets[start], s.offsets[end] - s.offsets[start]);
        }
        auto it = ids_.find(s.key);
        if (it != ids_.end()) {
          found = it->second;
          break;
        }
      }
      if (found < 0) {  // one piece matches nothing: the whole word is [UNK]
        out.resize(mark);
        out.push_back(unk_id_);
        return;
      }
      out.push_back(found);
      start = end;
    }
  };

  // One whitespace-delimited word of the cleaned text: lower case, accents,
  // then punctuation split (the order of BasicTokenizer.tokenize).
  auto flush_word = [&]() {
    if (s.word.empty()) return;
    const std::u32string* src = &s.word;
    if (options_.lower_case) {
      s.lowered.clear();
      for (char32_t cp : *src) unicode::append_lower(cp, s.lowered);
      src = &s.lowered;
    }
    if (strip_accents_) {
      s.decomposed.clear();
      for (char32_t cp : *src) unicode::append_nfd(cp, s.decomposed);
      unicode::canonical_order(s.decomposed);
      s.decomposed.erase(std::remove_if(s.decomposed.begin(), s.decomposed.end(),
                                        [](char32_t cp) {
                                          return unicode::char_class(cp) == CharClass::kMark;
                                        }),
                         s.decomposed.end());
      src = &s.decomposed;
    }
    s.piece.clear();
    for (char32_t cp : *src) {
      if (unicode::char_class(cp) == CharClass::kPunct) {
        word_pieces(s.piece);
        s.piece.assign(1, cp);
        word_pieces(s.piece);
        s.piece.clear();
      } else {
        s.piece += cp;
      }
    }
    word_pieces(s.piece);
    s.word.clear();
  };

  size_t i = 0;
  while (i < text.size()) {
    if (const auto* hit = special_at(specials_, text, i)) {
      flush_word();
      out.push_back(hit->second);
      i += hit->first.size();
      continue;
    }
    const size_t at = i;
    char32_t cp;
    GRAFT_CHECK(unicode::next_utf8(text, i, cp), "text is not valid UTF-8: byte ",
                hex_byte(static_cast<unsigned char>(text[at])), " at offset ", at,
                ": expected UTF-8 (decode other encodings, such as latin-1, first)");
    switch (unicode::char_class(cp)) {
      case CharClass::kRemove:
        break;
      case CharClass::kSpace:
        flush_word();
        break;
      default:
        if (options_.tokenize_chinese_chars && unicode::is_cjk(cp)) {
          flush_word();
          s.word += cp;
          flush_word();
        } else {
          s.word += cp;
        }
    }
  }
  flush_word();
}

std::vector<int64_t> WordPiece::ids(std::string_view text) const {
  std::vector<int64_t> out;
  append_ids(text, out);
  return out;
}

std::vector<std::string> WordPiece::tokenize(std::string_view text) const {
  std::vector<int64_t> id_list = ids(text);
  std::vector<std::string> out;
  out.reserve(id_list.size());
  for (int64_t id : id_list) out.push_back(tokens_[static_cast<size_t>(id)]);
  return out;
}

Encoding WordPiece::encode(std::string_view a, std::optional<std::string_view> b, int max_length,
                           bool pad_to_max) const {
  const int specials = b ? 3 : 2;
  GRAFT_CHECK(max_length >= specials, "max_length is ", max_length, ": expected at least ", specials,
              b ? " ([CLS] A [SEP] B [SEP] takes 3 special tokens)"
                : " ([CLS] A [SEP] takes 2 special tokens)");
  std::vector<int64_t> ia = ids(a), ib;
  if (b) ib = ids(*b);
  const size_t budget = static_cast<size_t>(max_length - specials);
  Encoding e;
  // Longest first, one token at a time; B loses the token when A and B are as long.
  while (ia.size() + ib.size() > budget) {
    if (ia.size() > ib.size()) {
      ia.pop_back();
    } else {
      ib.pop_back();
    }
    ++e.num_truncated;
  }
  const size_t length = ia.size() + ib.size() + static_cast<size_t>(specials);
  const size_t total = pad_to_max ? static_cast<size_t>(max_length) : length;
  e.input_ids.reserve(total);
  e.input_ids.push_back(cls_id_);
  e.input_ids.insert(e.input_ids.end(), ia.begin(), ia.end());
  e.input_ids.push_back(sep_id_);
  e.token_type_ids.assign(e.input_ids.size(), 0);
  if (b) {
    e.input_ids.insert(e.input_ids.end(), ib.begin(), ib.end());
    e.input_ids.push_back(sep_id_);
    e.token_type_ids.resize(e.input_ids.size(), 1);
  }
  e.attention_mask.assign(e.input_ids.size(), 1);
  e.input_ids.resize(total, pad_id_);
  e.token_type_ids.resize(total, 0);
  e.attention_mask.resize(total, 0);
  return e;
}

}  // namespace graft
