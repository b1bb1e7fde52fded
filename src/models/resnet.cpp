// torchvision ResNet-18/34/50 (v1.5: the stride of a bottleneck is on its 3x3
// convolution). Module names follow torchvision/models/resnet.py.

#include "graft/core/error.h"
#include "graft/models/families.h"

namespace graft {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

/// Two 3x3 convolutions (ResNet-18/34).
class BasicBlockImpl : public nn::Module {
 public:
  static constexpr int64_t kExpansion = 1;

  BasicBlockImpl(int64_t in, int64_t planes, int64_t stride, nn::Sequential downsample)
      : conv1_(register_module("conv1", conv(in, planes, 3, stride, 1))),
        bn1_(register_module("bn1", FoldableBatchNorm2d(planes))),
        conv2_(register_module("conv2", conv(planes, planes, 3, 1, 1))),
        bn2_(register_module("bn2", FoldableBatchNorm2d(planes))),
        downsample_(downsample) {
    if (downsample_) register_module("downsample", downsample_);
  }

  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor out = torch::relu(bn1_(conv1_(x)));
    out = bn2_(conv2_(out));
    return torch::relu(out + (downsample_ ? downsample_->forward(x) : x));
  }

 private:
  nn::Conv2d conv1_;
  FoldableBatchNorm2d bn1_;
  nn::Conv2d conv2_;
  FoldableBatchNorm2d bn2_;
  nn::Sequential downsample_;
};
TORCH_MODULE(BasicBlock);

/// 1x1 reduce, 3x3 (strided), 1x1 expand by 4 (ResNet-50).
class BottleneckImpl : public nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;

  BottleneckImpl(int64_t in, int64_t planes, int64_t stride, nn::Sequential downsample)
      : conv1_(register_module("conv1", conv(in, planes, 1, 1, 0))),
        bn1_(register_module("bn1", FoldableBatchNorm2d(planes))),
        conv2_(register_module("conv2", conv(planes, planes, 3, stride, 1))),
        bn2_(register_module("bn2", FoldableBatchNorm2d(planes))),
        conv3_(register_module("conv3", conv(planes, planes * kExpansion, 1, 1, 0))),
        bn3_(register_module("bn3", FoldableBatchNorm2d(planes * kExpansion))),
        downsample_(downsample) {
    if (downsample_) register_module("downsample", downsample_);
  }

  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor out = torch::relu(bn1_(conv1_(x)));
    out = torch::relu(bn2_(conv2_(out)));
    out = bn3_(conv3_(out));
    return torch::relu(out + (downsample_ ? downsample_->forward(x) : x));
  }

 private:
  nn::Conv2d conv1_;
  FoldableBatchNorm2d bn1_;
  nn::Conv2d conv2_;
  FoldableBatchNorm2d bn2_;
  nn::Conv2d conv3_;
  FoldableBatchNorm2d bn3_;
  nn::Sequential downsample_;
};
TORCH_MODULE(Bottleneck);

class ResNetImpl : public BackboneImpl {
 public:
  ResNetImpl(int depth, int64_t num_classes) {
    std::vector<int64_t> blocks;
    bool bottleneck = false;
    switch (depth) {
      case 18: blocks = {2, 2, 2, 2}; break;
      case 34: blocks = {3, 4, 6, 3}; break;
      case 50:
        blocks = {3, 4, 6, 3};
        bottleneck = true;
        break;
      default:
        GRAFT_CHECK(false, "ResNet depth ", depth, " is not supported (expected 18, 34 or 50)");
    }
    conv1_ = register_module("conv1", conv(3, 64, 7, 2, 3));
    bn1_ = register_module("bn1", FoldableBatchNorm2d(64));
    int64_t in = 64;
    const int64_t planes[4] = {64, 128, 256, 512};
    for (int i = 0; i < 4; ++i) {
      layers_[i] =
          register_module("layer" + std::to_string(i + 1),
                          make_layer(in, planes[i], blocks[i], i == 0 ? 1 : 2, bottleneck));
    }
    const int64_t dim = 512 * (bottleneck ? BottleneckImpl::kExpansion : 1);
    init_classifier(*this, "fc", "fc", nn::AnyModule(nn::Linear(dim, num_classes)), dim);

    for (auto& module : modules(/*include_self=*/false)) {
      if (auto* c = module->as<nn::Conv2d>()) {
        nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
      } else if (auto* b = module->as<FoldableBatchNorm2d>()) {
        nn::init::ones_(b->weight);
        nn::init::zeros_(b->bias);
      }
    }
  }

  torch::Tensor features(torch::Tensor x) override {
    x = torch::relu(bn1_(conv1_(x)));
    x = torch::max_pool2d(x, 3, 2, 1);
    for (auto& layer : layers_) x = layer->forward(x);
    return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  }

  std::vector<Stage> stages() const override {
    return {{"stem", {"conv1", "bn1"}},
            {"layer1", {"layer1"}},
            {"layer2", {"layer2"}},
            {"layer3", {"layer3"}},
            {"layer4", {"layer4"}}};
  }

 private:
  /// A stage of `count` blocks; the first one changes stride and width, with
  /// a 1x1 convolution + BN ("downsample") on its shortcut when needed.
  nn::Sequential make_layer(int64_t& in, int64_t planes, int64_t count, int64_t stride,
                            bool bottleneck) {
    const int64_t expansion = bottleneck ? BottleneckImpl::kExpansion : 1;
    nn::Sequential layer;
    for (int64_t i = 0; i < count; ++i) {
      const int64_t s = i == 0 ? stride : 1;
      nn::Sequential downsample = nullptr;
      if (s != 1 || in != planes * expansion) {
        downsample = nn::Sequential(conv(in, planes * expansion, 1, s, 0),
                                    FoldableBatchNorm2d(planes * expansion));
      }
      if (bottleneck) {
        layer->push_back(Bottleneck(in, planes, s, downsample));
      } else {
        layer->push_back(BasicBlock(in, planes, s, downsample));
      }
      in = planes * expansion;
    }
    return layer;
  }

  nn::Conv2d conv1_ = nullptr;
  FoldableBatchNorm2d bn1_ = nullptr;
  nn::Sequential layers_[4] = {nullptr, nullptr, nullptr, nullptr};
};

}  // namespace

Backbone make_resnet(int depth, int64_t num_classes) {
  // Through a base pointer: Backbone(make_shared<Derived>) would pick the holder's
  // forwarding constructor.
  std::shared_ptr<BackboneImpl> impl = std::make_shared<ResNetImpl>(depth, num_classes);
  return Backbone(impl);
}

}  // namespace graft
