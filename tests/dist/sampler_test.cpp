// The distributed sampler: disjoint, equal shards that together make the
// batches of one process.

#include "graft/dist/sampler.h"

#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "graft/data/order.h"
#include "test_util.h"

namespace graft {
namespace {

TEST(DistSampler, ShardsAreDisjointEqualAndPaddedLikeTorch) {
  // 10 samples over 4 ranks: padded to 12 with the first two of the order,
  // as torch.utils.data.DistributedSampler(drop_last=False) does.
  auto order = epoch_order(10, 7, 3, true);
  std::vector<size_t> seen;
  for (int r = 0; r < 4; ++r) {
    auto shard = dist::shard_order(order, r, 4);
    ASSERT_EQ(shard.size(), 3u);
    for (size_t i = 0; i < shard.size(); ++i) EXPECT_EQ(shard[i], order[(r + 4 * i) % 10]);
    seen.insert(seen.end(), shard.begin(), shard.end());
  }
  std::multiset<size_t> counts(seen.begin(), seen.end());
  for (size_t p = 0; p < 10; ++p) {
    bool padded = p == order[0] || p == order[1];
    EXPECT_EQ(counts.count(p), padded ? 2u : 1u) << p;
  }
  // Without padding every sample is in exactly one shard.
  std::vector<size_t> all;
  for (int r = 0; r < 4; ++r) {
    auto shard = dist::shard_order(order, r, 4, /*pad=*/false);
    all.insert(all.end(), shard.begin(), shard.end());
  }
  std::sort(all.begin(), all.end());
  for (size_t p = 0; p < 10; ++p) EXPECT_EQ(all[p], p);
  EXPECT_NE(test::error_of([&] { dist::shard_order(order, 4, 4); }).find("rank 4"),
            std::string::npos);
}

TEST(DistSampler, StepsOfAllRanksCoverTheBatchOfOneProcess) {
  // Global batch 6 = 3 ranks x 2: step s of the ranks together is step s of
  // one process with batch 6, in every epoch (each reshuffled from the seed).
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    auto order = epoch_order(24, 11, epoch, true);
    for (int step = 0; step < 4; ++step) {
      std::multiset<size_t> ranks, one(order.begin() + step * 6, order.begin() + step * 6 + 6);
      for (int r = 0; r < 3; ++r) {
        auto shard = dist::shard_order(order, r, 3);
        ranks.insert(shard.begin() + step * 2, shard.begin() + step * 2 + 2);
      }
      EXPECT_EQ(ranks, one) << "epoch " << epoch << " step " << step;
    }
    if (epoch > 0) EXPECT_NE(order, epoch_order(24, 11, epoch - 1, true));
  }
}

}  // namespace
}  // namespace graft
