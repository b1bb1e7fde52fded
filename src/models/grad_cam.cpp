#include "graft/models/grad_cam.h"

#include <torch/torch.h>

#include "graft/core/error.h"
#include "graft/models/backbone.h"

namespace graft {

torch::Tensor grad_cam(BackboneImpl& model, const torch::Tensor& input, const torch::Tensor& targets) {
  GRAFT_CHECK(input.dim() == 4 && targets.dim() == 1 && targets.size(0) == input.size(0),
              "grad_cam: input of shape ", input.sizes(), " and targets of shape ", targets.sizes(),
              " (expected [N, C, H, W] and [N])");
  if (input.size(0) == 0) return torch::zeros({0, input.size(2), input.size(3)});
  // Gradients are needed even when the caller evaluates without them.
  c10::InferenceMode inference_off(false);
  torch::AutoGradMode grad_on(true);
  // The trunk runs without a graph: only d(logit)/dA is needed, and A is
  // where the graph starts.
  torch::Tensor a;
  {
    torch::NoGradGuard no_grad;
    a = model.feature_map(input);
  }
  GRAFT_CHECK(a.dim() == 4, "grad_cam: the last convolutional stage gave shape ", a.sizes(),
              " (expected [N, K, h, w])");
  a = a.detach().to(torch::kFloat32).requires_grad_(true);
  const torch::Tensor logits = model.classify(model.pool_features(a));
  // A copy: targets made under InferenceMode cannot be saved for backward.
  const torch::Tensor t = targets.to(logits.device(), torch::kInt64).clone();
  GRAFT_CHECK(t.min().item<int64_t>() >= 0 && t.max().item<int64_t>() < logits.size(1), "grad_cam: target classes ",
              t.min().item<int64_t>(), " to ", t.max().item<int64_t>(), " (expected 0 to ", logits.size(1) - 1, ")");
  // In eval mode the images of a batch do not interact, so the gradient of
  // the sum is each image's own.
  const torch::Tensor score = logits.gather(1, t.unsqueeze(1)).sum();
  const torch::Tensor grad = torch::autograd::grad({score}, {a})[0];
  torch::NoGradGuard no_grad;
  const torch::Tensor alpha = grad.mean({2, 3}, /*keepdim=*/true);
  torch::Tensor cam = torch::relu((alpha * a.detach()).sum(1, /*keepdim=*/true));
  cam = torch::nn::functional::interpolate(
            cam, torch::nn::functional::InterpolateFuncOptions()
                     .size(std::vector<int64_t>{input.size(2), input.size(3)})
                     .mode(torch::kBilinear)
                     .align_corners(false))
            .select(1, 0);
  const torch::Tensor lo = cam.amin({1, 2}, /*keepdim=*/true), hi = cam.amax({1, 2}, /*keepdim=*/true);
  cam = torch::where(hi > lo, (cam - lo) / (hi - lo), torch::zeros_like(cam));
  return cam.to(torch::kCPU, torch::kFloat32).contiguous();
}

}  // namespace graft
