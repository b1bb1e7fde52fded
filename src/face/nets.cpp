#include "graft/face/nets.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/data/transforms.h"
#include "graft/weights/tfjs.h"

namespace graft {

namespace F = torch::nn::functional;

namespace {

std::map<std::string, torch::Tensor> by_name(const TensorList& list) {
  std::map<std::string, torch::Tensor> m;
  for (const auto& [name, t] : list) m[name] = t.to(torch::kFloat32).contiguous();
  return m;
}

torch::Tensor take(const std::map<std::string, torch::Tensor>& m, const std::string& name,
                   std::vector<int64_t> shape, const std::string& source) {
  auto it = m.find(name);
  GRAFT_CHECK(it != m.end(), source, ": no tensor \"", name, "\" (expected shape ",
              torch::IntArrayRef(shape), ")");
  GRAFT_CHECK(it->second.sizes() == torch::IntArrayRef(shape), source, ": tensor \"", name,
              "\" has shape ", it->second.sizes(), ", expected ", torch::IntArrayRef(shape));
  return it->second;
}


void check_input(const torch::Tensor& x, int64_t size, const char* net) {
  GRAFT_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == size && x.size(3) == size, net,
              ": input has shape ", x.sizes(), ", expected [N, 3, ", size, ", ", size, "]");
}

}  // namespace

torch::Tensor face_net_normalise(const torch::Tensor& x) {
  const auto mean = torch::tensor({122.782f, 117.001f, 104.298f}, x.options()).view({1, 3, 1, 1});
  return (x - mean) / 255.0f;
}

torch::Tensor pad_same(const torch::Tensor& x, int64_t k, int64_t stride) {
  auto total = [&](int64_t in) {
    const int64_t out = (in + stride - 1) / stride;
    return std::max<int64_t>(0, (out - 1) * stride + k - in);
  };
  const int64_t ph = total(x.size(2)), pw = total(x.size(3));
  if (ph == 0 && pw == 0) return x;
  return F::pad(x, F::PadFuncOptions({pw / 2, pw - pw / 2, ph / 2, ph - ph / 2}));
}

std::string default_face_models_dir() {
  const char* cache = std::getenv("GRAFT_CACHE_DIR");
  const char* home = std::getenv("HOME");
  std::string root = cache && *cache ? std::string(cache)
                                     : std::string(home ? home : ".") + "/.cache/graft";
  return root + "/face-api-1.7.15/model";
}

// ---------------------------------------------------------------- embedder

FaceEmbedderImpl::FaceEmbedderImpl(const TensorList& tfjs_weights, const std::string& source)
    : tf_(by_name(tfjs_weights)) {
  auto add_conv = [&](const std::string& prefix, int64_t k, int64_t cin, int64_t cout) {
    ConvScale p;
    p.filters = register_parameter(
        prefix + "/conv/filters",
        take(tf_, prefix + "/conv/filters", {k, k, cin, cout}, source).permute({3, 2, 0, 1}).contiguous(),
        false);
    p.bias = register_parameter(prefix + "/conv/bias", take(tf_, prefix + "/conv/bias", {cout}, source), false);
    p.scale = register_parameter(prefix + "/scale/weights",
                                 take(tf_, prefix + "/scale/weights", {cout}, source), false);
    p.shift = register_parameter(prefix + "/scale/biases",
                                 take(tf_, prefix + "/scale/biases", {cout}, source), false);
    convs_[prefix] = p;
  };
  add_conv("conv32_down", 7, 3, 32);
  for (const Block& b : blocks()) {
    add_conv(std::string(b.name) + "/conv1", 3, b.in, b.out);
    add_conv(std::string(b.name) + "/conv2", 3, b.out, b.out);
  }
  fc_ = register_parameter("fc", take(tf_, "fc", {256, 128}, source), false);
  tf_.clear();
}

const std::vector<FaceEmbedderImpl::Block>& FaceEmbedderImpl::blocks() {
  static const std::vector<Block> kBlocks = {
      {"conv32_1", 32, 32, false},      {"conv32_2", 32, 32, false},     {"conv32_3", 32, 32, false},
      {"conv64_down", 32, 64, true},    {"conv64_1", 64, 64, false},     {"conv64_2", 64, 64, false},
      {"conv64_3", 64, 64, false},      {"conv128_down", 64, 128, true}, {"conv128_1", 128, 128, false},
      {"conv128_2", 128, 128, false},   {"conv256_down", 128, 256, true}, {"conv256_1", 256, 256, false},
      {"conv256_2", 256, 256, false},   {"conv256_down_out", 256, 256, true}};
  return kBlocks;
}

std::pair<torch::Tensor, torch::Tensor> FaceEmbedderImpl::folded(const std::string& prefix) const {
  auto it = convs_.find(prefix);
  GRAFT_CHECK(it != convs_.end(), "face embedder: no convolution \"", prefix, "\"");
  torch::NoGradGuard no_grad;
  const ConvScale& p = it->second;
  // The fast path's formula (apply): the same float32 operations.
  return {(p.filters * p.scale.view({-1, 1, 1, 1})).detach(), (p.bias * p.scale + p.shift).detach()};
}

torch::Tensor FaceEmbedderImpl::apply(const ConvScale& p, torch::Tensor x, int stride,
                                      bool relu) const {
  // Stride 1 is TF "same" (3x3: one pixel each side); stride 2 is "valid".
  const int64_t pad = stride == 1 ? p.filters.size(2) / 2 : 0;
  if (fast_) {
    // ((x * w) + b) * s + t == x * (w s) + (b s + t), per output channel.
    const torch::Tensor w = p.filters * p.scale.view({-1, 1, 1, 1});
    const torch::Tensor b = p.bias * p.scale + p.shift;
    x = F::conv2d(x, w, F::Conv2dFuncOptions().stride(stride).padding(pad).bias(b));
    return relu ? torch::relu_(x) : x;
  }
  x = F::conv2d(x, p.filters, F::Conv2dFuncOptions().stride(stride).padding(pad));
  x = (x + p.bias.view({1, -1, 1, 1})) * p.scale.view({1, -1, 1, 1}) + p.shift.view({1, -1, 1, 1});
  return relu ? torch::relu(x) : x;
}

torch::Tensor FaceEmbedderImpl::residual(const std::string& prefix, torch::Tensor x) {
  auto out = apply(convs_.at(prefix + "/conv1"), x, 1, true);
  out = apply(convs_.at(prefix + "/conv2"), out, 1, false);
  return torch::relu(out + x);
}

torch::Tensor FaceEmbedderImpl::residual_down(const std::string& prefix, torch::Tensor x) {
  auto out = apply(convs_.at(prefix + "/conv1"), x, 2, true);
  out = apply(convs_.at(prefix + "/conv2"), out, 1, false);
  auto pooled = F::avg_pool2d(x, F::AvgPool2dFuncOptions(2).stride(2));
  // face-api appends a zero row and column to the convolution's output when
  // the 3x3 "valid" stride-2 convolution comes out smaller than the 2x2 pool
  // (8 -> 3 vs 4, 4 -> 1 vs 2), and zero channels to the shortcut.
  const int64_t dh = pooled.size(2) - out.size(2), dw = pooled.size(3) - out.size(3);
  if (dh != 0 || dw != 0) out = F::pad(out, F::PadFuncOptions({0, dw, 0, dh}));
  const int64_t dc = out.size(1) - pooled.size(1);
  if (dc > 0) pooled = F::pad(pooled, F::PadFuncOptions({0, 0, 0, 0, 0, dc}));
  return torch::relu(pooled + out);
}

torch::Tensor FaceEmbedderImpl::forward(torch::Tensor x) { return forward_last_stage(forward_trunk(x)); }

torch::Tensor FaceEmbedderImpl::forward_trunk(torch::Tensor x) {
  check_input(x, 150, "face embedder");
  torch::Tensor in = face_net_normalise(x.to(torch::kFloat32));
  if (fast_) in = in.contiguous(torch::MemoryFormat::ChannelsLast);
  auto out = apply(convs_.at("conv32_down"), in, 2, true);
  out = F::max_pool2d(out, F::MaxPool2dFuncOptions(3).stride(2));
  // Every block but the last, conv256_down_out (the last stage).
  for (size_t i = 0; i + 1 < blocks().size(); ++i)
    out = blocks()[i].down ? residual_down(blocks()[i].name, out) : residual(blocks()[i].name, out);
  return out;
}

torch::Tensor FaceEmbedderImpl::forward_last_stage(torch::Tensor trunk) {
  GRAFT_CHECK(trunk.dim() == 4 && trunk.size(1) == 256, "face embedder: last-stage input has shape ",
              trunk.sizes(), ", expected [N, 256, H, W]");
  auto out = residual_down(blocks().back().name, trunk);
  return out.mean({2, 3}).matmul(fc_);
}

bool FaceEmbedderImpl::in_last_stage(const std::string& name) {
  return name == "fc" || name.rfind("conv256_down_out/", 0) == 0;
}

void FaceEmbedderImpl::set_last_stage_trainable(bool trainable) {
  for (auto& p : named_parameters()) p.value().set_requires_grad(trainable && in_last_stage(p.key()));
}

std::vector<torch::Tensor> FaceEmbedderImpl::last_stage_parameters() {
  std::vector<torch::Tensor> out;
  for (auto& p : named_parameters())
    if (in_last_stage(p.key())) out.push_back(p.value());
  return out;
}

// ---------------------------------------------------------------- landmarks

FaceLandmarkNetImpl::FaceLandmarkNetImpl(const TensorList& tfjs_weights, const std::string& source) {
  const auto tf = by_name(tfjs_weights);
  conv0_filters_ = register_parameter(
      "dense0/conv0/filters",
      take(tf, "dense0/conv0/filters", {3, 3, 3, 32}, source).permute({3, 2, 0, 1}).contiguous(), false);
  conv0_bias_ = register_parameter("dense0/conv0/bias", take(tf, "dense0/conv0/bias", {32}, source), false);
  const int64_t channels[] = {32, 64, 128, 256};
  for (int b = 0; b < 4; ++b) {
    for (int c = 0; c < 4; ++c) {
      if (b == 0 && c == 0) continue;
      const std::string p = "dense" + std::to_string(b) + "/conv" + std::to_string(c);
      const int64_t cout = channels[b], cin = c == 0 ? channels[b - 1] : cout;
      SepConv s;
      s.depthwise = register_parameter(
          p + "/depthwise_filter",
          take(tf, p + "/depthwise_filter", {3, 3, cin, 1}, source).permute({2, 3, 0, 1}).contiguous(), false);
      s.pointwise = register_parameter(
          p + "/pointwise_filter",
          take(tf, p + "/pointwise_filter", {1, 1, cin, cout}, source).permute({3, 2, 0, 1}).contiguous(), false);
      s.bias = register_parameter(p + "/bias", take(tf, p + "/bias", {cout}, source), false);
      seps_[p] = s;
    }
  }
  fc_weights_ = register_parameter("fc/weights", take(tf, "fc/weights", {256, 136}, source), false);
  fc_bias_ = register_parameter("fc/bias", take(tf, "fc/bias", {136}, source), false);
}

torch::Tensor FaceLandmarkNetImpl::sep_conv(const SepConv& p, torch::Tensor x, int stride) const {
  x = F::conv2d(pad_same(x, 3, stride), p.depthwise,
                F::Conv2dFuncOptions().stride(stride).groups(x.size(1)));
  return F::conv2d(x, p.pointwise) + p.bias.view({1, -1, 1, 1});
}

torch::Tensor FaceLandmarkNetImpl::dense_block(int block, torch::Tensor x, bool first) {
  const std::string p = "dense" + std::to_string(block);
  torch::Tensor out1;
  if (first) {
    out1 = F::conv2d(pad_same(x, 3, 2), conv0_filters_, F::Conv2dFuncOptions().stride(2)) +
           conv0_bias_.view({1, -1, 1, 1});
  } else {
    out1 = sep_conv(seps_.at(p + "/conv0"), x, 2);
  }
  out1 = torch::relu(out1);
  auto out2 = sep_conv(seps_.at(p + "/conv1"), out1, 1);
  auto in3 = torch::relu(out1 + out2);
  auto out3 = sep_conv(seps_.at(p + "/conv2"), in3, 1);
  auto in4 = torch::relu(out1 + (out2 + out3));
  auto out4 = sep_conv(seps_.at(p + "/conv3"), in4, 1);
  return torch::relu(out1 + (out2 + (out3 + out4)));
}

torch::Tensor FaceLandmarkNetImpl::forward(torch::Tensor x) {
  check_input(x, 112, "face landmark net");
  auto out = dense_block(0, face_net_normalise(x.to(torch::kFloat32)), true);
  for (int b = 1; b < 4; ++b) out = dense_block(b, out, false);
  out = F::avg_pool2d(out, F::AvgPool2dFuncOptions(7).stride(2));
  return out.flatten(1).matmul(fc_weights_) + fc_bias_;
}

// ---------------------------------------------------------------- loading

namespace {

std::string manifest_path(const std::string& models_dir, const std::string& model) {
  const std::string path = models_dir + "/" + model + "-weights_manifest.json";
  GRAFT_CHECK(std::filesystem::exists(path), "face models: ", path,
              " is missing (run scripts/face_models.sh, or pass --face-models DIR)");
  return path;
}

}  // namespace

FaceEmbedder load_face_embedder(const std::string& models_dir) {
  const std::string path = manifest_path(models_dir, "face_recognition_model");
  FaceEmbedder net(read_tfjs_weights(path), path);
  net->eval();
  return net;
}

FaceLandmarkNet load_face_landmark_net(const std::string& models_dir) {
  const std::string path = manifest_path(models_dir, "face_landmark_68_model");
  FaceLandmarkNet net(read_tfjs_weights(path), path);
  net->eval();
  return net;
}

void save_face_embedder_weights(FaceEmbedder& net, const std::string& path) {
  TensorList tensors;
  for (const auto& p : net->named_parameters()) tensors.push_back({p.key(), p.value().detach().to(torch::kCPU)});
  save_safetensors(path, tensors, {{"format", "graft-face-embedder"}, {"base", "face-api-1.7.15/face_recognition_model"}});
}

void load_face_embedder_weights(FaceEmbedder& net, const std::string& path) {
  const SafetensorsFile file = load_safetensors(path);
  std::map<std::string, torch::Tensor> by;
  for (const auto& [name, t] : file.tensors) by[name] = t;
  auto params = net->named_parameters();
  for (const auto& [name, t] : by)
    GRAFT_CHECK(params.contains(name), path, ": unexpected tensor \"", name, "\" (not a face embedder parameter)");
  torch::NoGradGuard no_grad;
  for (auto& p : params) {
    auto it = by.find(p.key());
    GRAFT_CHECK(it != by.end(), path, ": no tensor \"", p.key(), "\" (expected shape ", p.value().sizes(), ")");
    GRAFT_CHECK(it->second.sizes() == p.value().sizes() && it->second.scalar_type() == torch::kFloat32, path,
                ": tensor \"", p.key(), "\" is ", it->second.scalar_type(), " ", it->second.sizes(),
                ", expected Float ", p.value().sizes());
    p.value().copy_(it->second);
  }
}

std::string face_model_sha256(const std::string& models_dir, const std::string& model) {
  const std::string path = manifest_path(models_dir, model);
  std::string all = read_file(path);
  const auto manifest = parse_json(all, "'" + path + "'");
  GRAFT_CHECK(manifest.is_array(), path, ": not a TF.js weights manifest (expected a JSON array)");
  for (const auto& group : manifest) {
    for (const auto& shard : group.at("paths")) all += read_file(models_dir + "/" + shard.get<std::string>());
  }
  return sha256_hex(all);
}

// ---------------------------------------------------------------- input

torch::Tensor face_net_input(const cv::Mat& image, int size, bool centre) {
  GRAFT_CHECK(image.depth() == CV_8U && (image.channels() == 1 || image.channels() == 3),
              "face input: expected an 8-bit grey or RGB image, got ", image.channels(),
              " channels of depth ", image.depth());
  GRAFT_CHECK(!image.empty(), "face input: empty image");
  const cv::Mat rgb = to_channels(image, 3);
  const int h = rgb.rows, w = rgb.cols, side = std::max(h, w);
  const int diff = side - std::min(h, w);
  const int after = centre ? (diff + 1) / 2 : diff;  // Math.round(diff * 0.5)
  const int before = diff - after;
  const int top = h < w ? before : 0, left = w < h ? before : 0;
  // The padded square, in float (the values stay integers, as in TF.js).
  std::vector<float> square(static_cast<size_t>(side) * side * 3, 0.0f);
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = rgb.ptr<uint8_t>(y);
    float* dst = &square[(static_cast<size_t>(y + top) * side + left) * 3];
    for (int i = 0; i < w * 3; ++i) dst[i] = row[i];
  }
  auto out = torch::empty({3, size, size}, torch::kFloat32);
  auto acc = out.accessor<float, 3>();
  if (side == size) {
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x)
        for (int c = 0; c < 3; ++c) acc[c][y][x] = square[(static_cast<size_t>(y) * side + x) * 3 + c];
    return out;
  }
  // tfjs-backend-cpu's resizeBilinear without align_corners or half-pixel
  // centres: source = dst * in / out, interpolated in double, stored in float.
  const double ratio = static_cast<double>(side) / size;
  auto at = [&](int y, int x, int c) { return static_cast<double>(square[(static_cast<size_t>(y) * side + x) * 3 + c]); };
  for (int y = 0; y < size; ++y) {
    const double sy = ratio * y;
    const int y0 = std::max(0, static_cast<int>(std::floor(sy)));
    const int y1 = std::min(side - 1, static_cast<int>(std::ceil(sy)));
    const double fy = sy - y0;
    for (int x = 0; x < size; ++x) {
      const double sx = ratio * x;
      const int x0 = std::max(0, static_cast<int>(std::floor(sx)));
      const int x1 = std::min(side - 1, static_cast<int>(std::ceil(sx)));
      const double fx = sx - x0;
      for (int c = 0; c < 3; ++c) {
        const double top_v = at(y0, x0, c) + (at(y0, x1, c) - at(y0, x0, c)) * fx;
        const double bottom_v = at(y1, x0, c) + (at(y1, x1, c) - at(y1, x0, c)) * fx;
        acc[c][y][x] = static_cast<float>(top_v + (bottom_v - top_v) * fy);
      }
    }
  }
  return out;
}

std::vector<cv::Point2f> face_landmarks(FaceLandmarkNet& net, const cv::Mat& image) {
  torch::NoGradGuard no_grad;
  const auto out = net->forward(face_net_input(image, 112).unsqueeze(0))[0].to(torch::kFloat64);
  const auto v = out.accessor<double, 1>();
  // As FaceLandmark68NetBase.postProcess: the image scaled to fit 112, then
  // the centring padding removed, then relative to the scaled size.
  const double size = 112.0, w = image.cols, h = image.rows;
  const double scale = size / std::max(w, h), sw = w * scale, sh = h * scale;
  const double pad_x = sw < sh ? std::abs(sw - sh) / 2 : 0.0;
  const double pad_y = sh < sw ? std::abs(sw - sh) / 2 : 0.0;
  std::vector<cv::Point2f> points(68);
  for (int i = 0; i < 68; ++i) {
    points[i].x = static_cast<float>((v[2 * i] * size - pad_x) / sw * w);
    points[i].y = static_cast<float>((v[2 * i + 1] * size - pad_y) / sh * h);
  }
  return points;
}

}  // namespace graft
