// ONNX export of image runs: graft's backbone families (src/models/) walked
// by their module names (torchvision's), with BatchNorm folded into the
// convolution before it, then the head of the classifier slot.

#include <cmath>

#include "graft/core/error.h"
#include "graft/eval/calibration.h"
#include "graft/export/onnx.h"
#include "graft/models/fast.h"
#include "graft/models/head.h"
#include "graft/models/registry.h"
#include "onnx_graph.h"

namespace graft {
namespace {

namespace nn = torch::nn;
using onnx_export::GraphWriter;
using onnx_export::set_attr;
using onnx_export::unsupported;

/// A value of the graph and its shape [batch, c, h, w] without the batch.
struct ImageValue {
  std::string name;
  int64_t c = 0, h = 0, w = 0;
};

/// The child `name` of `m` (whose path is `path`); graft::Error naming the
/// layer when absent.
std::shared_ptr<nn::Module> child_of(nn::Module& m, const std::string& path, const std::string& name) {
  for (const auto& item : m.named_children())
    if (item.key() == name) return item.value();
  throw Error(str_cat("ONNX export: layer '", path.empty() ? name : path + "." + name, "' is missing from the ",
                      m.name(), " being exported"));
}

bool has_child(nn::Module& m, const std::string& name) {
  for (const auto& item : m.named_children())
    if (item.key() == name) return true;
  return false;
}

int64_t two_d(const torch::ExpandingArray<2>& a, const std::string& what, const std::string& path) {
  GRAFT_CHECK((*a)[0] == (*a)[1], "ONNX export: layer '", path, "' has a non-square ", what, " (", (*a)[0], "x",
              (*a)[1], "), which graft's exporter does not write");
  return (*a)[0];
}

class ImageOnnxWriter {
 public:
  explicit ImageOnnxWriter(GraphWriter& g) : g_(g) {}

  /// Conv2d, with `bn` (may be null) folded into its weight and bias.
  ImageValue conv(const ImageValue& x, nn::Conv2dImpl& c, FoldableBatchNorm2dImpl* bn, const std::string& path) {
    const auto& o = c.options;
    GRAFT_CHECK(c10::holds_alternative<torch::enumtype::kZeros>(o.padding_mode()), "ONNX export: layer '", path,
                "' pads other than with zeros, which graft's exporter does not write");
    const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
    GRAFT_CHECK(pad, "ONNX export: layer '", path, "' uses 'same'/'valid' padding, which graft's exporter does not write");
    const int64_t k = two_d(o.kernel_size(), "kernel", path), s = two_d(o.stride(), "stride", path),
                  p = two_d(*pad, "padding", path), d = two_d(o.dilation(), "dilation", path);
    GRAFT_CHECK(o.in_channels() == x.c, "ONNX export: layer '", path, "' takes ", o.in_channels(),
                " channels but gets ", x.c);
    // A BatchNorm that FoldedBatchNorm bypassed is already in the convolution.
    if (bn && bn->bypassed()) bn = nullptr;
    torch::Tensor w = c.weight.detach().to(torch::kFloat64);
    torch::Tensor b = c.bias.defined() ? c.bias.detach().to(torch::kFloat64)
                                       : torch::zeros({o.out_channels()}, torch::kFloat64);
    if (bn) {
      GRAFT_CHECK(bn->options.track_running_stats() && bn->running_var.defined(), "ONNX export: layer '", path,
                  "''s BatchNorm keeps no running statistics, so it has no fixed form to fold");
      torch::Tensor var = bn->running_var.detach().to(torch::kFloat64);
      torch::Tensor mean = bn->running_mean.detach().to(torch::kFloat64);
      torch::Tensor scale = 1.0 / torch::sqrt(var + bn->options.eps());
      torch::Tensor shift = torch::zeros_like(mean);
      if (bn->weight.defined()) scale = scale * bn->weight.detach().to(torch::kFloat64);
      if (bn->bias.defined()) shift = bn->bias.detach().to(torch::kFloat64);
      w = w * scale.view({-1, 1, 1, 1});
      b = (b - mean) * scale + shift;
    }
    auto& n = g_.node("Conv", {x.name, g_.constant(path + ".weight", w), g_.constant(path + ".bias", b)}, path);
    set_attr(n, "kernel_shape", std::vector<int64_t>{k, k});
    set_attr(n, "strides", std::vector<int64_t>{s, s});
    set_attr(n, "pads", std::vector<int64_t>{p, p, p, p});
    set_attr(n, "dilations", std::vector<int64_t>{d, d});
    set_attr(n, "group", o.groups());
    auto side = [&](int64_t in) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; };
    return {n.output(0), o.out_channels(), side(x.h), side(x.w)};
  }

  /// BatchNorm2d on its own (not after a convolution).
  ImageValue batch_norm(const ImageValue& x, FoldableBatchNorm2dImpl& bn, const std::string& path) {
    if (bn.bypassed()) return x;  // folded into the convolution before it (FoldedBatchNorm)
    GRAFT_CHECK(bn.options.track_running_stats() && bn.running_var.defined(), "ONNX export: layer '", path,
                "' keeps no running statistics");
    torch::Tensor w = bn.weight.defined() ? bn.weight : torch::ones({x.c});
    torch::Tensor b = bn.bias.defined() ? bn.bias : torch::zeros({x.c});
    auto& n = g_.node("BatchNormalization",
                      {x.name, g_.constant(path + ".weight", w), g_.constant(path + ".bias", b),
                       g_.constant(path + ".running_mean", bn.running_mean),
                       g_.constant(path + ".running_var", bn.running_var)},
                      path);
    set_attr(n, "epsilon", static_cast<float>(bn.options.eps()));
    return {n.output(0), x.c, x.h, x.w};
  }

  ImageValue relu(const ImageValue& x, const std::string& path) {
    return {g_.op("Relu", {x.name}, path + ".relu"), x.c, x.h, x.w};
  }

  /// PyTorch's max pool; ceil mode as explicit end padding (padding is
  /// never a maximum in ONNX's MaxPool), with PyTorch's rule that the last
  /// window starts inside the input or its left padding.
  ImageValue max_pool(const ImageValue& x, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil,
                      const std::string& path) {
    std::vector<int64_t> sides;
    std::vector<int64_t> ends;
    for (int64_t in : {x.h, x.w}) {
      const int64_t span = in + 2 * p - d * (k - 1) - 1;
      int64_t out = (ceil ? (span + s - 1) / s : span / s) + 1;
      if (ceil && (out - 1) * s >= in + p) --out;
      sides.push_back(out);
      ends.push_back(std::max<int64_t>(0, (out - 1) * s + d * (k - 1) + 1 - in - p));
    }
    auto& n = g_.node("MaxPool", {x.name}, path);
    set_attr(n, "kernel_shape", std::vector<int64_t>{k, k});
    set_attr(n, "strides", std::vector<int64_t>{s, s});
    set_attr(n, "pads", std::vector<int64_t>{p, p, ends[0], ends[1]});
    if (d != 1) set_attr(n, "dilations", std::vector<int64_t>{d, d});
    return {n.output(0), x.c, sides[0], sides[1]};
  }

  ImageValue max_pool(const ImageValue& x, const nn::MaxPool2dOptions& o, const std::string& path) {
    return max_pool(x, two_d(o.kernel_size(), "kernel", path), two_d(o.stride(), "stride", path),
                    two_d(o.padding(), "padding", path), two_d(o.dilation(), "dilation", path), o.ceil_mode(), path);
  }

  /// adaptive_avg_pool2d to out_h x out_w, then flatten(1): [batch, c*out_h*out_w].
  std::string adaptive_avg_pool_flat(const ImageValue& x, int64_t out_h, int64_t out_w, const std::string& path) {
    if (out_h == 1 && out_w == 1) {
      return g_.op("Flatten", {g_.op("GlobalAveragePool", {x.name}, path)}, path + ".flatten");
    }
    if (x.h == out_h && x.w == out_w) return g_.op("Flatten", {x.name}, path + ".flatten");
    if (x.h % out_h == 0 && x.w % out_w == 0) {
      auto& n = g_.node("AveragePool", {x.name}, path);
      set_attr(n, "kernel_shape", std::vector<int64_t>{x.h / out_h, x.w / out_w});
      set_attr(n, "strides", std::vector<int64_t>{x.h / out_h, x.w / out_w});
      return g_.op("Flatten", {n.output(0)}, path + ".flatten");
    }
    // In general a fixed linear map of the h*w positions of each channel:
    // output cell (i, j) averages rows [floor(i*h/oh), ceil((i+1)*h/oh)) and
    // the columns alike, as ATen's adaptive pool does.
    torch::Tensor m = torch::zeros({x.h * x.w, out_h * out_w}, torch::kFloat64);
    for (int64_t i = 0; i < out_h; ++i) {
      const int64_t h0 = i * x.h / out_h, h1 = ((i + 1) * x.h + out_h - 1) / out_h;
      for (int64_t j = 0; j < out_w; ++j) {
        const int64_t w0 = j * x.w / out_w, w1 = ((j + 1) * x.w + out_w - 1) / out_w;
        const double share = 1.0 / static_cast<double>((h1 - h0) * (w1 - w0));
        for (int64_t a = h0; a < h1; ++a)
          for (int64_t b = w0; b < w1; ++b) m[a * x.w + b][i * out_w + j] = share;
      }
    }
    const std::string rows = g_.op("Reshape", {x.name, g_.ints(path + ".shape", {0, x.c, x.h * x.w})}, path + ".rows");
    const std::string pooled = g_.op("MatMul", {rows, g_.constant(path + ".map", m)}, path);
    return g_.op("Flatten", {pooled}, path + ".flatten");
  }

  std::string linear(const std::string& x, nn::LinearImpl& l, const std::string& path) {
    return onnx_export::linear_node(g_, x, l, path);
  }

  /// A Sequential of layers (VGG/AlexNet features, torchvision names):
  /// Conv2d (with the BatchNorm2d that follows folded), BatchNorm2d, ReLU,
  /// MaxPool2d, Dropout, and GoogLeNet's BasicConv2d (conv, bn, ReLU).
  ImageValue sequential(const ImageValue& in, nn::Module& seq, const std::string& path) {
    ImageValue x = in;
    const auto children = seq.named_children();
    for (size_t i = 0; i < children.size(); ++i) {
      nn::Module& m = *children[i].value();
      const std::string name = path + "." + children[i].key();
      x = layer(x, m, name, i + 1 < children.size() ? children[i + 1].value().get() : nullptr, &i);
    }
    return x;
  }

  /// One layer; `next` is the layer after it in its Sequential (a
  /// BatchNorm2d there is folded and *index advanced past it).
  ImageValue layer(const ImageValue& x, nn::Module& m, const std::string& path, nn::Module* next = nullptr,
                   size_t* index = nullptr) {
    if (auto* c = m.as<nn::Conv2d>()) {
      auto* bn = next ? next->as<FoldableBatchNorm2d>() : nullptr;
      if (bn && index) ++*index;
      return conv(x, *c, bn, path);
    }
    if (auto* bn = m.as<FoldableBatchNorm2d>()) return batch_norm(x, *bn, path);
    if (m.as<nn::ReLU>()) return relu(x, path);
    if (auto* p = m.as<nn::MaxPool2d>()) return max_pool(x, p->options, path);
    if (m.as<nn::Dropout>() || m.as<FastDropout>()) return x;  // identity in evaluation
    if (m.as<nn::Sequential>()) return sequential(x, m, path);
    if (has_child(m, "conv") && has_child(m, "bn") && m.named_children().size() == 2) {  // BasicConv2d
      auto* c = child_of(m, path, "conv")->as<nn::Conv2d>();
      auto* bn = child_of(m, path, "bn")->as<FoldableBatchNorm2d>();
      if (!c || !bn) unsupported(path, m);
      return relu(conv(x, *c, bn, path + ".conv"), path);
    }
    unsupported(path, m);
  }

  /// A residual block (resnet.cpp): conv1/bn1 ... convN/bnN with ReLUs
  /// between, the shortcut (downsample, option A's subsample and zero
  /// channels, or the input), Add, ReLU.
  ImageValue residual_block(const ImageValue& x, nn::Module& block, const std::string& path) {
    ImageValue out = x;
    int64_t stride = 1;
    size_t convs = 0;
    for (int i = 1; has_child(block, "conv" + std::to_string(i)); ++i) {
      const std::string n = std::to_string(i);
      auto* c = child_of(block, path, "conv" + n)->as<nn::Conv2d>();
      auto* bn = child_of(block, path, "bn" + n)->as<FoldableBatchNorm2d>();
      if (!c) unsupported(path + ".conv" + n, *child_of(block, path, "conv" + n));
      if (!bn) unsupported(path + ".bn" + n, *child_of(block, path, "bn" + n));
      if (convs > 0) out = relu(out, path + ".conv" + n);
      stride *= two_d(c->options.stride(), "stride", path + ".conv" + n);
      out = conv(out, *c, bn, path + ".conv" + n);
      ++convs;
    }
    GRAFT_CHECK(convs >= 2, "ONNX export: layer '", path, "' is not a residual block graft's exporter knows");
    for (const auto& item : block.named_children()) {
      const std::string& k = item.key();
      const bool known = k == "downsample" || ((k.rfind("conv", 0) == 0 || k.rfind("bn", 0) == 0) &&
                                               k.find_first_not_of("0123456789", k[0] == 'c' ? 4 : 2) == std::string::npos);
      if (!known) unsupported(path + "." + k, *item.value());
    }
    ImageValue shortcut = x;
    if (has_child(block, "downsample")) {
      shortcut = sequential(x, *child_of(block, path, "downsample"), path + ".downsample");
    } else if (stride != 1 || x.c != out.c) {
      // Option A (CIFAR ResNets): x[:, :, ::2, ::2], zero channels on both sides.
      GRAFT_CHECK(stride == 2 && (out.c - x.c) % 2 == 0 && out.c >= x.c, "ONNX export: layer '", path,
                  "' changes shape (", x.c, " to ", out.c, " channels, stride ", stride,
                  ") without a downsample that graft's exporter knows");
      const std::string sliced =
          g_.op("Slice", {x.name, g_.ints(path + ".starts", {0, 0}), g_.ints(path + ".ends", {INT64_MAX, INT64_MAX}),
                          g_.ints(path + ".axes", {2, 3}), g_.ints(path + ".steps", {2, 2})},
                path + ".subsample");
      const int64_t pad = (out.c - x.c) / 2;
      shortcut = {g_.op("Pad", {sliced, g_.ints(path + ".pads", {0, pad, 0, 0, 0, pad, 0, 0})}, path + ".pad"),
                  out.c, (x.h + 1) / 2, (x.w + 1) / 2};
    }
    GRAFT_CHECK(shortcut.c == out.c && shortcut.h == out.h && shortcut.w == out.w, "ONNX export: layer '", path,
                "': the shortcut (", shortcut.c, "x", shortcut.h, "x", shortcut.w, ") and the block (", out.c, "x",
                out.h, "x", out.w, ") differ in shape");
    const std::string sum = g_.op("Add", {out.name, shortcut.name}, path + ".add");
    return relu({sum, out.c, out.h, out.w}, path);
  }

  /// An Inception block (googlenet.cpp): four branches concatenated.
  ImageValue inception(const ImageValue& x, nn::Module& block, const std::string& path) {
    std::vector<std::string> outs;
    int64_t channels = 0;
    ImageValue last;
    for (const auto& item : block.named_children()) {
      last = layer(x, *item.value(), path + "." + item.key());
      outs.push_back(last.name);
      channels += last.c;
    }
    auto& n = g_.node("Concat", outs, path + ".concat");
    set_attr(n, "axis", int64_t{1});
    return {n.output(0), channels, last.h, last.w};
  }

  std::string head(const std::string& x, nn::Module& m, const std::string& path) {
    return onnx_export::head_nodes(g_, x, m, path);
  }

  GraphWriter& graph() { return g_; }

 private:
  GraphWriter& g_;
};

/// The pooled features of `model` (family `family`) for input `x`.
std::string backbone_features(ImageOnnxWriter& w, BackboneImpl& model, const std::string& family,
                              const ModelInfo& info, ImageValue x) {
  GraphWriter& g = w.graph();
  if (family == "resnet" || family == "cifar_resnet") {
    auto* c1 = child_of(model, "", "conv1")->as<nn::Conv2d>();
    auto* bn1 = child_of(model, "", "bn1")->as<FoldableBatchNorm2d>();
    if (!c1 || !bn1) unsupported("conv1", *child_of(model, "", "conv1"));
    x = w.relu(w.conv(x, *c1, bn1, "conv1"), "conv1");
    if (family == "resnet") x = w.max_pool(x, 3, 2, 1, 1, false, "maxpool");
    for (int i = 1; has_child(model, "layer" + std::to_string(i)); ++i) {
      const std::string name = "layer" + std::to_string(i);
      for (const auto& block : child_of(model, "", name)->named_children())
        x = w.residual_block(x, *block.value(), name + "." + block.key());
    }
    return w.adaptive_avg_pool_flat(x, 1, 1, "avgpool");
  }
  if (family == "vgg" || family == "alexnet") {
    x = w.sequential(x, *child_of(model, "", "features"), "features");
    auto* pool = child_of(model, "", "avgpool")->as<nn::AdaptiveAvgPool2d>();
    if (!pool) unsupported("avgpool", *child_of(model, "", "avgpool"));
    const auto& size = pool->options.output_size();
    GRAFT_CHECK((*size)[0] && (*size)[1], "ONNX export: layer 'avgpool' has an open output size");
    std::string y = w.adaptive_avg_pool_flat(x, *(*size)[0], *(*size)[1], "avgpool");
    // classifier.0 .. .5: fc6 and fc7 with their ReLUs and dropouts; .6 is the slot.
    auto classifier = child_of(model, "", "classifier");
    for (const auto& item : classifier->named_children()) {
      const std::string name = "classifier." + item.key();
      if (name == model.classifier_name()) break;
      nn::Module& layer = *item.value();
      if (auto* l = layer.as<nn::Linear>()) y = w.linear(y, *l, name);
      else if (layer.as<nn::ReLU>()) y = g.op("Relu", {y}, name);
      else if (layer.as<nn::Dropout>() || layer.as<FastDropout>()) continue;
      else unsupported(name, layer);
    }
    return y;
  }
  if (family == "googlenet") {
    if (info.transform_input) {
      // torchvision's transform_input: x * std/0.5 + (mean - 0.5)/0.5 per channel.
      const std::string scaled = g.op(
          "Mul", {x.name, g.constant("transform_input.scale",
                                     torch::tensor({0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5}).view({1, 3, 1, 1}))},
          "transform_input.mul");
      x.name = g.op("Add",
                    {scaled, g.constant("transform_input.shift",
                                        torch::tensor({(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5})
                                            .view({1, 3, 1, 1}))},
                    "transform_input");
    }
    auto part = [&](const std::string& name) {
      auto m = child_of(model, "", name);
      x = name.rfind("inception", 0) == 0 ? w.inception(x, *m, name) : w.layer(x, *m, name);
    };
    part("conv1");
    x = w.max_pool(x, 3, 2, 0, 1, true, "maxpool1");
    part("conv2");
    part("conv3");
    x = w.max_pool(x, 3, 2, 0, 1, true, "maxpool2");
    for (const char* n : {"inception3a", "inception3b"}) part(n);
    x = w.max_pool(x, 3, 2, 0, 1, true, "maxpool3");
    for (const char* n : {"inception4a", "inception4b", "inception4c", "inception4d", "inception4e"}) part(n);
    x = w.max_pool(x, 2, 2, 0, 1, true, "maxpool4");
    for (const char* n : {"inception5a", "inception5b"}) part(n);
    return w.adaptive_avg_pool_flat(x, 1, 1, "avgpool");
  }
  throw Error(str_cat("ONNX export: backbone '", info.backbone, "' (family ", family,
                      ") has no ONNX exporter (expected the families resnet, cifar_resnet, vgg, alexnet, googlenet)"));
}

std::string json_floats(const std::array<float, 3>& v) {
  nlohmann::json j = nlohmann::json::array();
  for (float x : v) j.push_back(x);
  return j.dump();
}

}  // namespace

std::string image_model_onnx(BackboneImpl& model, const ModelInfo& info, double temperature,
                             const std::vector<std::pair<std::string, std::string>>& metadata) {
  torch::NoGradGuard no_grad;
  const std::string& family = find_backbone(info.backbone).family;
  onnx::ModelProto proto = onnx_export::new_model("graft_" + info.backbone);
  onnx::GraphProto* graph = proto.mutable_graph();
  GraphWriter g(graph);
  ImageOnnxWriter w(g);
  const int64_t side = info.input.size;
  onnx_export::add_value_info(graph->add_input(), "input", onnx::TensorProto::FLOAT, {-1, info.input.channels, side, side});
  const std::string features =
      backbone_features(w, model, family, info, ImageValue{"input", info.input.channels, side, side});
  auto modules = model.named_modules();
  auto* slot = modules.find(model.classifier_name());
  GRAFT_CHECK(slot, "ONNX export: the classifier slot '", model.classifier_name(), "' is missing");
  const std::string logits = w.head(features, **slot, model.classifier_name());
  onnx_export::classifier_outputs(g, logits, static_cast<int64_t>(info.classes.size()), temperature);

  std::vector<std::pair<std::string, std::string>> meta = {
      {"graft_version", GRAFT_VERSION},
      {"task", info.task},
      {"backbone", info.backbone},
      {"head", info.head},
      {"classes", nlohmann::json(info.classes).dump()},
      {"input_layout", "NCHW float32"},
      {"input_size", std::to_string(info.input.size)},
      {"resize", std::to_string(info.input.resize)},
      {"image_channels", std::to_string(info.input.channels)},
      {"mean", json_floats(info.input.mean)},
      {"std", json_floats(info.input.std)},
      {"preprocessing",
       str_cat("shorter side resized to ", info.input.resize, " (bilinear, antialiased as Pillow), centre crop ",
               info.input.size, "x", info.input.size, ", ", info.input.channels == 1 ? "grey" : "RGB",
               ", pixels / 255, then (x - mean) / std per channel")},
      {"temperature", str_cat(temperature)},
      {"outputs", "logits [batch, classes]; probabilities = softmax(logits / temperature)"},
  };
  meta.insert(meta.end(), metadata.begin(), metadata.end());
  return onnx_export::finish_model(proto, meta);
}

std::string image_run_onnx(const std::string& run) {
  LoadedModel loaded = load_model(run);
  loaded.model->eval();
  const RunCalibration calibration = read_run_calibration(run);
  return image_model_onnx(*loaded.model, loaded.info, calibration.temperature, {{"run", run}});
}

}  // namespace graft
