#pragma once
/// What a backbone expects as input: size, channels, normalisation.

#include <array>
#include <string>

namespace graft {

struct InputSpec {
  /// Side of the square crop fed to the network (224 for ImageNet models).
  int size = 224;
  /// Shorter side is resized to this before the centre crop at evaluation
  /// time (256 for 224, as torchvision's ImageNet recipe).
  int resize = 256;
  /// 3 (RGB) or 1 (grey). Images are converted to this channel count.
  int channels = 3;
  /// Per-channel mean and std applied to pixels scaled to [0, 1].
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
};

}  // namespace graft
