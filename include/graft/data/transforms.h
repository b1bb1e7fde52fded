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

/// Test-time augmentation (graft eval / predict --tta): the views of an
/// image whose softmax probabilities are averaged.
///  none      — the evaluation transform (one view);
///  flip      — the evaluation transform's centre crop and its horizontal
///              mirror (2 views);
///  five-crop — torchvision's FiveCrop(spec.size) of the resized image:
///              top-left, top-right, bottom-left, bottom-right, centre;
///  ten-crop  — TenCrop(spec.size): those five, then the five of the
///              horizontally flipped resized image (10 views).
/// When the spec leaves no margin (spec.resize <= spec.size, the CIFAR
/// models' 32/32), the five crops of the resized image would all be the centre
/// crop: five-crop and ten-crop then pad the resized image with
/// tta_padding(spec) black pixels on every side first (torchvision's
/// Pad(P) before FiveCrop: the shifts of the CIFAR recipe's
/// RandomCrop(32, padding=4)).
enum class Tta { None, Flip, FiveCrop, TenCrop };

/// Parses "none", "flip", "five-crop", "ten-crop"; throws graft::UsageError
/// naming --tta and the value otherwise.
Tta parse_tta(const std::string& name);
std::string to_string(Tta t);
/// Views per image: 1, 2, 5, 10.
int tta_views(Tta t);
/// The black margin five-crop and ten-crop add on every side of the resized
/// image: spec.size / 8 (at least 1) when spec.resize <= spec.size, else 0.
int tta_padding(const InputSpec& spec);

/// The views of `img` for `tta`, each as eval_transform makes its one view
/// (Pillow-exact resize, ToTensor, Normalize), in the order above: a
/// contiguous float32 tensor [tta_views(tta), spec.channels, spec.size,
/// spec.size]. Tta::None gives eval_transform(img, spec) with a leading 1.
/// Throws graft::UsageError naming --tta when a crop does not fit the
/// (padded) resized image.
torch::Tensor eval_views(const cv::Mat& img, const InputSpec& spec, Tta tta);

/// Training transform for a preset (Augment::None is eval_transform); all
/// randomness comes from `rng`. Same output type as eval_transform.
torch::Tensor train_transform(const cv::Mat& img, const InputSpec& spec, Augment augment,
                              std::mt19937_64& rng);

}  // namespace graft
