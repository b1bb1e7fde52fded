#pragma once
/// Fine-tuning the face embedder's last stage (FaceEmbedderImpl::
/// forward_last_stage: dlib's last residual level and the fc to 128-d) on
/// aligned chips of known identities, with ArcFace, CosFace or a batch-hard
/// triplet loss (margin_loss.h). Everything before it stays frozen and
/// bitwise unchanged. Without augmentation the frozen trunk's output is
/// computed once per chip and cached; with it, each step runs the trunk on
/// the augmented views under NoGradGuard.

#include <functional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/torch.h>

#include "graft/face/augment.h"
#include "graft/face/nets.h"

namespace graft {

struct FaceFinetuneOptions {
  /// arcface, cosface or triplet.
  std::string loss = "arcface";
  int64_t epochs = 10;
  /// SGD (momentum 0.9) learning rate at the start; cosine decay to 0 over
  /// the epochs.
  double lr = 0.001;
  double momentum = 0.9;
  /// On the last stage and the class centres (insightface's 5e-4).
  double weight_decay = 5e-4;
  /// Angular (arcface), cosine (cosface) or distance (triplet) margin.
  double margin = 0.5;
  /// Logit scale s of arcface and cosface.
  double scale = 64;
  /// Chips per step. Triplet batches hold whole groups of `per_identity`
  /// chips of one person, so that most anchors have a positive.
  int64_t batch_size = 32;
  int64_t per_identity = 4;
  /// Augment every training view (augment.h), seeded per epoch and chip.
  bool augment = true;
  FaceAugmentOptions augmentation;
  uint64_t seed = 0;
};

struct FaceFinetuneStats {
  std::vector<double> epoch_loss;     // mean loss over the epoch's steps
  std::vector<double> epoch_seconds;  // wall time of each epoch
  int64_t steps = 0;
};

/// Fine-tunes `net`'s last stage in place. `chips` are aligned 150x150 8-bit
/// chips, `labels` their identities in 0..classes-1. `centres` [classes, 128]
/// starts the margin losses' class-centre matrix (e.g. the identities' mean
/// embeddings; ignored by triplet). `on_epoch` (optional) is called after
/// every epoch with its number (1-based) and the stats so far. Leaves every
/// parameter with requires_grad false. Throws graft::Error on a bad option
/// (naming it), a label out of range, or a loss that is not finite.
FaceFinetuneStats finetune_face_embedder(
    FaceEmbedder& net, const std::vector<cv::Mat>& chips, const std::vector<int64_t>& labels,
    int64_t classes, const torch::Tensor& centres, const FaceFinetuneOptions& options,
    const std::function<void(int64_t, const FaceFinetuneStats&)>& on_epoch = {});

}  // namespace graft
