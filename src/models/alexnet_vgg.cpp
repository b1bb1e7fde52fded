// torchvision AlexNet ("one weird trick" variant, torchvision/models/alexnet.py)
// and VGG-11/16 with and without BatchNorm (torchvision/models/vgg.py). Both
// are a Sequential of convolutions ("features"), an adaptive average pool
// and a classifier of seven entries whose last one is the replaceable slot.

#include "graft/core/error.h"
#include "graft/models/families.h"

namespace graft {
namespace {

namespace nn = torch::nn;

nn::ReLU inplace_relu() { return nn::ReLU(nn::ReLUOptions().inplace(true)); }

/// What differs between the two.
struct PlainNetShape {
  /// Children named by index, as torchvision's.
  nn::Sequential features;
  /// The stages of `features`; the classifier's fc6 and fc7 are added.
  std::vector<Stage> stages;
  int64_t channels = 0;  ///< out of `features`
  int64_t pool = 0;      ///< side of the adaptive average pool
  /// The classifier's order: AlexNet Dropout-Linear-ReLU twice; VGG
  /// Linear-ReLU-Dropout twice.
  bool dropout_first = false;
  /// VGG's own initialisation; AlexNet keeps PyTorch's default, as LibTorch does.
  bool vgg_init = false;
};

class PlainNetImpl : public BackboneImpl {
 public:
  PlainNetImpl(PlainNetShape shape, int64_t num_classes) : stages_(std::move(shape.stages)) {
    features_ = register_module("features", shape.features);
    avgpool_ = register_module("avgpool", nn::AdaptiveAvgPool2d(shape.pool));

    // torchvision's classifier is a Sequential of seven; its last entry is
    // the replaceable slot, so it is a plain module with the same child names
    // and features() runs entries 0..5 itself.
    classifier_ = register_module("classifier", std::make_shared<nn::Module>("Classifier"));
    int64_t width = shape.channels * shape.pool * shape.pool;
    int entry = 0;
    for (const char* fc : {"fc6", "fc7"}) {
      if (shape.dropout_first) dropouts_.push_back(add(entry++, nn::Dropout(0.5)));
      stages_.push_back({fc, {"classifier." + std::to_string(entry)}});
      linears_.push_back(add(entry++, nn::Linear(width, 4096)));
      add(entry++, inplace_relu());
      if (!shape.dropout_first) dropouts_.push_back(add(entry++, nn::Dropout(0.5)));
      width = 4096;
    }
    dropout_first_ = shape.dropout_first;
    init_classifier(*classifier_, "6", "classifier.6", nn::AnyModule(nn::Linear(4096, num_classes)),
                    4096);

    if (!shape.vgg_init) return;
    for (auto& module : modules(/*include_self=*/false)) {
      if (auto* c = module->as<nn::Conv2d>()) {
        nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
        nn::init::zeros_(c->bias);
      } else if (auto* b = module->as<FoldableBatchNorm2d>()) {
        nn::init::ones_(b->weight);
        nn::init::zeros_(b->bias);
      } else if (auto* l = module->as<nn::Linear>()) {
        nn::init::normal_(l->weight, 0.0, 0.01);
        nn::init::zeros_(l->bias);
      }
    }
  }

  torch::Tensor feature_map(torch::Tensor x) override { return features_->forward(x); }

  torch::Tensor pool_features(torch::Tensor map) override {
    torch::Tensor x = avgpool_(map).flatten(1);
    for (size_t i = 0; i < linears_.size(); ++i) {
      if (dropout_first_) x = dropouts_[i](x);
      x = torch::relu(linears_[i](x));
      if (!dropout_first_) x = dropouts_[i](x);
    }
    return x;
  }

  std::vector<Stage> stages() const override { return stages_; }

 private:
  template <typename M>
  M add(int entry, M module) {
    return classifier_->register_module(std::to_string(entry), module);
  }

  std::vector<Stage> stages_;
  nn::Sequential features_ = nullptr;
  nn::AdaptiveAvgPool2d avgpool_ = nullptr;
  std::shared_ptr<nn::Module> classifier_;
  std::vector<nn::Linear> linears_;
  std::vector<nn::Dropout> dropouts_;
  bool dropout_first_ = false;
};

Backbone make_plain_net(PlainNetShape shape, int64_t num_classes) {
  // Through a base pointer: Backbone(make_shared<Derived>) would pick the holder's
  // forwarding constructor.
  std::shared_ptr<BackboneImpl> impl = std::make_shared<PlainNetImpl>(std::move(shape), num_classes);
  return Backbone(impl);
}

constexpr int64_t kPool = 0;  // "M" in torchvision's VGG configuration lists

}  // namespace

Backbone make_alexnet(int64_t num_classes) {
  auto pool = [] { return nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2)); };
  PlainNetShape shape;
  shape.features =
      nn::Sequential(nn::Conv2d(nn::Conv2dOptions(3, 64, 11).stride(4).padding(2)), inplace_relu(),
                     pool(),                                                                 // 2
                     nn::Conv2d(nn::Conv2dOptions(64, 192, 5).padding(2)), inplace_relu(),   // 3
                     pool(),                                                                 // 5
                     nn::Conv2d(nn::Conv2dOptions(192, 384, 3).padding(1)), inplace_relu(),  // 6
                     nn::Conv2d(nn::Conv2dOptions(384, 256, 3).padding(1)), inplace_relu(),  // 8
                     nn::Conv2d(nn::Conv2dOptions(256, 256, 3).padding(1)), inplace_relu(),  // 10
                     pool());                                                                // 12
  shape.stages = {{"conv1", {"features.0"}},
                  {"conv2", {"features.3"}},
                  {"conv3_5", {"features.6", "features.8", "features.10"}}};
  shape.channels = 256;
  shape.pool = 6;
  shape.dropout_first = true;
  return make_plain_net(std::move(shape), num_classes);
}

Backbone make_vgg(int depth, bool batch_norm, int64_t num_classes) {
  std::vector<int64_t> cfg;
  if (depth == 11) {
    cfg = {64, kPool, 128, kPool, 256, 256, kPool, 512, 512, kPool, 512, 512, kPool};
  } else if (depth == 16) {
    cfg = {64,    64,  kPool, 128, 128,   kPool, 256, 256, 256,
           kPool, 512, 512,   512, kPool, 512,   512, 512, kPool};
  } else {
    GRAFT_CHECK(false, "VGG depth ", depth, " is not supported (expected 11 or 16)");
  }

  // One stage per block of convolutions between max-pools; every index that
  // holds parameters (convolution, BatchNorm) is listed.
  PlainNetShape shape;
  nn::Sequential& features = shape.features;
  Stage block{"block1", {}};
  int64_t in = 3;
  for (int64_t v : cfg) {
    if (v == kPool) {
      features->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)));
      shape.stages.push_back(block);
      block = Stage{"block" + std::to_string(shape.stages.size() + 1), {}};
      continue;
    }
    block.prefixes.push_back("features." + std::to_string(features->size()));
    features->push_back(nn::Conv2d(nn::Conv2dOptions(in, v, 3).padding(1)));
    if (batch_norm) {
      block.prefixes.push_back("features." + std::to_string(features->size()));
      features->push_back(FoldableBatchNorm2d(v));
    }
    features->push_back(inplace_relu());
    in = v;
  }
  shape.channels = 512;
  shape.pool = 7;
  shape.vgg_init = true;
  return make_plain_net(std::move(shape), num_classes);
}

}  // namespace graft
