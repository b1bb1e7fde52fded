#pragma once
/// The order in which an epoch visits samples: identity, or a permutation
/// that depends only on (seed, epoch). The image loader and the feature-cache
/// path share it, so both see the same batches.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace graft {

/// Fisher-Yates with a std::mt19937_64 seeded by mix_seed(seed, epoch),
/// drawing by rejection sampling (not std::uniform_int_distribution), so the
/// order is the same with every standard library.
std::vector<size_t> epoch_order(size_t n, uint64_t seed, int64_t epoch, bool shuffle);

}  // namespace graft
