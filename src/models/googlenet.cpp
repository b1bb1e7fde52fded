// torchvision GoogLeNet (torchvision/models/googlenet.py) without the
// auxiliary classifiers, with or without torchvision's transform_input.

#include "graft/models/families.h"

namespace graft {
namespace {

namespace nn = torch::nn;

/// Convolution without bias, BatchNorm (eps 0.001), ReLU.
class BasicConv2dImpl : public nn::Module {
 public:
  BasicConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0)
      : conv_(register_module(
            "conv",
            nn::Conv2d(
                nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false)))),
        bn_(register_module("bn", FoldableBatchNorm2d(nn::BatchNorm2dOptions(out).eps(0.001)))) {}

  torch::Tensor forward(torch::Tensor x) { return torch::relu(bn_(conv_(x))); }

 private:
  nn::Conv2d conv_;
  FoldableBatchNorm2d bn_;
};
TORCH_MODULE(BasicConv2d);

nn::MaxPool2d ceil_pool(int64_t kernel, int64_t stride, int64_t padding = 0) {
  return nn::MaxPool2d(
      nn::MaxPool2dOptions(kernel).stride(stride).padding(padding).ceil_mode(true));
}

/// Four branches concatenated along channels. As in torchvision, branch3 uses
/// a 3x3 convolution where the paper has 5x5 (pytorch/vision#906); published
/// weights depend on it.
class InceptionImpl : public nn::Module {
 public:
  InceptionImpl(int64_t in, int64_t ch1x1, int64_t ch3x3red, int64_t ch3x3, int64_t ch5x5red,
                int64_t ch5x5, int64_t pool_proj)
      : branch1_(register_module("branch1", BasicConv2d(in, ch1x1, 1))),
        branch2_(register_module("branch2", nn::Sequential(BasicConv2d(in, ch3x3red, 1),
                                                           BasicConv2d(ch3x3red, ch3x3, 3, 1, 1)))),
        branch3_(register_module("branch3", nn::Sequential(BasicConv2d(in, ch5x5red, 1),
                                                           BasicConv2d(ch5x5red, ch5x5, 3, 1, 1)))),
        branch4_(register_module(
            "branch4", nn::Sequential(ceil_pool(3, 1, 1), BasicConv2d(in, pool_proj, 1)))) {}

  torch::Tensor forward(torch::Tensor x) {
    return torch::cat(
        {branch1_(x), branch2_->forward(x), branch3_->forward(x), branch4_->forward(x)}, 1);
  }

 private:
  BasicConv2d branch1_;
  nn::Sequential branch2_, branch3_, branch4_;
};
TORCH_MODULE(Inception);

class GoogLeNetImpl : public BackboneImpl {
 public:
  GoogLeNetImpl(int64_t num_classes, bool transform) : transform_input_(transform) {
    conv1_ = register_module("conv1", BasicConv2d(3, 64, 7, 2, 3));
    conv2_ = register_module("conv2", BasicConv2d(64, 64, 1));
    conv3_ = register_module("conv3", BasicConv2d(64, 192, 3, 1, 1));
    auto inception = [this](const std::string& name, int64_t in, int64_t a, int64_t b, int64_t c,
                            int64_t d, int64_t e, int64_t f) {
      return register_module("inception" + name, Inception(in, a, b, c, d, e, f));
    };
    inception3_ = {inception("3a", 192, 64, 96, 128, 16, 32, 32),
                   inception("3b", 256, 128, 128, 192, 32, 96, 64)};
    inception4_ = {inception("4a", 480, 192, 96, 208, 16, 48, 64),
                   inception("4b", 512, 160, 112, 224, 24, 64, 64),
                   inception("4c", 512, 128, 128, 256, 24, 64, 64),
                   inception("4d", 512, 112, 144, 288, 32, 64, 64),
                   inception("4e", 528, 256, 160, 320, 32, 128, 128)};
    inception5_ = {inception("5a", 832, 256, 160, 320, 32, 128, 128),
                   inception("5b", 832, 384, 192, 384, 48, 128, 128)};
    dropout_ = register_module("dropout", nn::Dropout(0.2));
    init_classifier(*this, "fc", "fc", nn::AnyModule(nn::Linear(1024, num_classes)), 1024);

    // torchvision: truncated normal (std 0.01, cut at +-2, i.e. +-200 std,
    // so effectively a plain normal) for convolutions and linear layers.
    for (auto& module : modules(/*include_self=*/false)) {
      if (auto* c = module->as<nn::Conv2d>()) {
        nn::init::normal_(c->weight, 0.0, 0.01);
      } else if (auto* l = module->as<nn::Linear>()) {
        nn::init::normal_(l->weight, 0.0, 0.01);
      } else if (auto* b = module->as<FoldableBatchNorm2d>()) {
        nn::init::ones_(b->weight);
        nn::init::zeros_(b->bias);
      }
    }
  }

  torch::Tensor feature_map(torch::Tensor x) override {
    if (transform_input_) x = transform_input(x);
    x = torch::max_pool2d(conv1_(x), 3, 2, 0, 1, /*ceil_mode=*/true);
    x = conv3_(conv2_(x));
    x = torch::max_pool2d(x, 3, 2, 0, 1, true);
    for (auto& m : inception3_) x = m(x);
    x = torch::max_pool2d(x, 3, 2, 0, 1, true);
    for (auto& m : inception4_) x = m(x);
    x = torch::max_pool2d(x, 2, 2, 0, 1, true);
    for (auto& m : inception5_) x = m(x);
    return x;
  }

  torch::Tensor pool_features(torch::Tensor map) override {
    return dropout_(torch::adaptive_avg_pool2d(map, {1, 1}).flatten(1));
  }

  /// torchvision's GoogLeNet._transform_input: inputs normalised with
  /// ImageNet's mean/std become inputs normalised with mean = std = 0.5, what
  /// the published weights (ported from TensorFlow) expect. Per channel c,
  /// x * (std_c / 0.5) + (mean_c - 0.5) / 0.5, with torchvision's constants
  /// computed in double as Python does; elementwise, so the memory format
  /// (channels-last) is kept. Not parameters or buffers: torchvision's
  /// state_dict has none for it.
  static torch::Tensor transform_input(const torch::Tensor& x) {
    const auto options = torch::TensorOptions().dtype(x.scalar_type()).device(x.device());
    const torch::Tensor scale =
        torch::tensor({0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5}, torch::kFloat64).to(options);
    const torch::Tensor shift = torch::tensor(
        {(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5}, torch::kFloat64).to(options);
    return x * scale.view({1, 3, 1, 1}) + shift.view({1, 3, 1, 1});
  }

  bool transforms_input() const { return transform_input_; }

  std::vector<Stage> stages() const override {
    return {
        {"stem", {"conv1", "conv2", "conv3"}},
        {"inception3", {"inception3a", "inception3b"}},
        {"inception4", {"inception4a", "inception4b", "inception4c", "inception4d", "inception4e"}},
        {"inception5", {"inception5a", "inception5b"}}};
  }

 private:
  BasicConv2d conv1_ = nullptr, conv2_ = nullptr, conv3_ = nullptr;
  std::vector<Inception> inception3_, inception4_, inception5_;
  nn::Dropout dropout_ = nullptr;
  bool transform_input_;
};

}  // namespace

bool is_googlenet(const BackboneImpl& model) { return dynamic_cast<const GoogLeNetImpl*>(&model) != nullptr; }

bool googlenet_transforms_input(const BackboneImpl& model) {
  const auto* g = dynamic_cast<const GoogLeNetImpl*>(&model);
  return g && g->transforms_input();
}

Backbone make_googlenet(int64_t num_classes, bool transform_input) {
  // Through a base pointer: Backbone(make_shared<Derived>) would pick the holder's
  // forwarding constructor.
  std::shared_ptr<BackboneImpl> impl =
      std::make_shared<GoogLeNetImpl>(num_classes, transform_input);
  return Backbone(impl);
}

}  // namespace graft
