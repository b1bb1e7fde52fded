#include "unicode.h"

#include <algorithm>
#include <iterator>

namespace graft::unicode {
namespace {

struct CodePair {
  uint32_t from, to;
};
struct Decomposition {
  uint32_t cp;
  uint16_t offset;
  uint8_t length;
};

#include "unicode_tables.inc"

// Hangul syllables decompose by formula (Unicode 3.12), not by table.
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kTCount = 28, kNCount = 21 * 28, kSCount = 19 * 21 * 28;

// The value of the run (start << shift | value) that holds cp.
template <size_t N>
uint32_t run_value(const uint32_t (&runs)[N], char32_t cp, int shift) {
  uint32_t key = (static_cast<uint32_t>(cp) << shift) | ((1u << shift) - 1);
  const uint32_t* it = std::upper_bound(std::begin(runs), std::end(runs), key);
  // runs[0] starts at code point 0, so `it` is never the first element.
  return *(it - 1) & ((1u << shift) - 1);
}

}  // namespace

const CharClass kAsciiClass[128] = {
#define R CharClass::kRemove
#define S CharClass::kSpace
#define P CharClass::kPunct
#define L CharClass::kPlain
    R, R, R, R, R, R, R, R, R, S, S, R, R, S, R, R,  // 0x00: \t \n \r are spaces
    R, R, R, R, R, R, R, R, R, R, R, R, R, R, R, R,  // 0x10
    S, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P,  // 0x20: space ! " # ... /
    L, L, L, L, L, L, L, L, L, L, P, P, P, P, P, P,  // 0x30: 0-9 : ; < = > ?
    P, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,  // 0x40: @ A-O
    L, L, L, L, L, L, L, L, L, L, L, P, P, P, P, P,  // 0x50: P-Z [ \ ] ^ _
    P, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,  // 0x60: ` a-o
    L, L, L, L, L, L, L, L, L, L, L, P, P, P, P, R,  // 0x70: p-z { | } ~ DEL
#undef R
#undef S
#undef P
#undef L
};

const char* version() { return kUnicodeVersion; }

CharClass char_class_slow(char32_t cp) {
  if (cp > 0x10FFFF) return CharClass::kRemove;
  return static_cast<CharClass>(run_value(kClassRuns, cp, 3));
}

void append_lower(char32_t cp, std::u32string& out) {
  if (cp < 128) {
    out += (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    return;
  }
  if (cp == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE: i + COMBINING DOT ABOVE
    out += U'i';
    out += char32_t{0x307};
    return;
  }
  const CodePair* it = std::lower_bound(std::begin(kLower), std::end(kLower), cp,
                                        [](const CodePair& p, char32_t c) { return p.from < c; });
  out += (it != std::end(kLower) && it->from == cp) ? char32_t{it->to} : cp;
}

void append_nfd(char32_t cp, std::u32string& out) {
  if (cp < 0xC0) {  // nothing below U+00C0 decomposes
    out += cp;
    return;
  }
  if (cp >= kSBase && cp < kSBase + kSCount) {
    char32_t s = cp - kSBase;
    out += kLBase + s / kNCount;
    out += kVBase + (s % kNCount) / kTCount;
    if (s % kTCount != 0) out += kTBase + s % kTCount;
    return;
  }
  const Decomposition* it =
      std::lower_bound(std::begin(kDecompositions), std::end(kDecompositions), cp,
                       [](const Decomposition& d, char32_t c) { return d.cp < c; });
  if (it == std::end(kDecompositions) || it->cp != cp) {
    out += cp;
    return;
  }
  for (int k = 0; k < it->length; ++k) out += kDecompositionPool[it->offset + k];
}

uint8_t combining_class(char32_t cp) {
  if (cp < 0x300 || cp > 0x10FFFF) return 0;
  return static_cast<uint8_t>(run_value(kCombiningRuns, cp, 8));
}

void canonical_order(std::u32string& s) {
  size_t i = 0;
  while (i < s.size()) {
    if (combining_class(s[i]) == 0) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < s.size() && combining_class(s[end]) != 0) ++end;
    if (end - i > 1) {
      std::stable_sort(s.begin() + static_cast<std::ptrdiff_t>(i),
                       s.begin() + static_cast<std::ptrdiff_t>(end),
                       [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    }
    i = end;
  }
}

size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  char32_t cp;
  while (i < s.size()) {
    if (!next_utf8(s, i, cp)) return i;
  }
  return s.size();
}

}  // namespace graft::unicode
