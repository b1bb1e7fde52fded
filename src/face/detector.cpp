#include "graft/face/detector.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "graft/core/error.h"
#include "graft/face/nets.h"
#include "graft/weights/tfjs.h"

namespace graft {

namespace F = torch::nn::functional;

namespace {

constexpr int kInput = 512;
constexpr double kIou = 0.5;
constexpr double kBatchNormEpsilon = 0.0010000000474974513;  // face-api's, a float32 1e-3


class Weights {
 public:
  Weights(const TensorList& list, std::string source) : source_(std::move(source)) {
    for (const auto& [name, t] : list) m_[name] = t;
  }
  torch::Tensor get(const std::string& name, int64_t rank) const {
    auto it = m_.find(name);
    GRAFT_CHECK(it != m_.end(), source_, ": no tensor \"", name, "\"");
    GRAFT_CHECK(it->second.dim() == rank, source_, ": tensor \"", name, "\" has shape ", it->second.sizes(),
                ", expected rank ", rank);
    return it->second.to(torch::kFloat32).contiguous();
  }

 private:
  std::map<std::string, torch::Tensor> m_;
  std::string source_;
};

torch::Tensor hwio_to_oihw(const torch::Tensor& t) { return t.permute({3, 2, 0, 1}).contiguous(); }

}  // namespace

FaceDetectorNetImpl::FaceDetectorNetImpl(const TensorList& tfjs_weights, const std::string& source) {
  const Weights w(tfjs_weights, source);
  auto reg = [&](const std::string& name, torch::Tensor t) { return register_parameter(name, t, false); };
  auto pw = [&](const std::string& prefix) {
    Pointwise p;
    p.filters = reg(prefix + "/weights", hwio_to_oihw(w.get(prefix + "/weights", 4)));
    p.offset = reg(prefix + "/convolution_bn_offset", w.get(prefix + "/convolution_bn_offset", 1));
    return p;
  };
  conv0_ = pw("MobilenetV1/Conv2d_0_pointwise");
  for (int i = 1; i <= 13; ++i) {
    const std::string d = "MobilenetV1/Conv2d_" + std::to_string(i) + "_depthwise";
    Depthwise dw;
    dw.filters = reg(d + "/depthwise_weights", w.get(d + "/depthwise_weights", 4).permute({2, 3, 0, 1}).contiguous());
    dw.scale = reg(d + "/BatchNorm/gamma", w.get(d + "/BatchNorm/gamma", 1));
    dw.offset = reg(d + "/BatchNorm/beta", w.get(d + "/BatchNorm/beta", 1));
    dw.mean = reg(d + "/BatchNorm/moving_mean", w.get(d + "/BatchNorm/moving_mean", 1));
    dw.variance = reg(d + "/BatchNorm/moving_variance", w.get(d + "/BatchNorm/moving_variance", 1));
    depthwise_.push_back(dw);
    pointwise_.push_back(pw("MobilenetV1/Conv2d_" + std::to_string(i) + "_pointwise"));
  }
  for (int i = 0; i < 8; ++i) prediction_.push_back(pw("Prediction/Conv2d_" + std::to_string(i) + "_pointwise"));
  for (int i = 0; i < 6; ++i) {
    const std::string p = "Prediction/BoxPredictor_" + std::to_string(i);
    Predictor b;
    b.box_filters = reg(p + "/BoxEncodingPredictor/weights", hwio_to_oihw(w.get(p + "/BoxEncodingPredictor/weights", 4)));
    b.box_bias = reg(p + "/BoxEncodingPredictor/biases", w.get(p + "/BoxEncodingPredictor/biases", 1));
    b.class_filters = reg(p + "/ClassPredictor/weights", hwio_to_oihw(w.get(p + "/ClassPredictor/weights", 4)));
    b.class_bias = reg(p + "/ClassPredictor/biases", w.get(p + "/ClassPredictor/biases", 1));
    predictors_.push_back(b);
  }
  anchors_ = w.get("Output/extra_dim", 3);
  GRAFT_CHECK(anchors_.size(0) == 1 && anchors_.size(2) == 4, source, ": Output/extra_dim has shape ",
              anchors_.sizes(), ", expected [1, A, 4]");
  anchors_ = register_buffer("anchors", anchors_[0].contiguous());
}

torch::Tensor FaceDetectorNetImpl::pointwise(const Pointwise& p, torch::Tensor x, int stride) const {
  x = F::conv2d(pad_same(x, p.filters.size(2), stride), p.filters, F::Conv2dFuncOptions().stride(stride));
  return torch::clamp(x + p.offset.view({1, -1, 1, 1}), 0, 6);
}

torch::Tensor FaceDetectorNetImpl::depthwise(const Depthwise& p, torch::Tensor x, int stride) const {
  x = F::conv2d(pad_same(x, 3, stride), p.filters, F::Conv2dFuncOptions().stride(stride).groups(x.size(1)));
  // tfjs: offset + (x - mean) * scale / sqrt(variance + epsilon)
  const auto v = [](const torch::Tensor& t) { return t.view({1, -1, 1, 1}); };
  x = v(p.offset) + (x - v(p.mean)) * v(p.scale) / torch::sqrt(v(p.variance) + kBatchNormEpsilon);
  return torch::clamp(x, 0, 6);
}

std::pair<torch::Tensor, torch::Tensor> FaceDetectorNetImpl::forward(torch::Tensor x) {
  GRAFT_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == kInput && x.size(3) == kInput,
              "face detector: input has shape ", x.sizes(), ", expected [N, 3, 512, 512]");
  const int64_t n = x.size(0);
  auto out = pointwise(conv0_, x.to(torch::kFloat32) / 127.5f - 1.0f, 2);
  torch::Tensor conv11;
  for (int i = 1; i <= 13; ++i) {
    const int stride = (i == 2 || i == 4 || i == 6 || i == 12) ? 2 : 1;
    out = depthwise(depthwise_[i - 1], out, stride);
    out = pointwise(pointwise_[i - 1], out, 1);
    if (i == 11) conv11 = out;
  }
  std::vector<torch::Tensor> maps = {conv11, out};
  torch::Tensor p = out;
  for (int i = 0; i < 8; ++i) {
    p = pointwise(prediction_[i], p, i % 2 == 1 ? 2 : 1);
    if (i % 2 == 1) maps.push_back(p);
  }
  std::vector<torch::Tensor> enc, cls;
  for (size_t i = 0; i < maps.size(); ++i) {
    const auto& b = predictors_[i];
    // NHWC order before the reshape, as TF's: anchor = (y * W + x) * A + a.
    enc.push_back((F::conv2d(maps[i], b.box_filters) + b.box_bias.view({1, -1, 1, 1}))
                      .permute({0, 2, 3, 1}).reshape({n, -1, 4}));
    cls.push_back((F::conv2d(maps[i], b.class_filters) + b.class_bias.view({1, -1, 1, 1}))
                      .permute({0, 2, 3, 1}).reshape({n, -1, 3}));
  }
  const auto e = torch::cat(enc, 1);
  const auto scores = torch::sigmoid(torch::cat(cls, 1).select(2, 1));
  GRAFT_CHECK(e.size(1) == anchors_.size(0), "face detector: ", e.size(1), " box predictions for ",
              anchors_.size(0), " anchors");
  const auto a = anchors_.unsqueeze(0);
  const auto s0 = a.select(2, 2) - a.select(2, 0), s1 = a.select(2, 3) - a.select(2, 1);
  const auto c0 = a.select(2, 0) + s0 / 2, c1 = a.select(2, 1) + s1 / 2;
  const auto h0 = torch::exp(e.select(2, 2) / 5) * s0 / 2;
  const auto y = e.select(2, 0) / 10 * s0 + c0;
  const auto h1 = torch::exp(e.select(2, 3) / 5) * s1 / 2;
  const auto xx = e.select(2, 1) / 10 * s1 + c1;
  const auto boxes = torch::stack({y - h0, xx - h1, y + h0, xx + h1}, 2);
  return {boxes, scores};
}

FaceDetectorNet load_face_detector(const std::string& models_dir) {
  const std::string path = models_dir + "/ssd_mobilenetv1_model-weights_manifest.json";
  GRAFT_CHECK(std::filesystem::exists(path), "face models: ", path,
              " is missing (run scripts/face_models.sh, or pass --face-models DIR)");
  FaceDetectorNet net(read_tfjs_weights(path), path);
  net->eval();
  return net;
}

namespace {

// face-api's IOU on [ymin, xmin, ymax, xmax].
double iou(const float* a, const float* b) {
  const double ay0 = std::min(a[0], a[2]), ax0 = std::min(a[1], a[3]), ay1 = std::max(a[0], a[2]),
               ax1 = std::max(a[1], a[3]);
  const double by0 = std::min(b[0], b[2]), bx0 = std::min(b[1], b[3]), by1 = std::max(b[0], b[2]),
               bx1 = std::max(b[1], b[3]);
  const double area_a = (ay1 - ay0) * (ax1 - ax0), area_b = (by1 - by0) * (bx1 - bx0);
  if (area_a <= 0 || area_b <= 0) return 0.0;
  const double inter = std::max(std::min(ay1, by1) - std::max(ay0, by0), 0.0) *
                       std::max(std::min(ax1, bx1) - std::max(ax0, bx0), 0.0);
  return inter / (area_a + area_b - inter);
}

}  // namespace

std::vector<FaceDetection> detect_faces(FaceDetectorNet& net, const cv::Mat& image, double min_confidence,
                                        int max_results) {
  GRAFT_CHECK(min_confidence > 0 && min_confidence < 1, "face detector: minimum confidence ", min_confidence,
              " (expected between 0 and 1)");
  torch::NoGradGuard no_grad;
  auto [boxes_t, scores_t] = net->forward(face_net_input(image, kInput, false).unsqueeze(0));
  const auto boxes = boxes_t[0].contiguous();
  const auto scores = scores_t[0].contiguous();
  const float* b = boxes.data_ptr<float>();
  const float* s = scores.data_ptr<float>();
  const int64_t count = scores.numel();
  std::vector<std::pair<double, int64_t>> candidates;
  for (int64_t i = 0; i < count; ++i)
    if (s[i] > min_confidence) candidates.emplace_back(s[i], i);
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const auto& x, const auto& y) { return x.first > y.first; });
  const size_t limit = static_cast<size_t>(std::min<int64_t>(max_results, count));
  std::vector<int64_t> selected;
  for (auto [score, index] : candidates) {
    if (selected.size() >= limit) break;
    const double original = score;
    for (size_t j = selected.size(); j-- > 0;) {
      const double o = iou(b + 4 * index, b + 4 * selected[j]);
      if (o == 0.0) continue;
      score *= o <= kIou ? 1 : 0;
      if (score <= min_confidence) break;
    }
    if (original == score) selected.push_back(index);
  }
  // Boxes are fractions of the padded 512 square: undo the padding.
  const double scale = static_cast<double>(kInput) / std::max(image.cols, image.rows);
  const double pad_x = kInput / std::round(image.cols * scale), pad_y = kInput / std::round(image.rows * scale);
  std::vector<FaceDetection> out;
  for (int64_t i : selected) {
    const float* r = b + 4 * i;
    const double top = std::max(0.0, static_cast<double>(r[0])) * pad_y;
    const double bottom = std::min(1.0, static_cast<double>(r[2])) * pad_y;
    const double left = std::max(0.0, static_cast<double>(r[1])) * pad_x;
    const double right = std::min(1.0, static_cast<double>(r[3])) * pad_x;
    out.push_back({s[i], cv::Rect2d(left * image.cols, top * image.rows, (right - left) * image.cols,
                                    (bottom - top) * image.rows)});
  }
  return out;
}

cv::Rect face_crop(const cv::Rect2d& box, const cv::Size& image) {
  const double x = std::max(box.x, 0.0), y = std::max(box.y, 0.0);
  const double w = std::min(box.x + box.width - x, image.width - x);
  const double h = std::min(box.y + box.height - y, image.height - y);
  return cv::Rect(static_cast<int>(std::floor(x)), static_cast<int>(std::floor(y)),
                  static_cast<int>(std::floor(w)), static_cast<int>(std::floor(h)));
}

}  // namespace graft
