// The in-memory feature cache is bounded in bytes, least recently used out
// first (eval/infer.h, --cache-mb): sets of known sizes stored with no disk
// cache, then looked up.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "graft/core/error.h"
#include "graft/eval/infer.h"

namespace graft {
namespace {

// A set of n file samples named after `tag`, and features of d floats each.
ImageSet named_set(const std::string& tag, int64_t n) {
  ImageSet s;
  s.root = tag;
  s.classes = {"a", "b"};
  for (int64_t i = 0; i < n; ++i) s.samples.push_back({tag + "/" + std::to_string(i) + ".png", -1, int(i % 2)});
  return s;
}
Outputs features_of(int64_t n, int64_t d, float fill) {
  Outputs o;
  o.values = torch::full({n, d}, fill);
  o.labels = torch::arange(n, torch::kInt64) % 2;
  for (int64_t i = 0; i < n; ++i) o.positions.push_back(static_cast<size_t>(i));
  return o;
}

class FeatureCacheLimit : public ::testing::Test {
 protected:
  void TearDown() override { set_feature_cache_limit_mb(kDefaultFeatureCacheMb); }
};

TEST_F(FeatureCacheLimit, LeastRecentlyUsedLeavesFirst) {
  set_feature_cache_limit_mb(0);  // empties it
  EXPECT_EQ(feature_cache_usage(), std::make_pair(int64_t{0}, int64_t{0}));
  set_feature_cache_limit_mb(1);  // 1 MiB = 1,048,576 bytes
  InputSpec spec;
  // Each set: 1024 x 100 floats (409,600 bytes) + labels (8,192) + positions (8,192) = 425,984 bytes.
  const int64_t each = 1024 * 100 * 4 + 1024 * 8 + 1024 * 8;
  const ImageSet a = named_set("a", 1024), b = named_set("b", 1024), c = named_set("c", 1024);
  store_cached_features("m", a, spec, "", features_of(1024, 100, 1));
  store_cached_features("m", b, spec, "", features_of(1024, 100, 2));
  EXPECT_EQ(feature_cache_usage(), std::make_pair(int64_t{2}, 2 * each));
  // a is used, so b is now the least recently used; c pushes it out.
  ASSERT_TRUE(find_cached_features("m", a, spec, "").has_value());
  store_cached_features("m", c, spec, "", features_of(1024, 100, 3));
  EXPECT_EQ(feature_cache_usage(), std::make_pair(int64_t{2}, 2 * each));
  EXPECT_FALSE(find_cached_features("m", b, spec, "").has_value());
  auto hit = find_cached_features("m", a, spec, "");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->values[0][0].item<float>(), 1.0f);
  EXPECT_EQ(find_cached_features("m", c, spec, "")->values[5][7].item<float>(), 3.0f);
  // Another model's features of the same set are another entry.
  EXPECT_FALSE(find_cached_features("other", a, spec, "").has_value());
  // A set larger than the whole bound is not kept in memory at all.
  store_cached_features("m", named_set("big", 4096), spec, "", features_of(4096, 100, 4));
  EXPECT_FALSE(find_cached_features("m", named_set("big", 4096), spec, "").has_value());
  EXPECT_EQ(feature_cache_usage().first, 2);
  // Lowering the bound drops the oldest until it fits.
  set_feature_cache_limit_mb(0);
  EXPECT_EQ(feature_cache_usage(), std::make_pair(int64_t{0}, int64_t{0}));
  EXPECT_THROW(set_feature_cache_limit_mb(-1), UsageError);
}

}  // namespace
}  // namespace graft
