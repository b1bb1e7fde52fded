#pragma once
/// Face alignment: a least-squares similarity transform (rotation, uniform
/// scale, translation) from 68 landmarks to dlib's mean face, then the image
/// resampled into the embedder's canonical chip. This is dlib's
/// get_face_chip_details(shape, 150, 0.25) + extract_image_chip, the crop the
/// dlib face network (face-api's faceRecognitionNet) was trained on. Every
/// face verb and trainer goes through align_face.

#include <vector>

#include <opencv2/core.hpp>

namespace graft {

/// The canonical chip: `size` x `size` pixels, the mean face inset by
/// `padding` times its extent on each side.
struct FaceChipSpec {
  int size = 150;
  double padding = 0.25;
};

/// The similarity transform T (2x3, CV_64F) minimising sum |T(from_i) - to_i|^2
/// (Umeyama 1991; no reflection). Requires from.size() == to.size() >= 2 and
/// from not all one point; throws graft::Error otherwise.
cv::Mat similarity_transform(const std::vector<cv::Point2d>& from, const std::vector<cv::Point2d>& to);

/// dlib's 33 reference points (of the 68: nose, eyes, outer mouth and upper
/// inner lip) in chip pixels for `spec`, and the indices of the landmarks
/// they pair with.
std::vector<cv::Point2d> canonical_face_points(const FaceChipSpec& spec);
const std::vector<int>& canonical_face_indices();

/// The transform from chip pixels to image pixels for 68 landmarks (dlib
/// fits this direction). Throws graft::Error unless there are 68 points.
cv::Mat chip_to_image_transform(const std::vector<cv::Point2f>& landmarks68, const FaceChipSpec& spec = {});

/// The aligned chip (same channels as `image`): each chip pixel is the image
/// bilinearly sampled at the transformed position, zero outside the image.
/// A chip that would shrink the face by more than 2x is taken from an
/// area-averaged smaller copy, so that it does not alias (dlib uses a pyramid).
cv::Mat align_face(const cv::Mat& image, const std::vector<cv::Point2f>& landmarks68,
                   const FaceChipSpec& spec = {});

}  // namespace graft
