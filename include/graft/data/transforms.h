#pragma once
/// Image transforms: evaluation preprocessing and seeded augmentation presets.

#include <cstdint>
#include <random>
#include <string>

#include <opencv2/core.hpp>
#include <torch/types.h>

#include "graft/data/input_spec.h"

namespace graft {

/// Augmentation presets, each the torchvision transform of the same name:
///  none   — the evaluation transform;
///  light  — RandomResizedCrop(size, scale 0.25-1, ratio 3/4-4/3; ten tries,
///           then a centre crop) and RandomHorizontalFlip(0.5);
///  strong — light, plus ColorJitter(brightness, contrast, saturation 0.4, in
///           a random order), RandomRotation(15) (bilinear, zero fill) and,
///           after normalising, RandomErasing(p 0.25, 2-20% area, value 0).
/// The draws come from the caller's rng, not from torch's generator, so the
/// same seed gives the same augmentation as graft, not as torchvision.
enum class Augment { None, Light, Strong };

/// Parses "none", "light", "strong"; throws graft::UsageError naming
/// --augment otherwise.
Augment parse_augment(const std::string& name);
std::string to_string(Augment a);

/// Converts an 8-bit grey or RGB image to `channels` (1 or 3): grey is
/// replicated; RGB becomes grey with PIL's convert("L") weights and rounding
/// (0.299 R + 0.587 G + 0.114 B). Returns `img` itself when nothing changes.
cv::Mat to_channels(const cv::Mat& img, int channels);

/// Evaluation transform: torchvision's Resize(spec.resize) (shorter side) +
/// CenterCrop(spec.size) (zero padding if larger) + ToTensor + Normalize, as
/// applied to a PIL image. The resize is Pillow's antialiased bilinear filter,
/// reproduced exactly (resample.h), so given the same decoded pixels the
/// output equals torchvision's bit for bit. torchvision on tensors without
/// antialiasing, or OpenCV's INTER_LINEAR, differ by about 0.03-0.06 mean and
/// up to 1.5 max (normalised units) on typical photos shrunk 1.5-8x. A colour
/// image for a 1-channel spec is made grey first, as convert("L") would be.
/// Returns a contiguous float32 tensor [spec.channels, spec.size, spec.size].
torch::Tensor eval_transform(const cv::Mat& img, const InputSpec& spec);

/// Training transform for a preset (Augment::None is eval_transform); all
/// randomness comes from `rng`. Same output type as eval_transform.
torch::Tensor train_transform(const cv::Mat& img, const InputSpec& spec, Augment augment,
                              std::mt19937_64& rng);

}  // namespace graft
