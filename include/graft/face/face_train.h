#pragma once
/// The face task's target model (`graft train --task face`): a classifier on
/// the pretrained embedder's L2-normalised embeddings, one class per identity
/// folder: nearest centroid (the mean embedding of each identity, re-
/// normalised) or a linear softmax head trained full-batch on the cached
/// embeddings. With --finetune arcface|cosface|triplet the embedder's last
/// stage is first fine-tuned on the training identities (finetune.h), saved
/// in the run as embedder.safetensors (its sha256 in face_model.json), and the
/// head is then trained on the fine-tuned embeddings; every face verb takes
/// the run with --embedder RUN.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "graft/face/finetune.h"
#include "graft/face/pipeline.h"

namespace graft {

/// Fine-tuning defaults. The margins are insightface's (ArcFace m = 0.5 rad,
/// CosFace m = 0.35) and FaceNet-like for the triplet loss on unit vectors;
/// the scale is insightface's 64 for both (kMarginScale's note in
/// face_train.cpp says why not a smaller one).
inline constexpr double kArcFaceMargin = 0.5;
inline constexpr double kCosFaceMargin = 0.35;
inline constexpr double kTripletMargin = 0.2;
extern const double kMarginScale;

struct FaceTrainOptions {
  std::string data;             // folder of identity folders
  std::string test;             // optional: evaluated once at the end
  std::string out;              // run directory
  std::string head = "centroid";  // centroid | linear
  int64_t epochs = 200;         // linear: full-batch steps
  double lr = 0.5;              // linear: SGD learning rate
  double weight_decay = 1e-4;   // linear
  uint64_t seed = 0;              // linear head's initialisation; fine-tuning
  bool overwrite = false;
  /// none (the embedder stays frozen), arcface, cosface or triplet.
  std::string finetune = "none";
  /// Fine-tuning settings; a negative value (an empty augment) means the
  /// loss's default (resolve_finetune_options). Each is refused with
  /// --finetune none.
  int64_t finetune_epochs = -1;  // 10
  double finetune_lr = -1;       // 0.001
  double margin = -1;            // arcface 0.5, cosface 0.35, triplet 0.2
  double scale = -1;             // arcface and cosface: 64 (triplet has none)
  int64_t batch_size = -1;       // 32
  std::string augment;           // face (flip, rotation, scale, brightness) or none; default face
  bool quiet = false;            // no per-epoch lines
  FaceOptions face;             // detector, models folder
};

struct FaceTrainSummary {
  std::string out;
  std::vector<std::string> classes;
  int64_t train_images = 0, test_images = 0, skipped = 0;
  double train_accuracy = 0;
  bool has_test = false;
  double test_accuracy = 0;
  std::vector<double> finetune_epoch_seconds, finetune_epoch_loss;  // empty without --finetune
};

/// A trained face classifier (what train_face writes and load_face_classifier reads).
struct FaceClassifier {
  std::string head;
  std::vector<std::string> classes;
  torch::Tensor weight, bias;  // centroid: weight = centroids [C, 128], bias empty
  /// Class scores [N, C] of L2-normalised embeddings [N, 128]: for centroids
  /// the negative Euclidean distance, for the linear head its logits.
  torch::Tensor scores(const torch::Tensor& embeddings) const;
};

/// Checks the fine-tuning flags of `o` against --finetune and fills the
/// defaults; throws graft::UsageError naming the option, its value and what
/// was expected. Returns the settings for finetune_face_embedder.
FaceFinetuneOptions resolve_finetune_options(const FaceTrainOptions& o);

/// Trains on `data` and writes `out`: face_model.json (head, classes,
/// embedder and weights sha256, face options), head.safetensors and, with a
/// test folder, test_metrics.json. Throws graft::Error on a missing folder,
/// an existing --out without overwrite, fewer than 2 identities, or a test
/// identity unknown to training.
FaceTrainSummary train_face(const FaceTrainOptions& options);

/// Reads a run written by train_face; throws graft::Error naming what is wrong.
FaceClassifier load_face_classifier(const std::string& run);

/// The face options a run was trained with (--no-detect, --detector) and its
/// embedder (FaceOptions::embedder_run = run): what `graft eval` and
/// `graft predict` use on it, so that they see the crops training saw.
/// `models_dir` is where face-api's models are ("" = the default).
FaceOptions face_run_options(const std::string& run, const std::string& models_dir = "");

/// The run's accuracy on `data`, a folder of identity folders whose names must
/// all be classes of the run: {"accuracy", "images", "skipped": ["PATH:
/// reason", ...]}. Throws graft::Error naming an unknown identity.
nlohmann::ordered_json evaluate_face_run(const std::string& run, const std::string& data);

}  // namespace graft
