#include "graft/face/augment.h"

#include <random>

#include <opencv2/imgproc.hpp>

#include "graft/core/error.h"

namespace graft {

cv::Mat augment_face_chip(const cv::Mat& chip, uint64_t seed, const FaceAugmentOptions& o) {
  GRAFT_CHECK(!chip.empty() && chip.depth() == CV_8U, "face augmentation: expected an 8-bit chip, got ",
              chip.cols, "x", chip.rows, " of depth ", chip.depth());
  std::mt19937_64 rng(seed);
  // Drawn in a fixed order, each from its own uniform, so that the stream
  // does not depend on which transforms are switched off.
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double u_flip = unit(rng), u_rot = unit(rng), u_scale = unit(rng), u_bright = unit(rng);
  const double angle = (2 * u_rot - 1) * o.rotate_degrees;
  const double zoom = 1 + (2 * u_scale - 1) * o.scale;
  const double factor = 1 + (2 * u_bright - 1) * o.brightness;
  // Every step writes a new Mat: `chip` must never be written through.
  cv::Mat out = chip;
  if (angle != 0 || zoom != 1) {
    const cv::Point2f centre(static_cast<float>(chip.cols - 1) / 2.0f, static_cast<float>(chip.rows - 1) / 2.0f);
    const cv::Mat m = cv::getRotationMatrix2D(centre, angle, zoom);
    cv::Mat warped;
    cv::warpAffine(chip, warped, m, chip.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    out = warped;
  }
  if (u_flip < o.flip) {
    cv::Mat flipped;
    cv::flip(out, flipped, 1);
    out = flipped;
  }
  if (factor != 1) {
    cv::Mat bright;
    out.convertTo(bright, -1, factor, 0.0);  // rounds and saturates
    out = bright;
  }
  return out.data == chip.data ? chip.clone() : out;
}

}  // namespace graft
