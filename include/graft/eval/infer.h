#pragma once
/// Running a backbone over an image set in evaluation mode: logits or pooled
/// features, batched, with the loader's background decoding.

#include <cstdint>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "graft/data/image_set.h"
#include "graft/data/input_spec.h"
#include "graft/data/transforms.h"
#include "graft/models/backbone.h"
#include "graft/models/fast.h"

namespace graft {

struct InferOptions {
  /// Images per forward pass.
  int64_t batch_size = 64;
  /// Image decoding threads.
  int workers = 2;
  /// Unreadable images are errors instead of being skipped and counted.
  bool strict = false;
  torch::Device device = torch::kCPU;
  /// Label of the progress bar (drawn only when stderr is a terminal).
  std::string label = "infer";
  Precision precision = Precision::kFp32;
  /// --precision int8 (eval/int8_run.h): how many images calibrate the
  /// activation ranges (--calibration), and where they come from
  /// (--calibration-data; "" = the run's training data, config.json's
  /// options.data).
  int64_t calibration = 256;
  std::string calibration_data;
};

struct Outputs {
  torch::Tensor values;            // [N, D] on the CPU ([N, V, D] with a tta)
  torch::Tensor labels;            // [N] int64
  std::vector<size_t> positions;   // positions in the set (skipped ones absent)
  /// The samples that could not be read, and why (empty for features found
  /// in the cache).
  std::vector<UnreadableImage> unreadable;
};

/// Eval-mode forward over `set` with the evaluation transform of `spec`.
/// `features` selects pooled features instead of logits. The model's
/// train/eval mode is restored afterwards. Samples that cannot be read are
/// left out (in `unreadable`); when none can, the error says why
/// ("0 of N images could be read: ...").
/// With a test-time augmentation `tta`, every view of each image
/// (eval_views) goes through the model and `values` is [N, V, D]; a forward
/// pass then holds about options.batch_size views (batch_size / V images, at
/// least one).
Outputs infer(BackboneImpl& model, const ImageSet& set, const InputSpec& spec,
              const InferOptions& options, bool features, Tta tta = Tta::None);

/// Features of `set`, cached in memory for the process and on disk under
/// `cache_dir` (skipped when empty) as safetensors named by a SHA-256 of
/// `model_key` (backbone, weights identity), the input spec and every
/// sample's identity and label.
Outputs cached_features(BackboneImpl& model, const std::string& model_key, const ImageSet& set,
                        const InputSpec& spec, const InferOptions& options,
                        const std::string& cache_dir);

/// The features cached_features would return without computing them: from
/// memory or from `cache_dir`; nullopt when neither holds them.
std::optional<Outputs> find_cached_features(const std::string& model_key, const ImageSet& set,
                                            const InputSpec& spec, const std::string& cache_dir);
/// Keeps features computed elsewhere (e.g. in shards by several processes)
/// where cached_features and find_cached_features look for them.
void store_cached_features(const std::string& model_key, const ImageSet& set,
                           const InputSpec& spec, const std::string& cache_dir, const Outputs& out);

/// The in-memory side of the feature cache holds at most this many MiB
/// (default kDefaultFeatureCacheMb; 0 keeps nothing in memory): the least
/// recently used features go first, and a set larger than the limit is only
/// on disk. Throws graft::UsageError naming --cache-mb for a negative value.
inline constexpr int64_t kDefaultFeatureCacheMb = 1024;
void set_feature_cache_limit_mb(int64_t mb);
/// Entries and bytes held in memory now.
std::pair<int64_t, int64_t> feature_cache_usage();

/// The default on-disk feature cache: $GRAFT_CACHE_DIR/features, else
/// $XDG_CACHE_HOME/graft/features, else ~/.cache/graft/features.
std::string default_cache_dir();

}  // namespace graft
