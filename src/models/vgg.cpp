// torchvision VGG-11/16 with and without BatchNorm (torchvision/models/vgg.py).

#include "graft/core/error.h"
#include "graft/models/families.h"

namespace graft {
namespace {

namespace nn = torch::nn;

constexpr int64_t kPool = 0;  // "M" in torchvision's configuration lists

class VGGImpl : public BackboneImpl {
 public:
  VGGImpl(int depth, bool batch_norm, int64_t num_classes) {
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
    nn::Sequential features;
    Stage block{"block1", {}};
    int64_t in = 3;
    for (int64_t v : cfg) {
      if (v == kPool) {
        features->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)));
        stages_.push_back(block);
        block = Stage{"block" + std::to_string(stages_.size() + 1), {}};
        continue;
      }
      block.prefixes.push_back("features." + std::to_string(features->size()));
      features->push_back(nn::Conv2d(nn::Conv2dOptions(in, v, 3).padding(1)));
      if (batch_norm) {
        block.prefixes.push_back("features." + std::to_string(features->size()));
        features->push_back(FoldableBatchNorm2d(v));
      }
      features->push_back(nn::ReLU(nn::ReLUOptions().inplace(true)));
      in = v;
    }
    stages_.push_back({"fc6", {"classifier.0"}});
    stages_.push_back({"fc7", {"classifier.3"}});
    features_ = register_module("features", features);
    avgpool_ = register_module("avgpool", nn::AdaptiveAvgPool2d(7));

    // torchvision's classifier is a Sequential of seven; its last entry is
    // the replaceable slot, so it is a plain module with the same child names
    // and features() runs entries 0..5 itself.
    classifier_ = register_module("classifier", std::make_shared<nn::Module>("Classifier"));
    fc0_ = classifier_->register_module("0", nn::Linear(512 * 7 * 7, 4096));
    classifier_->register_module("1", nn::ReLU(nn::ReLUOptions().inplace(true)));
    drop2_ = classifier_->register_module("2", nn::Dropout(0.5));
    fc3_ = classifier_->register_module("3", nn::Linear(4096, 4096));
    classifier_->register_module("4", nn::ReLU(nn::ReLUOptions().inplace(true)));
    drop5_ = classifier_->register_module("5", nn::Dropout(0.5));
    init_classifier(*classifier_, "6", "classifier.6", nn::AnyModule(nn::Linear(4096, num_classes)),
                    4096);

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

  torch::Tensor features(torch::Tensor x) override {
    x = avgpool_(features_->forward(x)).flatten(1);
    x = drop2_(torch::relu(fc0_(x)));
    return drop5_(torch::relu(fc3_(x)));
  }

  std::vector<Stage> stages() const override { return stages_; }

 private:
  std::vector<Stage> stages_;
  nn::Sequential features_ = nullptr;
  nn::AdaptiveAvgPool2d avgpool_ = nullptr;
  std::shared_ptr<nn::Module> classifier_;
  nn::Linear fc0_ = nullptr, fc3_ = nullptr;
  nn::Dropout drop2_ = nullptr, drop5_ = nullptr;
};

}  // namespace

Backbone make_vgg(int depth, bool batch_norm, int64_t num_classes) {
  // Through a base pointer: Backbone(make_shared<Derived>) would pick the holder's
  // forwarding constructor.
  std::shared_ptr<BackboneImpl> impl = std::make_shared<VGGImpl>(depth, batch_norm, num_classes);
  return Backbone(impl);
}

}  // namespace graft
