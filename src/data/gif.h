#pragma once
/// GIF decoding through giflib (OpenCV 4.6 has no GIF decoder); used by
/// decode_image (graft/data/image_set.h) only.

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace graft {

/// The first frame of a GIF file as Pillow's GifImagePlugin gives it, and so
/// torchvision's ImageFolder after convert("RGB"):
/// - the canvas is the logical screen, grown to hold the frame if the frame
///   reaches past it;
/// - the canvas outside the frame holds the frame's transparent index when
///   its graphic control extension names one, else index 0;
/// - every index is looked up in the frame's local colour table, else the
///   global one (an index past the table's end is black; without any table
///   the index is the grey level);
/// - transparent pixels keep the colour of their palette entry (Pillow's
///   convert("RGB") drops the transparency the same way);
/// - interlaced rows are put back in order.
/// Returns 8-bit grey (CV_8UC1) when every colour of the table is grey, RGB
/// (CV_8UC3, R first) otherwise. Later frames are not read.
/// Throws ImageError naming `name`: kTruncated when the data ends early,
/// kTooLarge past max_image_pixels(), kDamaged for anything else giflib
/// refuses.
cv::Mat decode_gif(const std::vector<uint8_t>& bytes, const std::string& name);

}  // namespace graft
