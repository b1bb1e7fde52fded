#pragma once
/// Batches of decoded, transformed images, made on background threads with
/// prefetch. Order and augmentation depend only on (seed, epoch, sample), not
/// on thread scheduling, so a resumed run sees the same batches: the order is
/// epoch_order(size, seed, epoch, shuffle) (order.h), and sample p of the set
/// is augmented with std::mt19937_64(mix_seed(seed, epoch, p + 1)), whatever
/// its batch, the batch size or the number of workers.

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <torch/types.h>

#include "graft/data/image_set.h"
#include "graft/data/transforms.h"

namespace graft {

struct Batch {
  torch::Tensor images;           // [B, C, H, W] float32; with a tta: [B, V, C, H, W]
  torch::Tensor labels;           // [B] int64
  std::vector<size_t> positions;  // positions in the ImageSet
};

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = false;
  bool drop_last = false;
  Augment augment = Augment::None;
  /// Test-time augmentation: each sample becomes its eval_views (augment
  /// must be None), and a batch's images [B, V, C, H, W].
  Tta tta = Tta::None;
  uint64_t seed = 0;
  int64_t epoch = 0;
  /// Decoding threads; 0 decodes on the calling thread. At most `prefetch`
  /// are started (more would only wait).
  int workers = 2;
  /// Batches decoded ahead of the consumer (at least 1).
  int prefetch = 4;
  /// A sample that fails to decode is an error instead of a counted skip.
  bool strict = false;
  /// Batches of the epoch to leave out at the start (resuming mid-epoch);
  /// the batches that follow are the same as in a full epoch.
  int64_t start_batch = 0;
  /// When not empty, the epoch's order itself (positions in the set, repeats
  /// allowed), used instead of epoch_order: a distributed rank's shard
  /// (dist/sampler.h). Augmentation still depends only on (seed, epoch,
  /// position).
  std::vector<size_t> order;
};

class Loader {
 public:
  /// Starts the workers. Throws graft::Error on a batch size below 1 or
  /// negative workers or epoch.
  Loader(ImageSet set, InputSpec spec, LoaderOptions options);
  /// Stops the workers (each finishes at most the sample it is decoding) and
  /// joins them; safe at any point of the epoch.
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// The next batch in order, or nullopt at the end of the epoch. Samples that
  /// failed to decode are left out (counted by skipped(), with a warning the
  /// first time), or throw graft::Error naming the file when strict.
  std::optional<Batch> next();
  /// Batches in the epoch, counting any that turn out to fail entirely.
  int64_t num_batches() const;
  /// Samples left out so far because they failed to decode.
  int64_t skipped() const;
  /// skipped() by class label (one entry per class of the set).
  std::vector<int64_t> skipped_per_class() const;
  /// The samples left out so far, and why (path, label, reason).
  const std::vector<UnreadableImage>& failures() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace graft
