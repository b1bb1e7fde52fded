#pragma once
/// The distributed sampler: which samples of an epoch a rank reads. As
/// torch.utils.data.DistributedSampler: the epoch's order (epoch_order, the
/// same on every rank, reshuffled each epoch from the seed) is padded to a
/// multiple of the world size by repeating its start, and rank r takes every
/// world-th sample from r. The shards are disjoint (but for the padding) and
/// equal in length, so every rank runs the same number of steps; with a local
/// batch of b, step s of all ranks together covers order[s*b*W, (s+1)*b*W),
/// the same samples as step s of one process with batch b*W.

#include <cstddef>
#include <vector>

namespace graft::dist {

/// Rank `rank`'s shard of `order` (0 <= rank < world). With pad = false the
/// order is not padded: shards differ in length by at most one (inference,
/// where every sample must be seen exactly once).
std::vector<size_t> shard_order(const std::vector<size_t>& order, int rank, int world,
                                bool pad = true);

}  // namespace graft::dist
