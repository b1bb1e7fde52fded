#include "graft/report/grad_cam.h"

#include <algorithm>
#include <filesystem>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "graft/core/error.h"
#include "graft/core/json.h"
#include "graft/data/transforms.h"
#include "graft/models/grad_cam.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/report/html.h"

namespace graft {

namespace {

/// Side of the overlay PNG: the figure shows it at this width.
constexpr int kGradCamSide = 120;

/// The normalised crop [C, S, S] back to 8-bit BGR pixels (what the network
/// saw, before normalisation).
cv::Mat grad_cam_crop_bgr(const torch::Tensor& x, const InputSpec& spec) {
  const int64_t c = x.size(0), side_h = x.size(1), side_w = x.size(2);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32);
  const torch::Tensor mean = torch::tensor(std::vector<float>(spec.mean.begin(), spec.mean.begin() + c), options);
  const torch::Tensor std = torch::tensor(std::vector<float>(spec.std.begin(), spec.std.begin() + c), options);
  torch::Tensor px = (x * std.view({c, 1, 1}) + mean.view({c, 1, 1})).clamp(0, 1).mul(255).round();
  if (c == 1) px = px.expand({3, side_h, side_w});
  // RGB planes to interleaved BGR rows.
  px = px.flip({0}).permute({1, 2, 0}).to(torch::kUInt8).contiguous();
  return cv::Mat(static_cast<int>(side_h), static_cast<int>(side_w), CV_8UC3, px.data_ptr<uint8_t>()).clone();
}

/// A jet heat map of `cam` [S, S] in [0, 1] blended at 0.5 over the crop,
/// scaled to kGradCamSide and encoded as PNG.
std::string grad_cam_png(const cv::Mat& crop_bgr, const torch::Tensor& cam) {
  const torch::Tensor levels = cam.clamp(0, 1).mul(255).round().to(torch::kUInt8).contiguous();
  const cv::Mat grey(static_cast<int>(cam.size(0)), static_cast<int>(cam.size(1)), CV_8UC1,
                     const_cast<uint8_t*>(levels.data_ptr<uint8_t>()));
  cv::Mat heat, blended, shown;
  cv::applyColorMap(grey, heat, cv::COLORMAP_JET);
  cv::addWeighted(heat, 0.5, crop_bgr, 0.5, 0, blended);
  const double scale = static_cast<double>(kGradCamSide) / std::max(blended.cols, blended.rows);
  cv::resize(blended, shown,
             cv::Size(std::max(1, static_cast<int>(std::lround(blended.cols * scale))),
                      std::max(1, static_cast<int>(std::lround(blended.rows * scale)))),
             0, 0, scale < 1 ? cv::INTER_AREA : cv::INTER_NEAREST);
  std::vector<uchar> png;
  GRAFT_CHECK(cv::imencode(".png", shown, png), "Grad-CAM: OpenCV could not encode the overlay as PNG");
  return std::string(png.begin(), png.end());
}

}  // namespace

bool grad_cam_applies(const std::string& run_dir) {
  const std::filesystem::path dir(run_dir);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(dir / "model.json", ec) ||
      !std::filesystem::is_regular_file(dir / "model.safetensors", ec))
    return false;
  const nlohmann::json j = read_json_file((dir / "model.json").string());
  if (!j.is_object() || j.value("task", std::string()) != "image" || !j.contains("backbone") ||
      !j["backbone"].is_string())
    return false;
  // Every backbone of the registry is a CNN with a last convolutional stage
  // (BackboneImpl::feature_map); text and face models are not in it.
  const std::string backbone = j["backbone"].get<std::string>();
  for (const BackboneSpec& row : backbone_registry())
    if (row.name == backbone) return true;
  return false;
}

std::vector<GradCamOverlay> grad_cam_overlays(const std::string& run_dir, const std::vector<std::string>& paths,
                                              const std::vector<std::string>& predicted) {
  GRAFT_CHECK(paths.size() == predicted.size(), "Grad-CAM: ", paths.size(), " images and ", predicted.size(),
              " predicted classes (expected one each)");
  LoadedModel loaded = load_model(run_dir);
  loaded.model->to(torch::kCPU);
  loaded.model->eval();
  const std::vector<std::string>& classes = loaded.info.classes;
  html::Thumbnails reader;
  std::vector<GradCamOverlay> out;
  for (size_t i = 0; i < paths.size(); ++i) {
    GradCamOverlay o;
    o.path = paths[i];
    o.target = predicted[i];
    const auto it = std::find(classes.begin(), classes.end(), predicted[i]);
    GRAFT_CHECK(it != classes.end(), "Grad-CAM: test_predictions.csv says '", paths[i], "' was predicted as '",
                predicted[i], "', which is not one of the ", classes.size(), " classes of the model in '",
                run_dir, "'");
    const cv::Mat img = reader.image(paths[i]);
    if (img.empty()) {
      o.error = str_cat("'", paths[i], "' is not a readable image (now)");
      out.push_back(std::move(o));
      continue;
    }
    const torch::Tensor x = eval_transform(img, loaded.info.input);
    const torch::Tensor target = torch::tensor({static_cast<int64_t>(it - classes.begin())}, torch::kInt64);
    const torch::Tensor cam = grad_cam(*loaded.model, x.unsqueeze(0), target)[0];
    o.png = grad_cam_png(grad_cam_crop_bgr(x, loaded.info.input), cam);
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace graft
