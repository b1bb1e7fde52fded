#pragma once
/// Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep
/// Networks via Gradient-based Localization") on a registry CNN: where in
/// the input the evidence for a class lies, from the last convolutional
/// stage (BackboneImpl::feature_map).

#include <cstdint>

#include <torch/types.h>

namespace graft {

class BackboneImpl;

/// Grad-CAM maps of `input` [N, 3, H, W] (preprocessed as for evaluation)
/// for the classes `targets` [N]: with A = model.feature_map(input)
/// [N, K, h, w] and y = the target's logit (before the softmax),
/// map = ReLU(sum_k alpha_k A_k), alpha_k = mean over h, w of dy/dA_k,
/// upsampled bilinearly (align_corners false) to H x W and normalised to
/// [0, 1] by (map - min) / (max - min) per image (all zeros when max = min).
/// Returns [N, H, W] float32 on the CPU. Runs the model as it is (put it in
/// eval mode first); the parameters' requires_grad and gradients are left as
/// they were.
torch::Tensor grad_cam(BackboneImpl& model, const torch::Tensor& input, const torch::Tensor& targets);

}  // namespace graft
