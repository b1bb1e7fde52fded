#include "graft/face/align.h"

#include <random>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "test_util.h"

namespace graft {
namespace {

TEST(FaceAlign, SimilarityTransformRecoversAKnownOne) {
  const double s = 1.7, a = 0.3, tx = 12.5, ty = -4.0;
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> u(-50, 50);
  std::vector<cv::Point2d> from, to;
  for (int i = 0; i < 20; ++i) {
    cv::Point2d p(u(rng), u(rng));
    from.push_back(p);
    to.emplace_back(s * (std::cos(a) * p.x - std::sin(a) * p.y) + tx, s * (std::sin(a) * p.x + std::cos(a) * p.y) + ty);
  }
  const cv::Mat t = similarity_transform(from, to);
  EXPECT_NEAR(t.at<double>(0, 0), s * std::cos(a), 1e-9);
  EXPECT_NEAR(t.at<double>(0, 1), -s * std::sin(a), 1e-9);
  EXPECT_NEAR(t.at<double>(1, 0), s * std::sin(a), 1e-9);
  EXPECT_NEAR(t.at<double>(0, 2), tx, 1e-9);
  EXPECT_NEAR(t.at<double>(1, 2), ty, 1e-9);
  // A reflection is not a similarity: the best fit keeps det > 0.
  std::vector<cv::Point2d> mirrored;
  for (const auto& p : from) mirrored.emplace_back(-p.x, p.y);
  const cv::Mat m = similarity_transform(from, mirrored);
  EXPECT_GE(m.at<double>(0, 0) * m.at<double>(1, 1) - m.at<double>(0, 1) * m.at<double>(1, 0), 0.0);
  EXPECT_NE(test::error_of([] { similarity_transform({{1, 1}}, {{2, 2}}); }).find("at least 2"), std::string::npos);
  EXPECT_NE(test::error_of([] { similarity_transform({{1, 1}, {1, 1}}, {{2, 2}, {3, 3}}); }).find("coincide"),
            std::string::npos);
}

TEST(FaceAlign, ChipPutsTheLandmarksOnTheMeanFace) {
  // Landmarks = the canonical points of a 300 px chip rotated by 20 degrees
  // and shifted: aligning must undo exactly that.
  FaceChipSpec big{300, 0.25};
  const auto canon = canonical_face_points(big);
  std::vector<cv::Point2f> landmarks(68, cv::Point2f(0, 0));
  const double a = 20 * CV_PI / 180;
  const auto& idx = canonical_face_indices();
  ASSERT_EQ(idx.size(), 33u);
  for (size_t i = 0; i < idx.size(); ++i) {
    const auto& p = canon[i];
    landmarks[idx[i]] = cv::Point2f(static_cast<float>(std::cos(a) * p.x - std::sin(a) * p.y + 40),
                                    static_cast<float>(std::sin(a) * p.x + std::cos(a) * p.y + 10));
  }
  const cv::Mat t = chip_to_image_transform(landmarks, FaceChipSpec{});  // 150: scale 2
  EXPECT_NEAR(t.at<double>(0, 0), 2 * std::cos(a), 1e-5);
  EXPECT_NEAR(t.at<double>(1, 0), 2 * std::sin(a), 1e-5);
  cv::Mat image(400, 400, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::circle(image, landmarks[30], 3, cv::Scalar(255, 255, 255), -1);  // the nose tip
  const cv::Mat chip = align_face(image, landmarks);
  ASSERT_EQ(chip.rows, 150);
  ASSERT_EQ(chip.type(), CV_8UC3);
  const auto nose = canonical_face_points(FaceChipSpec{})[30 - 27];  // index 30 is the 4th used
  EXPECT_GT(chip.at<cv::Vec3b>(static_cast<int>(nose.y), static_cast<int>(nose.x))[0], 100);
  EXPECT_NE(test::error_of([&] { align_face(image, std::vector<cv::Point2f>(5)); }).find("5 landmarks"),
            std::string::npos);
}

}  // namespace
}  // namespace graft
