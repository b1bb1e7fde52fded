#pragma once
// Private to src/text: UTF-8 and the Unicode data BERT's BasicTokenizer uses
// (character classes, per-character lower case, NFD). The tables are made by
// scripts/gen_unicode_tables.py from Python's unicodedata, the data Hugging
// Face's Python tokenizer itself uses, so that both see the same Unicode
// version (unicode::version()).

#include <cstdint>
#include <string>
#include <string_view>

namespace graft::unicode {

/// What BasicTokenizer does with a character, tested in this order:
/// kRemove (NUL, U+FFFD, categories Cc Cf Co Cs but \t \n \r), kSpace
/// (\t \n \r, Zs, U+2028, U+2029), kPunct (ASCII 33-47, 58-64, 91-96,
/// 123-126 or P*), kMark (Mn, dropped by accent stripping), kPlain (the rest,
/// unassigned code points included: see scripts/gen_unicode_tables.py).
enum class CharClass : uint8_t { kPlain = 0, kRemove = 1, kSpace = 2, kPunct = 3, kMark = 4 };

/// The Unicode version of the tables ("14.0.0").
const char* version();

/// The class of a code point; code points past U+10FFFF are kRemove.
CharClass char_class_slow(char32_t cp);

/// Class of ASCII characters, by table.
extern const CharClass kAsciiClass[128];

inline CharClass char_class(char32_t cp) {
  return cp < 128 ? kAsciiClass[cp] : char_class_slow(cp);
}

/// The CJK ideograph blocks of BERT's _is_chinese_char (not all of CJK:
/// Hangul, kana and CJK punctuation are not included, as in the reference).
inline bool is_cjk(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/// Appends the lower case of one character (Python's chr(cp).lower(): the
/// full mapping, so U+0130 gives two characters; no final-sigma context,
/// since Hugging Face lower-cases character by character).
void append_lower(char32_t cp, std::u32string& out);

/// Appends the full canonical decomposition of one character (NFD of that
/// character alone, Hangul syllables included). Callers that decompose a
/// string must then call canonical_order().
void append_nfd(char32_t cp, std::u32string& out);

/// The canonical combining class (0 for starters).
uint8_t combining_class(char32_t cp);

/// Sorts every run of characters with a non-zero combining class by class,
/// stably: the last step of NFD.
void canonical_order(std::u32string& s);

/// Decodes the UTF-8 sequence that starts at s[i] and advances i past it.
/// Rejects what RFC 3629 rejects (stray continuation bytes, overlong forms,
/// surrogates, values past U+10FFFF, truncated sequences): returns false and
/// leaves i at the bad byte.
inline bool next_utf8(std::string_view s, size_t& i, char32_t& cp) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  unsigned char b0 = p[i];
  if (b0 < 0x80) {
    cp = b0;
    ++i;
    return true;
  }
  size_t len;
  char32_t min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2, min = 0x80, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, min = 0x800, cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, min = 0x10000, cp = b0 & 0x07;
  } else {
    return false;
  }
  if (i + len > n) return false;
  for (size_t k = 1; k < len; ++k) {
    unsigned char b = p[i + k];
    if ((b & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  i += len;
  return true;
}

/// Appends the UTF-8 encoding of a code point (which must be valid).
inline void append_utf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// Where the first invalid UTF-8 byte of s is, or s.size() if s is valid.
size_t find_invalid_utf8(std::string_view s);

}  // namespace graft::unicode
