#include "graft/dist/sampler.h"

#include "graft/core/error.h"

namespace graft::dist {

std::vector<size_t> shard_order(const std::vector<size_t>& order, int rank, int world, bool pad) {
  GRAFT_CHECK(world >= 1 && rank >= 0 && rank < world, "shard_order: rank ", rank,
              " of world size ", world, " (expected 0 <= rank < world size)");
  const size_t n = order.size(), w = static_cast<size_t>(world);
  const size_t total = pad ? (n + w - 1) / w * w : n;
  std::vector<size_t> shard;
  shard.reserve(total / w + 1);
  // Padding repeats the order from its start (n may be smaller than world).
  for (size_t i = static_cast<size_t>(rank); i < total && n > 0; i += w) shard.push_back(order[i % n]);
  return shard;
}

}  // namespace graft::dist
