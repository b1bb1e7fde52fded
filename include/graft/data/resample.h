#pragma once
/// Bilinear resampling that reproduces Pillow's Image.resize(BILINEAR) bit for
/// bit on 8-bit images: antialiased when shrinking (the triangle filter is
/// widened by the scale factor), the same 22-bit fixed-point weights, and the
/// same rounding after the horizontal and then the vertical pass. This is what
/// torchvision's Resize and RandomResizedCrop do to PIL images, the usual
/// training input of pretrained models; OpenCV's INTER_LINEAR does not
/// antialias and INTER_AREA only matches for integer factors.

#include <opencv2/core.hpp>

namespace graft {

/// Resizes the part `src_box` of `src` (8-bit, 1-4 channels) to `out_size`,
/// like PIL's `img.crop(src_box).resize(out_size, BILINEAR)`, but computes
/// only the output pixels in `out_region` (a rectangle inside
/// [0, out_size)), which is returned as a new image of out_region.size().
/// Cropping after resizing thus costs only the pixels kept.
/// Requires: src_box inside src and non-empty; out_size positive.
cv::Mat resample_bilinear(const cv::Mat& src, const cv::Rect& src_box, const cv::Size& out_size,
                          const cv::Rect& out_region);

/// The whole image resized to `out_size` (PIL's img.resize(out_size, BILINEAR)).
inline cv::Mat resample_bilinear(const cv::Mat& src, const cv::Size& out_size) {
  return resample_bilinear(src, cv::Rect(0, 0, src.cols, src.rows), out_size,
                           cv::Rect(cv::Point(0, 0), out_size));
}

}  // namespace graft
