#pragma once
/// Batches of decoded, transformed images, made on background threads with
/// prefetch. Order and augmentation depend only on (seed, epoch, sample), not
/// on thread scheduling, so a resumed run sees the same batches.

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <torch/types.h>

#include "graft/data/image_set.h"
#include "graft/data/transforms.h"

namespace graft {

struct Batch {
  torch::Tensor images;           // [B, C, H, W] float32
  torch::Tensor labels;           // [B] int64
  std::vector<size_t> positions;  // positions in the ImageSet
};

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = false;
  bool drop_last = false;
  Augment augment = Augment::None;
  uint64_t seed = 0;
  int64_t epoch = 0;
  /// Decoding threads; 0 decodes on the calling thread.
  int workers = 2;
  /// Batches decoded ahead of the consumer.
  int prefetch = 4;
  /// A sample that fails to decode is an error instead of a counted skip.
  bool strict = false;
};

class Loader {
 public:
  Loader(ImageSet set, InputSpec spec, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// The next batch in order, or nullopt at the end of the epoch. Samples that
  /// failed to decode are left out (counted by skipped(), with a warning the
  /// first time), or throw graft::Error naming the file when strict.
  std::optional<Batch> next();
  int64_t num_batches() const;
  int64_t skipped() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace graft
