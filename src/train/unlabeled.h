#pragma once
// The image task's second data stream (issue 19): target images without
// labels (--unlabeled), cycled so that every step of an epoch has a batch of
// mu x the labelled batch, whatever the two sets' sizes. Private to
// src/train (image_train.cpp).

#include <cstdint>
#include <optional>
#include <vector>

#include <torch/torch.h>

#include "graft/data/image_set.h"
#include "graft/data/loader.h"
#include "graft/data/transforms.h"
#include "graft/train/options.h"

namespace graft {

struct UnlabeledBatch {
  torch::Tensor weak;    // images [U, C, H, W] (or features [U, D] when cached)
  torch::Tensor strong;  // FixMatch's strong view of the same images (else undefined)
};

class UnlabeledStream {
 public:
  /// Opens o.unlabeled as one folder of images (nested or flat) through the
  /// image readers (files that are no image are counted in one warning);
  /// a folder without a readable image is a graft::UsageError naming
  /// --unlabeled. `augment`: the view of --adapt and --self-train pseudo;
  /// FixMatch's views are light (weak) and strong.
  UnlabeledStream(const TrainOptions& o, const InputSpec& spec, Augment augment, int64_t batch, int rank,
                  int world);
  const ImageSet& set() const { return set_; }
  int64_t batch() const { return batch_; }
  /// A linear probe on cached features: batches are rows of `features`
  /// (the unlabelled set's, in the order of its positions).
  void use_features(torch::Tensor features) { features_ = std::move(features); }
  /// The epoch's order: permutations of the set, one after the other
  /// (seeded by run seed, epoch and cycle), cut to steps x batch x world
  /// items, dealt out by rank; a resumed epoch starts at first_step.
  void begin_epoch(int64_t epoch, int64_t steps, int64_t first_step);
  /// The batch of step s (nullopt: every image of it failed to decode).
  std::optional<UnlabeledBatch> next(int64_t s, const torch::Device& device);
  /// Images of the stream that failed to decode so far.
  int64_t skipped() const;

 private:
  const TrainOptions& o_;
  InputSpec spec_;
  Augment augment_;
  int64_t batch_;
  int rank_, world_;
  bool fixmatch_;
  ImageSet set_;
  torch::Tensor features_;
  std::vector<size_t> order_;
  std::optional<Loader> weak_, strong_;
  int64_t skipped_before_ = 0;
};

}  // namespace graft
