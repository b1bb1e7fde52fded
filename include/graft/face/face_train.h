#pragma once
/// The face task's target model (`graft train --task face`): a classifier on
/// the pretrained embedder's L2-normalised embeddings, one class per identity
/// folder: nearest centroid (the mean embedding of each identity, re-
/// normalised) or a linear softmax head trained full-batch on the cached
/// embeddings. The embedder itself stays frozen (margin-loss fine-tuning of
/// its last stage is not implemented yet).

#include <string>
#include <vector>

#include <torch/torch.h>

#include "graft/face/pipeline.h"

namespace graft {

struct FaceTrainOptions {
  std::string data;             // folder of identity folders
  std::string test;             // optional: evaluated once at the end
  std::string out;              // run directory
  std::string head = "centroid";  // centroid | linear
  int64_t epochs = 200;         // linear: full-batch steps
  double lr = 0.5;              // linear: SGD learning rate
  double weight_decay = 1e-4;   // linear
  uint64_t seed = 0;
  bool overwrite = false;
  FaceOptions face;             // detector, models folder
};

struct FaceTrainSummary {
  std::string out;
  std::vector<std::string> classes;
  int64_t train_images = 0, test_images = 0, skipped = 0;
  double train_accuracy = 0;
  bool has_test = false;
  double test_accuracy = 0;
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

/// Trains on `data` and writes `out`: face_model.json (head, classes,
/// embedder and weights sha256, face options), head.safetensors and, with a
/// test folder, test_metrics.json. Throws graft::Error on a missing folder,
/// an existing --out without overwrite, fewer than 2 identities, or a test
/// identity unknown to training.
FaceTrainSummary train_face(const FaceTrainOptions& options);

/// Reads a run written by train_face; throws graft::Error naming what is wrong.
FaceClassifier load_face_classifier(const std::string& run);

}  // namespace graft
