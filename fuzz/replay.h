#pragma once
// The mutator of graft's bounded fuzz replays: the tests
// (tests/weights/fuzz_replay_test.cpp) and the sanitizer build
// (fuzz/replay_main.cpp) run every fuzz target over its seeds and a fixed
// number of deterministic mutations of them, without libFuzzer.

#include <algorithm>
#include <climits>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace graft::fuzz {

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  std::string mutate(std::string s, const std::vector<std::string>& pool) {
    int steps = 1 + static_cast<int>(below(4));
    for (int i = 0; i < steps; ++i) once(s, pool);
    return s;
  }

 private:
  uint64_t below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  void once(std::string& s, const std::vector<std::string>& pool) {
    static const int64_t kInteresting[] = {0, 1, -1, 127, 128, 255, 256, 65535, 65536,
                                           INT32_MAX, INT32_MIN, int64_t{1} << 32,
                                           int64_t{1} << 40, INT64_MAX, INT64_MIN};
    switch (below(10)) {
      case 0:  // flip a bit
        if (!s.empty()) s[below(s.size())] ^= static_cast<char>(1u << below(8));
        break;
      case 1:  // random byte
        if (!s.empty()) s[below(s.size())] = static_cast<char>(below(256));
        break;
      case 2: {  // interesting byte
        static const unsigned char b[] = {0, 1, 0x7f, 0x80, 0xff, '"', '[', '{', '-', '9'};
        if (!s.empty()) s[below(s.size())] = static_cast<char>(b[below(sizeof b)]);
        break;
      }
      case 3: {  // interesting 2/4/8-byte integer, little-endian
        size_t width = size_t{2} << below(3);
        if (s.size() < width) break;
        int64_t v = kInteresting[below(sizeof kInteresting / sizeof kInteresting[0])];
        size_t at = below(s.size() - width + 1);
        for (size_t k = 0; k < width; ++k) s[at + k] = static_cast<char>((v >> (8 * k)) & 0xff);
        break;
      }
      case 4:  // truncate
        s.resize(below(s.size() + 1));
        break;
      case 5: {  // erase a range
        if (s.empty()) break;
        size_t at = below(s.size());
        s.erase(at, 1 + below(std::min<size_t>(64, s.size() - at)));
        break;
      }
      case 6: {  // duplicate a range elsewhere
        if (s.empty() || s.size() > (1u << 20)) break;
        size_t at = below(s.size());
        std::string piece = s.substr(at, 1 + below(64));
        s.insert(below(s.size() + 1), piece);
        break;
      }
      case 7: {  // insert random bytes
        std::string piece(1 + below(16), '\0');
        for (char& c : piece) c = static_cast<char>(below(256));
        s.insert(below(s.size() + 1), piece);
        break;
      }
      case 8: {  // edit a decimal number (JSON shapes, offsets, sizes)
        std::vector<size_t> digits;
        for (size_t k = 0; k < s.size(); ++k)
          if (s[k] >= '0' && s[k] <= '9') digits.push_back(k);
        if (digits.empty()) break;
        size_t at = digits[below(digits.size())];
        static const char* kNumbers[] = {"0", "-1", "99999999999", "1e308", "2147483648",
                                         "18446744073709551616", "0.5", "-0"};
        if (below(2) == 0)
          s[at] = static_cast<char>('0' + below(10));
        else
          s.replace(at, 1, kNumbers[below(sizeof kNumbers / sizeof kNumbers[0])]);
        break;
      }
      default: {  // splice with another seed
        const std::string& other = pool[below(pool.size())];
        size_t cut = below(s.size() + 1);
        size_t from = below(other.size() + 1);
        s = s.substr(0, cut) + other.substr(from);
        break;
      }
    }
  }

  std::mt19937_64 rng_;
};

}  // namespace graft::fuzz
