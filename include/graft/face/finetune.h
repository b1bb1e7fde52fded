#pragma once
/// Fine-tuning the face embedder's last stage (FaceEmbedderImpl::
/// forward_last_stage: dlib's last residual level and the fc to 128-d) on
/// aligned chips of known identities, with ArcFace, CosFace or a batch-hard
/// triplet loss (margin_loss.h). Everything before it stays frozen and
/// bitwise unchanged. Without augmentation the frozen trunk's output is
/// computed once per chip and cached; with it, each step runs the trunk on
/// the augmented views under NoGradGuard.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/torch.h>

#include "graft/face/augment.h"
#include "graft/face/nets.h"
#include "graft/train/loop.h"

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

/// The fine-tune as the one training loop drives it (train/loop.h). The
/// module holds the embedder (only its last stage trainable) and, for the
/// margin losses, the class-centre matrix as the parameter "centres". One
/// step is one batch of `batch_size` chips (the epoch's order is seeded by
/// mix_seed(seed, 0x5eed, epoch), so a resumed epoch sees the same one); data
/// parallel, each rank takes a contiguous share of the batch (a triplet
/// batch's identity groups stay together) and weights its loss by its share.
/// The schedule's clock is the epoch; there is no validation (every epoch's
/// model is kept). Metrics: the loss per chip and, for arcface and cosface,
/// the accuracy of the margin logits' argmax (the margin applied, so below
/// the plain accuracy); triplet has no classifier and counts none correct.
class FaceFinetuneTask final : public LoopTask {
 public:
  /// `chips` aligned 150x150 8-bit chips, `labels` in 0..classes-1,
  /// `centres` [classes, 128] the margin losses' starting centres (ignored by
  /// triplet). Checks the options and data (graft::Error naming them) and
  /// makes the last stage trainable; the caller freezes it again after.
  FaceFinetuneTask(FaceEmbedder net, const std::vector<cv::Mat>& chips, const std::vector<int64_t>& labels,
                   int64_t classes, const torch::Tensor& centres, const FaceFinetuneOptions& options,
                   std::shared_ptr<dist::Group> group);
  torch::nn::Module& module() override { return *holder_; }
  std::vector<ParamGroup> param_groups() override;
  int64_t steps_per_epoch() override;
  int64_t items_per_epoch() override;
  const char* unit() const override { return "chips/s"; }
  bool schedule_per_epoch() const override { return true; }
  void begin_epoch(int64_t epoch, int64_t first_step) override;
  StepStats step(int64_t epoch, int64_t step_in_epoch) override;
  bool has_validation() override { return false; }
  Metrics validate() override { return {}; }
  bool keep_every_epoch() const override { return true; }
  /// The face row saves the embedder once the loop is done.
  void save_model() override {}

 private:
  torch::Tensor trunk_of(const std::vector<int64_t>& idx, int64_t epoch);

  FaceEmbedder net_;
  std::vector<cv::Mat> chips_;
  torch::Tensor labels_;
  std::vector<int64_t> label_list_;
  int64_t classes_ = 0;
  FaceFinetuneOptions o_;
  std::shared_ptr<dist::Group> group_;
  int rank_ = 0, world_ = 1;
  std::shared_ptr<torch::nn::Module> holder_;
  torch::Tensor centres_, cached_;
  std::vector<int64_t> order_;
};

/// The settings run_loop takes for a fine-tune: epochs, lr, SGD with
/// momentum and weight decay as `f` says, a cosine schedule without warmup,
/// no clipping or early stopping; how to run (out, resume, seed, quiet,
/// time_budget, stop_after_epoch, should_stop, group) from `run`.
TrainOptions finetune_loop_options(const TrainOptions& run, const FaceFinetuneOptions& f);

/// Fine-tunes `net`'s last stage in place through run_loop(loop, task) (the
/// caller prepared loop.out; the loop writes metrics.csv, checkpoint/ and
/// report.html there, and with loop.resume goes on from its checkpoint).
/// Leaves every parameter with requires_grad false. Throws graft::Error on a
/// bad option (naming it), a label out of range, or a loss that is not finite.
TrainSummary finetune_face_embedder(FaceEmbedder& net, const std::vector<cv::Mat>& chips,
                                    const std::vector<int64_t>& labels, int64_t classes,
                                    const torch::Tensor& centres, const FaceFinetuneOptions& options,
                                    const TrainOptions& loop);

}  // namespace graft
