#pragma once
/// The losses that fine-tune the face embedder (graft train --task face
/// --finetune ...). Each takes raw embeddings [N, D] and L2-normalises them
/// itself; the margin losses also normalise the rows of the class-centre
/// matrix W [C, D], so that W x is the cosine of each embedding with each
/// centre. Checked against PyTorch on the same inputs (values and gradients):
/// tests/face/margin_loss_test.cpp with tests/reference/face_loss_fixtures.py.

#include <string>

#include <torch/torch.h>

namespace graft {

/// ArcFace (Deng et al. 2019, insightface's formula): the target logit is
/// s cos(theta + m), where theta + m would pass pi (cos theta < cos(pi - m))
/// it is s (cos theta - m sin(pi - m)) instead, so that the logit keeps
/// falling with theta; other logits s cos theta. Returns the logits [N, C].
torch::Tensor arcface_logits(const torch::Tensor& embeddings, const torch::Tensor& centres,
                             const torch::Tensor& labels, double scale, double margin);

/// CosFace / AM-softmax (Wang et al. 2018): target logit s (cos theta - m),
/// others s cos theta. Returns the logits [N, C].
torch::Tensor cosface_logits(const torch::Tensor& embeddings, const torch::Tensor& centres,
                             const torch::Tensor& labels, double scale, double margin);

/// Mean cross-entropy of arcface_logits or cosface_logits (`kind` "arcface"
/// or "cosface"; anything else throws graft::Error).
torch::Tensor margin_softmax_loss(const std::string& kind, const torch::Tensor& embeddings,
                                  const torch::Tensor& centres, const torch::Tensor& labels, double scale,
                                  double margin);

/// Batch-hard triplet loss (Hermans et al. 2017) on L2-normalised embeddings:
/// for each anchor with at least one positive and one negative in the batch,
/// max(0, d(a, hardest positive) - d(a, hardest negative) + margin) with d the
/// Euclidean distance; the mean over those anchors (0 when there are none).
torch::Tensor batch_hard_triplet_loss(const torch::Tensor& embeddings, const torch::Tensor& labels,
                                      double margin);

}  // namespace graft
