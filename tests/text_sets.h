#pragma once
// The synthetic labelled text sets of the text tests (training, TextCNN,
// score, search): class k of "alpha", "beta", "gamma" draws its words from
// its own band of the fixture vocabulary, w(20 + 100k) .. w(20 + 100k +
// band - 1), plus shared filler words w400..w449, so that the words alone
// separate the classes. Header-only (inline) so that only the text tests
// include it.

#include <cstdint>
#include <fstream>
#include <random>
#include <string>

namespace graft::test {

struct BandTextSet {
  int classes = 3;
  int min_words = 2;    // a text has min_words + rng() % extra_words words
  int extra_words = 12;
  int own_first = 2;    // the first own_first words are always the class's own
  int band = 40;        // words of a class's band
  bool upper = false;   // words after the first as "W123" (the tokenizer lowers them)
};

/// A CSV with a "text,label" header, per_class texts of each class, seeded.
inline void write_band_text_set(const std::string& path, int per_class, uint64_t seed, const BandTextSet& s = {}) {
  static const char* const kNames[] = {"alpha", "beta", "gamma"};
  std::mt19937_64 rng(seed);
  std::ofstream f(path);
  f << "text,label\n";
  for (int i = 0; i < per_class; ++i)
    for (int k = 0; k < s.classes; ++k) {
      std::string text;
      const int n = s.min_words + static_cast<int>(rng() % static_cast<uint64_t>(s.extra_words));
      for (int w = 0; w < n; ++w) {
        const int id = (w >= s.own_first && rng() % 3 == 0)
                           ? 400 + static_cast<int>(rng() % 50)
                           : 20 + 100 * k + static_cast<int>(rng() % static_cast<uint64_t>(s.band));
        text += (w ? (s.upper ? " W" : " w") : "w") + std::to_string(id);
      }
      f << '"' << text << "\"," << kNames[k] << "\n";
    }
}

}  // namespace graft::test
