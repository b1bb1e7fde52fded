#include <chrono>
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "graft/core/error.h"
#include "graft/core/progress.h"
#include "graft/data/loader.h"
#include "test_util.h"

namespace graft {
namespace {

InputSpec small_spec() {
  InputSpec spec;
  spec.size = 16;
  spec.resize = 20;
  return spec;
}

std::vector<Batch> all_batches(const ImageSet& set, const LoaderOptions& o) {
  Loader loader(set, small_spec(), o);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  EXPECT_FALSE(loader.next().has_value());  // stays at the end
  return out;
}

std::vector<size_t> order_of(const std::vector<Batch>& batches) {
  std::vector<size_t> o;
  for (const Batch& b : batches) o.insert(o.end(), b.positions.begin(), b.positions.end());
  return o;
}

/// Shuffled batches of 4 of epoch `epoch`, augmented with `augment` from `seed`.
LoaderOptions shuffled_fours(Augment augment, uint64_t seed, int64_t epoch) {
  LoaderOptions o;
  o.batch_size = 4;
  o.shuffle = true;
  o.augment = augment;
  o.seed = seed;
  o.epoch = epoch;
  return o;
}

/// A file that passes the PNG signature check but does not decode.
void write_broken_png(const std::string& path) {
  std::ofstream(path, std::ios::binary) << std::string("\x89PNG\r\n\x1a\n", 8)
                                        << "garbage, not chunks";
}

class DataLoader : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_synthetic_image_folder(dir_.path(), 3, 7, 24);
    set_ = open_image_set(dir_.path());
  }
  test::TempDir dir_;
  ImageSet set_;
};

TEST_F(DataLoader, SameBatchesWithAnyNumberOfWorkers) {
  LoaderOptions o = shuffled_fours(Augment::Strong, 11, 3);
  o.workers = 0;
  auto inline_batches = all_batches(set_, o);
  o.workers = 2;
  o.prefetch = 2;
  auto threaded = all_batches(set_, o);
  o.workers = 3;
  o.prefetch = 1;
  auto threaded3 = all_batches(set_, o);
  ASSERT_EQ(inline_batches.size(), 6u);  // 21 samples in batches of 4
  ASSERT_EQ(threaded.size(), inline_batches.size());
  ASSERT_EQ(threaded3.size(), inline_batches.size());
  for (size_t k = 0; k < inline_batches.size(); ++k) {
    const Batch& a = inline_batches[k];
    for (const Batch* b : {&threaded[k], &threaded3[k]}) {
      EXPECT_EQ(a.positions, b->positions);
      EXPECT_TRUE(torch::equal(a.labels, b->labels));
      EXPECT_TRUE(torch::equal(a.images, b->images)) << "batch " << k;
    }
    EXPECT_EQ(a.images.sizes()[1], 3);
    EXPECT_EQ(a.images.sizes()[2], 16);
    EXPECT_EQ(a.labels.scalar_type(), torch::kInt64);
    for (size_t i = 0; i < a.positions.size(); ++i) {
      EXPECT_EQ(a.labels[i].item<int64_t>(), set_.samples[a.positions[i]].label);
    }
  }
  EXPECT_EQ(inline_batches.back().images.size(0), 1);
}

TEST_F(DataLoader, AugmentationDependsOnSampleNotOnBatching) {
  LoaderOptions o;
  o.augment = Augment::Light;
  o.seed = 5;
  o.workers = 0;
  o.batch_size = 4;
  auto a = all_batches(set_, o);
  o.batch_size = 7;
  o.shuffle = true;
  auto b = all_batches(set_, o);
  std::map<size_t, torch::Tensor> by_pos;
  for (const Batch& x : a) {
    for (size_t i = 0; i < x.positions.size(); ++i) by_pos[x.positions[i]] = x.images[i];
  }
  for (const Batch& x : b) {
    for (size_t i = 0; i < x.positions.size(); ++i) {
      EXPECT_TRUE(torch::equal(by_pos.at(x.positions[i]), x.images[i])) << x.positions[i];
    }
  }
  // Another epoch augments differently.
  o.epoch = 1;
  auto c = all_batches(set_, o);
  EXPECT_FALSE(torch::equal(by_pos.at(c[0].positions[0]), c[0].images[0]));
}

TEST_F(DataLoader, EpochOrders) {
  LoaderOptions o;
  o.batch_size = 5;
  o.workers = 1;
  auto identity = order_of(all_batches(set_, o));
  std::vector<size_t> expect(set_.size());
  for (size_t i = 0; i < expect.size(); ++i) expect[i] = i;
  EXPECT_EQ(identity, expect);

  o.shuffle = true;
  auto e0 = order_of(all_batches(set_, o));
  auto e0again = order_of(all_batches(set_, o));
  o.epoch = 1;
  auto e1 = order_of(all_batches(set_, o));
  EXPECT_EQ(e0, e0again);
  EXPECT_NE(e0, e1);
  EXPECT_NE(e0, identity);
  EXPECT_EQ(std::set<size_t>(e1.begin(), e1.end()).size(), set_.size());

  o.drop_last = true;
  Loader loader(set_, small_spec(), o);
  EXPECT_EQ(loader.num_batches(), 4);
  int64_t n = 0;
  while (auto b = loader.next()) {
    EXPECT_EQ(b->images.size(0), 5);
    ++n;
  }
  EXPECT_EQ(n, 4);
}

TEST_F(DataLoader, CorruptFileIsSkippedOrStrictError) {
  const std::string bad = dir_ / "class1/img99.png";
  write_broken_png(bad);
  ImageSet set = open_image_set(dir_.path());
  ASSERT_EQ(set.size(), 22u);  // the signature passes: only decoding finds it
  for (int workers : {0, 2}) {
    LoaderOptions o;
    o.batch_size = 4;
    o.workers = workers;
    Loader loader(set, small_spec(), o);
    int64_t seen = 0;
    while (auto b = loader.next()) {
      seen += b->images.size(0);
      EXPECT_EQ(b->labels.size(0), b->images.size(0));
      EXPECT_EQ(int64_t(b->positions.size()), b->images.size(0));
      for (size_t p : b->positions) EXPECT_NE(set.samples[p].path, bad);
    }
    EXPECT_EQ(seen, 21);
    EXPECT_EQ(loader.skipped(), 1);

    o.strict = true;
    Loader strict(set, small_spec(), o);
    try {
      while (strict.next()) {
      }
      FAIL() << "strict loader did not throw";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST_F(DataLoader, BatchOfFailuresIsSkipped) {
  write_broken_png(dir_ / "class0/img90.png");
  write_broken_png(dir_ / "class0/img91.png");
  ImageSet set = open_image_set(dir_.path());
  // Positions 7 and 8 hold the broken files (sorted after img6.png).
  ASSERT_EQ(set.samples[7].path, dir_ / "class0/img90.png");
  ImageSet part = set.subset({0, 9, 7, 8, 10});
  LoaderOptions o;
  o.batch_size = 2;
  o.workers = 2;
  Loader loader(part, small_spec(), o);
  auto b0 = loader.next();
  ASSERT_TRUE(b0);
  EXPECT_EQ(b0->positions, (std::vector<size_t>{0, 1}));
  auto b1 = loader.next();  // the batch {2, 3} failed entirely: the next one comes
  ASSERT_TRUE(b1);
  EXPECT_EQ(b1->positions, std::vector<size_t>{4});
  EXPECT_FALSE(loader.next());
  EXPECT_EQ(loader.skipped(), 2);
}

TEST_F(DataLoader, DestroyMidEpochIsPrompt) {
  test::TempDir big;
  test::write_synthetic_image_folder(big.path(), 2, 40, 64);
  ImageSet set = open_image_set(big.path());
  LoaderOptions o;
  o.batch_size = 2;
  o.workers = 3;
  o.prefetch = 3;
  o.augment = Augment::Strong;
  auto t0 = std::chrono::steady_clock::now();
  for (int consumed : {0, 1, 5}) {
    Loader loader(set, small_spec(), o);
    for (int i = 0; i < consumed; ++i) ASSERT_TRUE(loader.next());
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 2.0);
}

TEST_F(DataLoader, EmptySetAndBadOptions) {
  LoaderOptions o;
  Loader empty(set_.subset({}), small_spec(), o);
  EXPECT_EQ(empty.num_batches(), 0);
  EXPECT_FALSE(empty.next());
  o.batch_size = 0;
  EXPECT_THROW(Loader(set_, small_spec(), o), Error);
}

}  // namespace
}  // namespace graft

namespace graft {
namespace {

// Resuming mid-epoch: the batches after start_batch are those of a full epoch.
TEST_F(DataLoader, StartBatchLeavesOutTheFirstBatchesOnly) {
  LoaderOptions o = shuffled_fours(Augment::Light, 5, 2);
  auto full = all_batches(set_, o);
  o.start_batch = 2;
  auto rest = all_batches(set_, o);
  ASSERT_EQ(rest.size() + 2, full.size());
  for (size_t k = 0; k < rest.size(); ++k) {
    EXPECT_EQ(rest[k].positions, full[k + 2].positions);
    EXPECT_TRUE(torch::equal(rest[k].images, full[k + 2].images)) << k;
  }
  o.start_batch = 100;
  EXPECT_TRUE(all_batches(set_, o).empty());
}

}  // namespace
}  // namespace graft
