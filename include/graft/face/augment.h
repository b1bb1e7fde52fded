#pragma once
/// Face augmentation on the aligned chip (fine-tuning's training views):
/// horizontal flip, a small rotation and scale about the chip's centre, and a
/// brightness factor. Seeded: the same chip and seed give the same pixels on
/// any machine and thread count (one std::mt19937_64 per call).

#include <cstdint>

#include <opencv2/core.hpp>

namespace graft {

struct FaceAugmentOptions {
  /// Probability of a horizontal flip (faces are nearly symmetric; dlib's
  /// jittering flips too).
  double flip = 0.5;
  /// Rotation drawn uniformly in [-rotate, +rotate] degrees.
  double rotate_degrees = 10;
  /// Zoom factor drawn uniformly in [1 - scale, 1 + scale].
  double scale = 0.1;
  /// Pixel values times a factor drawn uniformly in [1 - brightness, 1 + brightness].
  double brightness = 0.2;
};

/// One random view of an 8-bit chip (grey or RGB, any size): the rotation and
/// zoom resample bilinearly with the border replicated (the chip's padding is
/// background, so a black corner would be a new cue), then the flip, then the
/// brightness (rounded, saturated to 0..255). Same size and type as `chip`.
cv::Mat augment_face_chip(const cv::Mat& chip, uint64_t seed, const FaceAugmentOptions& options = {});

}  // namespace graft
