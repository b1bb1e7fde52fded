#include "graft/face/margin_loss.h"

#include <cmath>

#include "graft/core/error.h"

namespace graft {

namespace {

namespace F = torch::nn::functional;

// Cosines [N, C] of the normalised embeddings with the normalised centres.
torch::Tensor cosines(const torch::Tensor& e, const torch::Tensor& w, const torch::Tensor& labels) {
  GRAFT_CHECK(e.dim() == 2 && w.dim() == 2 && e.size(1) == w.size(1), "margin loss: embeddings ", e.sizes(),
              " and class centres ", w.sizes(), " (expected [N, D] and [C, D])");
  GRAFT_CHECK(labels.dim() == 1 && labels.size(0) == e.size(0), "margin loss: ", labels.sizes(),
              " labels for ", e.size(0), " embeddings");
  const auto en = F::normalize(e, F::NormalizeFuncOptions().dim(1).eps(1e-12));
  const auto wn = F::normalize(w, F::NormalizeFuncOptions().dim(1).eps(1e-12));
  return en.matmul(wn.t());
}

}  // namespace

torch::Tensor arcface_logits(const torch::Tensor& embeddings, const torch::Tensor& centres,
                             const torch::Tensor& labels, double scale, double margin) {
  const auto cos = cosines(embeddings, centres, labels);
  const auto target = cos.gather(1, labels.view({-1, 1}));
  // cos(theta + m) = cos theta cos m - sin theta sin m; the clamp keeps the
  // square root's gradient finite at |cos| = 1.
  const auto sin = (1.0 - target * target).clamp_min(1e-12).sqrt();
  auto with_margin = target * std::cos(margin) - sin * std::sin(margin);
  const double th = std::cos(M_PI - margin), mm = std::sin(M_PI - margin) * margin;
  with_margin = torch::where(target > th, with_margin, target - mm);
  return cos.scatter(1, labels.view({-1, 1}), with_margin) * scale;
}

torch::Tensor cosface_logits(const torch::Tensor& embeddings, const torch::Tensor& centres,
                             const torch::Tensor& labels, double scale, double margin) {
  const auto cos = cosines(embeddings, centres, labels);
  const auto target = cos.gather(1, labels.view({-1, 1}));
  return cos.scatter(1, labels.view({-1, 1}), target - margin) * scale;
}

torch::Tensor margin_softmax_loss(const std::string& kind, const torch::Tensor& embeddings,
                                  const torch::Tensor& centres, const torch::Tensor& labels, double scale,
                                  double margin) {
  GRAFT_CHECK(kind == "arcface" || kind == "cosface", "margin loss: \"", kind, "\" (expected arcface or cosface)");
  const auto logits = kind == "arcface" ? arcface_logits(embeddings, centres, labels, scale, margin)
                                        : cosface_logits(embeddings, centres, labels, scale, margin);
  return F::cross_entropy(logits, labels);
}

torch::Tensor batch_hard_triplet_loss(const torch::Tensor& embeddings, const torch::Tensor& labels,
                                      double margin) {
  GRAFT_CHECK(embeddings.dim() == 2 && labels.dim() == 1 && labels.size(0) == embeddings.size(0),
              "triplet loss: embeddings ", embeddings.sizes(), " and labels ", labels.sizes(),
              " (expected [N, D] and [N])");
  const auto e = F::normalize(embeddings, F::NormalizeFuncOptions().dim(1).eps(1e-12));
  // Squared distances from the Gram matrix of unit vectors, clamped before
  // the root so that coinciding embeddings do not give an infinite gradient.
  const auto gram = e.matmul(e.t());
  const auto dist = (2.0 - 2.0 * gram).clamp_min(1e-12).sqrt();
  const int64_t n = e.size(0);
  const auto same = labels.view({-1, 1}).eq(labels.view({1, -1}));
  const auto self = torch::eye(n, torch::TensorOptions().dtype(torch::kBool).device(e.device()));
  const auto positive = same.logical_and(self.logical_not());
  const auto negative = same.logical_not();
  const auto valid = positive.any(1).logical_and(negative.any(1));
  if (!valid.any().item<bool>()) return (e.sum() * 0.0);
  const auto hardest_pos = torch::where(positive, dist, torch::zeros_like(dist)).amax(1);
  const auto far = dist.detach().max() + 1.0;
  const auto hardest_neg = torch::where(negative, dist, far.expand_as(dist)).amin(1);
  const auto loss = torch::relu(hardest_pos - hardest_neg + margin);
  return loss.masked_select(valid).mean();
}

}  // namespace graft
