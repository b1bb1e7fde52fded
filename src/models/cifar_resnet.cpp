// CIFAR ResNet-20/32/44/56 of He et al. (2016), section 4.2, with parameter
// names of akamaster/pytorch_resnet_cifar10 so its published weights load.

#include "graft/core/error.h"
#include "graft/models/families.h"

namespace graft {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

/// conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU. The shortcut is
/// option A: no parameters; when the shape changes, the input is subsampled
/// by 2 and zero-padded by planes/4 channels on each side.
class CifarBlockImpl : public nn::Module {
 public:
  CifarBlockImpl(int64_t in, int64_t planes, int64_t stride)
      : conv1_(register_module("conv1", conv3x3(in, planes, stride))),
        bn1_(register_module("bn1", FoldableBatchNorm2d(planes))),
        conv2_(register_module("conv2", conv3x3(planes, planes, 1))),
        bn2_(register_module("bn2", FoldableBatchNorm2d(planes))),
        pad_shortcut_(stride != 1 || in != planes),
        pad_(planes / 4) {}

  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor out = torch::relu(bn1_(conv1_(x)));
    out = bn2_(conv2_(out));
    torch::Tensor shortcut = x;
    if (pad_shortcut_) {
      using torch::indexing::None;
      using torch::indexing::Slice;
      shortcut = torch::constant_pad_nd(
          x.index({Slice(), Slice(), Slice(None, None, 2), Slice(None, None, 2)}),
          {0, 0, 0, 0, pad_, pad_}, 0);
    }
    return torch::relu(out + shortcut);
  }

 private:
  nn::Conv2d conv1_;
  FoldableBatchNorm2d bn1_;
  nn::Conv2d conv2_;
  FoldableBatchNorm2d bn2_;
  bool pad_shortcut_;
  int64_t pad_;
};
TORCH_MODULE(CifarBlock);

class CifarResNetImpl : public BackboneImpl {
 public:
  CifarResNetImpl(int depth, int64_t num_classes) {
    GRAFT_CHECK(depth == 20 || depth == 32 || depth == 44 || depth == 56, "CIFAR ResNet depth ",
                depth, " is not supported (expected 20, 32, 44 or 56)");
    const int64_t n = (depth - 2) / 6;
    conv1_ = register_module("conv1", conv3x3(3, 16, 1));
    bn1_ = register_module("bn1", FoldableBatchNorm2d(16));
    int64_t in = 16;
    const int64_t planes[3] = {16, 32, 64};
    for (int i = 0; i < 3; ++i) {
      nn::Sequential layer;
      for (int64_t b = 0; b < n; ++b) {
        layer->push_back(CifarBlock(in, planes[i], (i > 0 && b == 0) ? 2 : 1));
        in = planes[i];
      }
      layers_[i] = register_module("layer" + std::to_string(i + 1), layer);
    }
    init_classifier(*this, "linear", "linear", nn::AnyModule(nn::Linear(64, num_classes)), 64);

    // akamaster's _weights_init: kaiming_normal_ (fan_in, gain sqrt(2)) on the
    // weights of every convolution and linear layer; biases keep the default.
    for (auto& module : modules(/*include_self=*/false)) {
      if (auto* c = module->as<nn::Conv2d>()) {
        nn::init::kaiming_normal_(c->weight);
      } else if (auto* l = module->as<nn::Linear>()) {
        nn::init::kaiming_normal_(l->weight);
      }
    }
  }

  torch::Tensor features(torch::Tensor x) override {
    x = torch::relu(bn1_(conv1_(x)));
    for (auto& layer : layers_) x = layer->forward(x);
    return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  }

  std::vector<Stage> stages() const override {
    return {{"stem", {"conv1", "bn1"}},
            {"layer1", {"layer1"}},
            {"layer2", {"layer2"}},
            {"layer3", {"layer3"}}};
  }

 private:
  nn::Conv2d conv1_ = nullptr;
  FoldableBatchNorm2d bn1_ = nullptr;
  nn::Sequential layers_[3] = {nullptr, nullptr, nullptr};
};

}  // namespace

Backbone make_cifar_resnet(int depth, int64_t num_classes) {
  // Through a base pointer: Backbone(make_shared<Derived>) would pick the holder's
  // forwarding constructor.
  std::shared_ptr<BackboneImpl> impl = std::make_shared<CifarResNetImpl>(depth, num_classes);
  return Backbone(impl);
}

}  // namespace graft
