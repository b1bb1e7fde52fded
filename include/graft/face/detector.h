#pragma once
/// face-api's face detector (SsdMobilenetv1: MobileNet v1 at 512x512 with
/// SSD box predictors over 5118 anchors) re-implemented in LibTorch, with
/// face-api's own post-processing (box decoding, its greedy non-maximum
/// suppression at IoU 0.5, minimum confidence, boxes mapped back to the
/// image). Parity with face-api: tests/face/detector_test.cpp.

#include <string>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/torch.h>

#include "graft/weights/safetensors.h"

namespace graft {

class FaceDetectorNetImpl : public torch::nn::Module {
 public:
  /// Takes the tensors of ssd_mobilenetv1_model-weights_manifest.json.
  FaceDetectorNetImpl(const TensorList& tfjs_weights, const std::string& source);
  /// [N, 3, 512, 512] RGB 0..255 -> boxes [N, 5118, 4] (ymin, xmin, ymax,
  /// xmax as fractions of the input) and face scores [N, 5118].
  std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor x);

 private:
  struct Pointwise {
    torch::Tensor filters, offset;
  };
  struct Depthwise {
    torch::Tensor filters, scale, offset, mean, variance;
  };
  struct Predictor {
    torch::Tensor box_filters, box_bias, class_filters, class_bias;
  };
  torch::Tensor pointwise(const Pointwise& p, torch::Tensor x, int stride) const;
  torch::Tensor depthwise(const Depthwise& p, torch::Tensor x, int stride) const;

  Pointwise conv0_;
  std::vector<Depthwise> depthwise_;    // MobileNet layers 1..13
  std::vector<Pointwise> pointwise_;    // MobileNet layers 1..13
  std::vector<Pointwise> prediction_;   // prediction layer conv_0..7
  std::vector<Predictor> predictors_;   // box predictors 0..5
  torch::Tensor anchors_;               // [5118, 4]
};
TORCH_MODULE(FaceDetectorNet);

FaceDetectorNet load_face_detector(const std::string& models_dir);

struct FaceDetection {
  double score = 0;
  cv::Rect2d box;  // image pixels
};

/// face-api's ssdMobilenetv1.locateFaces: the image zero-padded at the right
/// or bottom to a square, resized to 512, boxes with score > min_confidence,
/// non-maximum suppression, at most max_results, best first.
std::vector<FaceDetection> detect_faces(FaceDetectorNet& net, const cv::Mat& image, double min_confidence = 0.5,
                                        int max_results = 100);

/// face-api's crop of a detection (Box.clipAtImageBorders, floored), the
/// region its landmark net sees.
cv::Rect face_crop(const cv::Rect2d& box, const cv::Size& image);

}  // namespace graft
