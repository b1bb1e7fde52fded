#pragma once
// Random draws for the data pipeline, written out instead of using the
// std:: distributions and std::shuffle, whose algorithms differ between
// standard libraries: a seed gives the same splits and augmentations with
// libstdc++ and libc++.

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace graft::data_random {

/// Uniform in [0, 1) with 53 random bits.
inline double uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

/// Uniform in [a, b).
inline double uniform(std::mt19937_64& rng, double a, double b) {
  return a + (b - a) * uniform01(rng);
}

/// Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; the bias is at
/// most n / 2^64).
inline uint64_t below(std::mt19937_64& rng, uint64_t n) {
  return uint64_t((static_cast<unsigned __int128>(rng()) * n) >> 64);
}

/// Fisher-Yates shuffle.
template <typename T>
void shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    size_t j = size_t(below(rng, i));
    std::swap(v[i - 1], v[j]);
  }
}

/// Stream tags, so that different uses of one seed draw independent numbers.
constexpr uint64_t kTakeStream = 0x74616b65;   // "take"
constexpr uint64_t kSplitStream = 0x73706c74;  // "splt"

}  // namespace graft::data_random
