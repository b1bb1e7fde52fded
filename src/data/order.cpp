#include "graft/data/order.h"

#include <numeric>
#include <random>

#include "graft/core/runtime.h"

namespace graft {

std::vector<size_t> epoch_order(size_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  if (!shuffle || n < 2) return order;
  std::mt19937_64 rng(mix_seed(seed, static_cast<uint64_t>(epoch)));
  for (size_t i = n - 1; i > 0; --i) {
    // Rejection sampling keeps every index equally likely.
    uint64_t bound = i + 1, limit = UINT64_MAX - UINT64_MAX % bound, r;
    do r = rng(); while (r >= limit);
    std::swap(order[i], order[r % bound]);
  }
  return order;
}

}  // namespace graft
