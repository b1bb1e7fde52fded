#pragma once
/// The face task's target model (`graft train --task face`): a classifier on
/// the pretrained embedder's L2-normalised embeddings (--embedder: face-api's
/// dlib-style net, 128-d, the default, or MobileFaceNet, 192-d), one class per identity
/// folder: nearest centroid (the mean embedding of each identity, re-
/// normalised) or a linear softmax head trained full-batch on the cached
/// embeddings (centred on their training mean, folded into its bias). With --finetune arcface|cosface|triplet the embedder's last
/// stage is first fine-tuned on the training identities (finetune.h), saved
/// in the run as embedder.safetensors (its sha256 in face_model.json), and the
/// head is then trained on the fine-tuned embeddings; every face verb takes
/// the run with --embedder RUN. MobileFaceNet is not fine-tuned (face_check
/// refuses --finetune with it).

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "graft/eval/embed.h"
#include "graft/eval/metrics.h"
#include "graft/face/finetune.h"
#include "graft/face/pipeline.h"
#include "graft/train/loop.h"
#include "graft/train/options.h"

namespace graft {

/// Fine-tuning defaults. The margins are insightface's (ArcFace m = 0.5 rad,
/// CosFace m = 0.35) and FaceNet-like for the triplet loss on unit vectors;
/// the scale is insightface's 64 for both (kMarginScale's note in
/// face_train.cpp says why not a smaller one).
inline constexpr double kArcFaceMargin = 0.5;
inline constexpr double kCosFaceMargin = 0.35;
inline constexpr double kTripletMargin = 0.2;
extern const double kMarginScale;

/// A trained face classifier (what train_face writes and load_face_classifier reads).
struct FaceClassifier {
  std::string head;
  std::vector<std::string> classes;
  torch::Tensor weight, bias;  // centroid: weight = centroids [C, D] (D: the embedder's 128 or 192), bias empty
  /// Class scores [N, C] of L2-normalised embeddings [N, D]: for centroids
  /// the negative Euclidean distance, for the linear head its logits.
  torch::Tensor scores(const torch::Tensor& embeddings) const;
};

/// The face row of the task table (train/task.h): head centroid, --epochs
/// 200, --lr 0.5, --weight-decay 1e-4 (the linear head's), fine-tuning off,
/// its settings at their "loss's default" sentinels.
TrainOptions face_defaults(const std::string& backbone);

/// The face task's checks (after the shared ones of validate()): --data,
/// --head, and the fine-tuning flags against --finetune
/// (resolve_finetune_options); graft::UsageError naming the option.
void face_check(const TrainOptions& o);

/// A face run: its folder holds face_model.json.
bool face_owns_run(const std::string& run);
/// The detection and alignment options of `o` (--face-models, --no-detect,
/// --detector, --min-face, --min-confidence, --cascade) for a FacePipeline.
FaceOptions face_pipeline_options(const TrainOptions& o);
/// What train_face embeds with: face_pipeline_options plus the embedder of
/// --embedder (dlib or mobilefacenet, set_face_embedder).
FaceOptions face_train_pipeline_options(const TrainOptions& o);

/// Checks the fine-tuning flags of `o` against --finetune and fills the
/// defaults; throws graft::UsageError naming the option, its value and what
/// was expected. Returns the settings for the fine-tune (finetune.h).
FaceFinetuneOptions resolve_finetune_options(const TrainOptions& o);

/// Trains on o.data and writes o.out: config.json; with --finetune the
/// fine-tune through the one loop (metrics.csv, checkpoint/, --resume,
/// signals, data parallel) and embedder.safetensors; then head.safetensors,
/// with a test folder test_metrics.json, report.html, and face_model.json
/// (head, classes, embedder and weights sha256, face options) last. Throws
/// graft::Error on a missing folder, an existing face model in --out without
/// --overwrite, fewer than 2 identities, or a test identity unknown to
/// training. summary.details: the face fields of graft train's summary line.
TrainSummary train_face(const TrainOptions& o);

/// Reads a run written by train_face; throws graft::Error naming what is wrong.
FaceClassifier load_face_classifier(const std::string& run);

/// The face options a run was trained with (--no-detect, --detector) and its
/// embedder (FaceOptions::embedder_run = run; FacePipeline rebuilds the
/// run's embedder, face-api's or MobileFaceNet, from its face_model.json): what `graft eval` and
/// `graft predict` use on it, so that they see the crops training saw.
/// `models_dir` is where face-api's models are ("" = the default).
/// How graft eval, predict and embed run a face run's embedder: --precision
/// (fp32, bf16 or int8) and, for int8, --calibration faces drawn from
/// --calibration-data ("" = the run's training data, face_model.json's
/// "data").
struct FaceRunUse {
  std::string precision = "fp32";
  int64_t calibration = 256;
  std::string calibration_data;
};
FaceOptions face_run_options(const std::string& run, const std::string& models_dir = "", const FaceRunUse& use = {});

/// The run's accuracy on `data`, a folder of identity folders whose names must
/// all be classes of the run: {"accuracy", "images", "skipped": ["PATH:
/// reason", ...]}. Throws graft::Error naming an unknown identity.
nlohmann::ordered_json evaluate_face_run(const std::string& run, const std::string& data, const FaceRunUse& use = {});

/// The identities of the largest face of each image, found, aligned and
/// embedded as in training, then the run's head: a nearest-centroid head
/// ranks identities by distance (InputPrediction::distances), a linear head
/// by probability. Each result goes to `each` as soon as it is made; an
/// input without a usable face has its error set.
/// graft embed on a face run: the L2-normalised embedding of the largest
/// face of each image of `inputs` (files; folders searched recursively) by
/// the run's embedder (fine-tuned or face-api's), named by file. An image
/// that cannot be read or has no face is skipped with a warning; none left
/// is a graft::Error.
Embeddings embed_face_run(const std::string& run, const std::vector<std::string>& inputs,
                          const FaceRunUse& use = {});

std::vector<InputPrediction> predict_face_run(const std::string& run, const std::vector<std::string>& inputs,
                                              int64_t top_k, const PredictionCallback& each = nullptr,
                                              const FaceRunUse& use = {});

}  // namespace graft
