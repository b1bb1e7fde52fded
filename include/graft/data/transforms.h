#pragma once
/// Image transforms: evaluation preprocessing and seeded augmentation presets.

#include <cstdint>
#include <random>
#include <string>

#include <opencv2/core.hpp>
#include <torch/types.h>

#include "graft/data/input_spec.h"

namespace graft {

/// Augmentation presets:
///  none   — the evaluation transform;
///  light  — random resized crop (scale 0.25-1, ratio 3/4-4/3) and
///           horizontal flip;
///  strong — light, plus colour jitter (brightness, contrast, saturation 0.4),
///           rotation (+-15 degrees) and random erasing (p 0.25, 2-20% area).
enum class Augment { None, Light, Strong };

/// Parses "none", "light", "strong"; throws graft::UsageError naming
/// --augment otherwise.
Augment parse_augment(const std::string& name);
std::string to_string(Augment a);

/// Converts an 8-bit image to spec.channels (grey<->RGB).
cv::Mat to_channels(const cv::Mat& img, int channels);

/// Evaluation transform (torchvision's Resize(resize) + CenterCrop(size) +
/// ToTensor + Normalize): float32 tensor [C, size, size].
torch::Tensor eval_transform(const cv::Mat& img, const InputSpec& spec);

/// Training transform for a preset; all randomness comes from `rng`.
torch::Tensor train_transform(const cv::Mat& img, const InputSpec& spec, Augment augment,
                              std::mt19937_64& rng);

}  // namespace graft
