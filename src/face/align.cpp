#include "graft/face/align.h"

#include <cmath>

#include <opencv2/imgproc.hpp>

#include "graft/core/error.h"

namespace graft {

namespace {

// dlib/image_transforms/interpolation.h, get_face_chip_details: the mean
// positions (x, y) of landmarks 17..67 in the unit square.
const double kMeanFace[51][2] = {
    {0.000213256, 0.106454}, {0.0752622, 0.038915}, {0.18113, 0.0187482}, {0.29077, 0.0344891},
    {0.393397, 0.0773906}, {0.586856, 0.0773906}, {0.689483, 0.0344891}, {0.799124, 0.0187482},
    {0.904991, 0.038915}, {0.98004, 0.106454}, {0.490127, 0.203352}, {0.490127, 0.307009},
    {0.490127, 0.409805}, {0.490127, 0.515625}, {0.36688, 0.587326}, {0.426036, 0.609345},
    {0.490127, 0.628106}, {0.554217, 0.609345}, {0.613373, 0.587326}, {0.121737, 0.216423},
    {0.187122, 0.178758}, {0.265825, 0.179852}, {0.334606, 0.231733}, {0.260918, 0.245099},
    {0.182743, 0.244077}, {0.645647, 0.231733}, {0.714428, 0.179852}, {0.793132, 0.178758},
    {0.858516, 0.216423}, {0.79751, 0.244077}, {0.719335, 0.245099}, {0.254149, 0.780233},
    {0.340985, 0.745405}, {0.428858, 0.727388}, {0.490127, 0.742578}, {0.551395, 0.727388},
    {0.639268, 0.745405}, {0.726104, 0.780233}, {0.642159, 0.864805}, {0.556721, 0.902192},
    {0.490127, 0.909281}, {0.423532, 0.902192}, {0.338094, 0.864805}, {0.290379, 0.784792},
    {0.428096, 0.778746}, {0.490127, 0.785343}, {0.552157, 0.778746}, {0.689874, 0.784792},
    {0.553364, 0.824182}, {0.490127, 0.831803}, {0.42689, 0.824182}};

}  // namespace

cv::Mat similarity_transform(const std::vector<cv::Point2d>& from, const std::vector<cv::Point2d>& to) {
  GRAFT_CHECK(from.size() == to.size() && from.size() >= 2, "similarity transform: ", from.size(),
              " source points and ", to.size(), " target points (expected the same number, at least 2)");
  const double n = static_cast<double>(from.size());
  cv::Point2d mf(0, 0), mt(0, 0);
  for (size_t i = 0; i < from.size(); ++i) {
    mf += from[i];
    mt += to[i];
  }
  mf *= 1.0 / n;
  mt *= 1.0 / n;
  double var = 0;
  cv::Matx22d cov = cv::Matx22d::zeros();
  for (size_t i = 0; i < from.size(); ++i) {
    const cv::Point2d a = from[i] - mf, b = to[i] - mt;
    var += a.dot(a);
    cov += cv::Matx22d(b.x * a.x, b.x * a.y, b.y * a.x, b.y * a.y);
  }
  var /= n;
  cov *= 1.0 / n;
  GRAFT_CHECK(var > 1e-12, "similarity transform: the source points all coincide");
  cv::Mat w, u, vt;
  cv::SVD::compute(cv::Mat(cov), w, u, vt);
  cv::Matx22d s = cv::Matx22d::eye();
  if (cv::determinant(cv::Mat(cov)) < 0) s(1, 1) = -1;
  const cv::Matx22d r = cv::Matx22d(u) * s * cv::Matx22d(vt);
  const double scale = (w.at<double>(0) * s(0, 0) + w.at<double>(1) * s(1, 1)) / var;
  const cv::Matx21d t = cv::Matx21d(mt.x, mt.y) - scale * r * cv::Matx21d(mf.x, mf.y);
  cv::Mat out = (cv::Mat_<double>(2, 3) << scale * r(0, 0), scale * r(0, 1), t(0),  //
                 scale * r(1, 0), scale * r(1, 1), t(1));
  return out;
}

const std::vector<int>& canonical_face_indices() {
  static const std::vector<int> indices = [] {
    std::vector<int> v;
    for (int i = 17; i < 68; ++i) {
      if ((55 <= i && i <= 59) || (65 <= i && i <= 67)) continue;  // lower lip
      if (i <= 26) continue;                                          // eyebrows
      v.push_back(i);
    }
    return v;
  }();
  return indices;
}

std::vector<cv::Point2d> canonical_face_points(const FaceChipSpec& spec) {
  std::vector<cv::Point2d> points;
  for (int i : canonical_face_indices()) {
    const double x = (spec.padding + kMeanFace[i - 17][0]) / (2 * spec.padding + 1);
    const double y = (spec.padding + kMeanFace[i - 17][1]) / (2 * spec.padding + 1);
    points.emplace_back(x * spec.size, y * spec.size);
  }
  return points;
}

cv::Mat chip_to_image_transform(const std::vector<cv::Point2f>& landmarks68, const FaceChipSpec& spec) {
  GRAFT_CHECK(landmarks68.size() == 68, "face alignment: ", landmarks68.size(),
              " landmarks (expected 68)");
  GRAFT_CHECK(spec.size > 0 && spec.padding > -0.5, "face alignment: chip size ", spec.size,
              " and padding ", spec.padding, " (expected size > 0, padding > -0.5)");
  std::vector<cv::Point2d> to;
  for (int i : canonical_face_indices()) to.emplace_back(landmarks68[i].x, landmarks68[i].y);
  return similarity_transform(canonical_face_points(spec), to);
}

cv::Mat align_face(const cv::Mat& image, const std::vector<cv::Point2f>& landmarks68,
                   const FaceChipSpec& spec) {
  GRAFT_CHECK(!image.empty(), "face alignment: empty image");
  cv::Mat t = chip_to_image_transform(landmarks68, spec);
  // image pixels per chip pixel
  const double scale = std::hypot(t.at<double>(0, 0), t.at<double>(1, 0));
  cv::Mat source = image;
  if (scale > 2.0) {
    const double shrink = std::floor(scale);
    cv::resize(image, source, cv::Size(), 1.0 / shrink, 1.0 / shrink, cv::INTER_AREA);
    const double fx = static_cast<double>(source.cols) / image.cols;
    const double fy = static_cast<double>(source.rows) / image.rows;
    // chip -> small image: scale the image coordinates (pixel centres map as
    // (x + 0.5) * f - 0.5 under INTER_AREA)
    cv::Mat m = (cv::Mat_<double>(2, 3) << fx, 0, 0.5 * fx - 0.5, 0, fy, 0.5 * fy - 0.5);
    cv::Mat t3 = cv::Mat::eye(3, 3, CV_64F);
    t.copyTo(t3.rowRange(0, 2));
    t = m * t3;
  }
  cv::Mat chip;
  cv::warpAffine(source, chip, t, cv::Size(spec.size, spec.size),
                 cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  return chip;
}

}  // namespace graft
