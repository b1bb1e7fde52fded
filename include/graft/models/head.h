#pragma once
/// The new head that replaces a source classifier: built from its --head
/// spec by training and by every loader of a saved model.

#include <cstdint>
#include <string>

#include <torch/torch.h>

namespace graft {

/// Builds the head: "linear" (a Linear), "mlp:HIDDEN" (Linear, ReLU,
/// Dropout(0.2), Linear as a SequentialHead) or "centroid" (a CentroidHead).
/// Throws graft::UsageError naming --head, the spec seen and the forms
/// expected.
torch::nn::AnyModule make_head(const std::string& spec, int64_t in_features, int64_t classes);

/// The scale of a centroid head's logits: kCentroidScale x cosine. A fixed
/// number, as cosine classifiers use (NormFace, Gidaris & Komodakis 2018
/// learn one near 10-16); the run's temperature (--calibrate) then fits how
/// sharp its probabilities are.
constexpr double kCentroidScale = 16.0;

/// Nearest class mean with cosine similarity (prototype head): "weight"
/// [C, D] holds one row per class, the unit-length mean of the class's
/// L2-normalised features once fitted (a buffer: nothing in it is trained by
/// gradients). Logits are kCentroidScale x cos(x, weight_c).
///
/// Fitting is a pass over the training features: add() sums the
/// L2-normalised features of each class into its row, finish() scales the
/// rows to unit length. Both forward() and the rows are what Python
/// recomputes as F.normalize(x) @ F.normalize(W).T * 16.
class CentroidHeadImpl : public torch::nn::Module {
 public:
  CentroidHeadImpl(int64_t in_features, int64_t classes);
  torch::Tensor forward(torch::Tensor x);
  /// Sums the L2-normalised rows of `features` [N, D] into the rows of their
  /// `labels` [N].
  void add(const torch::Tensor& features, const torch::Tensor& labels);
  /// Every row to unit length (a row with no feature stays zero).
  void finish();
  torch::Tensor weight;
};
TORCH_MODULE(CentroidHead);

/// The unit-length mean of the L2-normalised rows of `features` [N, D]: the
/// row a class of a centroid head gets from its examples.
torch::Tensor class_centroid(const torch::Tensor& features);

/// The CentroidHead inside `head` (a module built by make_head), or null.
CentroidHeadImpl* as_centroid(torch::nn::Module& head);

}  // namespace graft
