// The residual networks: torchvision ResNet-18/34/50 (v1.5: the stride of a
// bottleneck is on its 3x3 convolution), module names as
// torchvision/models/resnet.py; and the CIFAR ResNet-20/32/44/56 of He et al.
// (2016), section 4.2, parameter names as akamaster/pytorch_resnet_cifar10 so
// its published weights load. Both are a stem, stages of residual blocks, a
// global average pool and a linear classifier.

#include "graft/core/error.h"
#include "graft/models/families.h"

namespace graft {
namespace {

namespace nn = torch::nn;

/// A bias-free convolution padded to keep the size at stride 1 (kernel 1, 3, 7).
nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

/// What the shortcut of a block that changes shape is.
enum class Shortcut {
  /// torchvision's "downsample": a strided 1x1 convolution and a BatchNorm.
  kProjection,
  /// The CIFAR paper's option A, without parameters: the input subsampled by
  /// 2 and zero-padded by planes/4 channels on each side.
  kZeroPad,
};

/// conv1-bn1-ReLU-...-convN-bnN plus the shortcut, then a ReLU. Basic
/// (ResNet-18/34, CIFAR): two 3x3 convolutions, the first strided.
/// Bottleneck (ResNet-50): 1x1 reduce, 3x3 (strided), 1x1 expand by 4.
class ResidualBlockImpl : public nn::Module {
 public:
  static constexpr int64_t kBottleneckExpansion = 4;

  ResidualBlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck, Shortcut shortcut) {
    const int64_t out = bottleneck ? planes * kBottleneckExpansion : planes;
    struct Layer {
      int64_t in, out, kernel, stride;
    };
    const std::vector<Layer> layers =
        bottleneck ? std::vector<Layer>{{in, planes, 1, 1}, {planes, planes, 3, stride}, {planes, out, 1, 1}}
                   : std::vector<Layer>{{in, planes, 3, stride}, {planes, planes, 3, 1}};
    for (size_t i = 0; i < layers.size(); ++i) {
      const Layer& l = layers[i];
      const std::string n = std::to_string(i + 1);
      convs_.push_back(register_module("conv" + n, conv(l.in, l.out, l.kernel, l.stride)));
      bns_.push_back(register_module("bn" + n, FoldableBatchNorm2d(l.out)));
    }
    if (stride == 1 && in == out) return;
    if (shortcut == Shortcut::kProjection) {
      downsample_ = register_module("downsample",
                                    nn::Sequential(conv(in, out, 1, stride), FoldableBatchNorm2d(out)));
    } else {
      pad_ = planes / 4;
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor out = x;
    for (size_t i = 0; i < convs_.size(); ++i) {
      out = bns_[i](convs_[i](out));
      if (i + 1 < convs_.size()) out = torch::relu(out);
    }
    return torch::relu(out + shortcut(x));
  }

 private:
  torch::Tensor shortcut(const torch::Tensor& x) {
    if (downsample_) return downsample_->forward(x);
    if (pad_ == 0) return x;
    using torch::indexing::None;
    using torch::indexing::Slice;
    return torch::constant_pad_nd(x.index({Slice(), Slice(), Slice(None, None, 2), Slice(None, None, 2)}),
                                  {0, 0, 0, 0, pad_, pad_}, 0);
  }

  std::vector<nn::Conv2d> convs_;
  std::vector<FoldableBatchNorm2d> bns_;
  nn::Sequential downsample_ = nullptr;
  int64_t pad_ = 0;
};
TORCH_MODULE(ResidualBlock);

/// The shape of a residual network.
struct ResNetShape {
  /// torchvision: 7x7 stride-2 convolution and a 3x3 stride-2 max pool, 64
  /// channels; CIFAR: 3x3 stride-1 convolution, 16 channels.
  bool imagenet_stem = true;
  std::vector<int64_t> planes;  ///< per stage; every stage but the first halves the size
  std::vector<int64_t> blocks;  ///< per stage
  bool bottleneck = false;
  Shortcut shortcut = Shortcut::kProjection;
  std::string classifier;  ///< "fc" (torchvision) or "linear" (akamaster)
};

class ResNetImpl : public BackboneImpl {
 public:
  ResNetImpl(const ResNetShape& shape, int64_t num_classes) : imagenet_stem_(shape.imagenet_stem) {
    int64_t in = shape.imagenet_stem ? 64 : 16;
    conv1_ = register_module("conv1",
                             conv(3, in, shape.imagenet_stem ? 7 : 3, shape.imagenet_stem ? 2 : 1));
    bn1_ = register_module("bn1", FoldableBatchNorm2d(in));
    for (size_t i = 0; i < shape.planes.size(); ++i) {
      nn::Sequential layer;
      for (int64_t b = 0; b < shape.blocks[i]; ++b) {
        const int64_t stride = (i > 0 && b == 0) ? 2 : 1;
        layer->push_back(ResidualBlock(in, shape.planes[i], stride, shape.bottleneck, shape.shortcut));
        in = shape.planes[i] * (shape.bottleneck ? ResidualBlockImpl::kBottleneckExpansion : 1);
      }
      layers_.push_back(register_module("layer" + std::to_string(i + 1), layer));
    }
    init_classifier(*this, shape.classifier, shape.classifier,
                    nn::AnyModule(nn::Linear(in, num_classes)), in);

    for (auto& module : modules(/*include_self=*/false)) {
      if (shape.imagenet_stem) {
        // torchvision: kaiming_normal_ (fan_out, ReLU) on convolutions, BN
        // weights 1 and biases 0.
        if (auto* c = module->as<nn::Conv2d>()) {
          nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
        } else if (auto* b = module->as<FoldableBatchNorm2d>()) {
          nn::init::ones_(b->weight);
          nn::init::zeros_(b->bias);
        }
      } else if (auto* c = module->as<nn::Conv2d>()) {
        // akamaster's _weights_init: kaiming_normal_ (fan_in, gain sqrt(2)) on
        // the weights of every convolution and linear layer; biases keep the
        // default.
        nn::init::kaiming_normal_(c->weight);
      } else if (auto* l = module->as<nn::Linear>()) {
        nn::init::kaiming_normal_(l->weight);
      }
    }
  }

  torch::Tensor feature_map(torch::Tensor x) override {
    x = torch::relu(bn1_(conv1_(x)));
    if (imagenet_stem_) x = torch::max_pool2d(x, 3, 2, 1);
    for (auto& layer : layers_) x = layer->forward(x);
    return x;
  }

  torch::Tensor pool_features(torch::Tensor map) override {
    return torch::adaptive_avg_pool2d(map, {1, 1}).flatten(1);
  }

  std::vector<Stage> stages() const override {
    std::vector<Stage> s = {{"stem", {"conv1", "bn1"}}};
    for (size_t i = 1; i <= layers_.size(); ++i) {
      const std::string name = "layer" + std::to_string(i);
      s.push_back({name, {name}});
    }
    return s;
  }

 private:
  bool imagenet_stem_;
  nn::Conv2d conv1_ = nullptr;
  FoldableBatchNorm2d bn1_ = nullptr;
  std::vector<nn::Sequential> layers_;
};

Backbone make_backbone(const ResNetShape& shape, int64_t num_classes) {
  // Through a base pointer: Backbone(make_shared<Derived>) would pick the holder's
  // forwarding constructor.
  std::shared_ptr<BackboneImpl> impl = std::make_shared<ResNetImpl>(shape, num_classes);
  return Backbone(impl);
}

}  // namespace

Backbone make_resnet(int depth, int64_t num_classes) {
  ResNetShape shape;
  shape.planes = {64, 128, 256, 512};
  shape.classifier = "fc";
  switch (depth) {
    case 18: shape.blocks = {2, 2, 2, 2}; break;
    case 34: shape.blocks = {3, 4, 6, 3}; break;
    case 50:
      shape.blocks = {3, 4, 6, 3};
      shape.bottleneck = true;
      break;
    default:
      GRAFT_CHECK(false, "ResNet depth ", depth, " is not supported (expected 18, 34 or 50)");
  }
  return make_backbone(shape, num_classes);
}

Backbone make_cifar_resnet(int depth, int64_t num_classes) {
  GRAFT_CHECK(depth == 20 || depth == 32 || depth == 44 || depth == 56, "CIFAR ResNet depth ", depth,
              " is not supported (expected 20, 32, 44 or 56)");
  ResNetShape shape;
  shape.imagenet_stem = false;
  shape.planes = {16, 32, 64};
  shape.blocks.assign(3, (depth - 2) / 6);
  shape.shortcut = Shortcut::kZeroPad;
  shape.classifier = "linear";
  return make_backbone(shape, num_classes);
}

}  // namespace graft
