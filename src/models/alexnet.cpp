// torchvision AlexNet ("one weird trick" variant, torchvision/models/alexnet.py).

#include "graft/models/families.h"

namespace graft {
namespace {

namespace nn = torch::nn;

class AlexNetImpl : public BackboneImpl {
 public:
  explicit AlexNetImpl(int64_t num_classes) {
    auto relu = [] { return nn::ReLU(nn::ReLUOptions().inplace(true)); };
    auto pool = [] { return nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2)); };
    // Sequential names children by index, so these match torchvision's.
    features_ = register_module(
        "features",
        nn::Sequential(nn::Conv2d(nn::Conv2dOptions(3, 64, 11).stride(4).padding(2)), relu(),
                       pool(),                                                         // 2
                       nn::Conv2d(nn::Conv2dOptions(64, 192, 5).padding(2)), relu(),   // 3
                       pool(),                                                         // 5
                       nn::Conv2d(nn::Conv2dOptions(192, 384, 3).padding(1)), relu(),  // 6
                       nn::Conv2d(nn::Conv2dOptions(384, 256, 3).padding(1)), relu(),  // 8
                       nn::Conv2d(nn::Conv2dOptions(256, 256, 3).padding(1)), relu(),  // 10
                       pool()));                                                       // 12
    avgpool_ = register_module("avgpool", nn::AdaptiveAvgPool2d(6));

    // torchvision's classifier is a Sequential of seven; its last entry is
    // the replaceable slot, so it is a plain module with the same child names
    // and features() runs entries 0..5 itself.
    classifier_ = register_module("classifier", std::make_shared<nn::Module>("Classifier"));
    drop0_ = classifier_->register_module("0", nn::Dropout(0.5));
    fc1_ = classifier_->register_module("1", nn::Linear(256 * 6 * 6, 4096));
    classifier_->register_module("2", nn::ReLU(nn::ReLUOptions().inplace(true)));
    drop3_ = classifier_->register_module("3", nn::Dropout(0.5));
    fc4_ = classifier_->register_module("4", nn::Linear(4096, 4096));
    classifier_->register_module("5", nn::ReLU(nn::ReLUOptions().inplace(true)));
    init_classifier(*classifier_, "6", "classifier.6", nn::AnyModule(nn::Linear(4096, num_classes)),
                    4096);
    // torchvision keeps PyTorch's default initialisation, as LibTorch does.
  }

  torch::Tensor features(torch::Tensor x) override {
    x = avgpool_(features_->forward(x)).flatten(1);
    x = torch::relu(fc1_(drop0_(x)));
    return torch::relu(fc4_(drop3_(x)));
  }

  std::vector<Stage> stages() const override {
    return {{"conv1", {"features.0"}},
            {"conv2", {"features.3"}},
            {"conv3_5", {"features.6", "features.8", "features.10"}},
            {"fc6", {"classifier.1"}},
            {"fc7", {"classifier.4"}}};
  }

 private:
  nn::Sequential features_ = nullptr;
  nn::AdaptiveAvgPool2d avgpool_ = nullptr;
  std::shared_ptr<nn::Module> classifier_;
  nn::Dropout drop0_ = nullptr, drop3_ = nullptr;
  nn::Linear fc1_ = nullptr, fc4_ = nullptr;
};

}  // namespace

Backbone make_alexnet(int64_t num_classes) {
  // Through a base pointer: Backbone(make_shared<Derived>) would pick the holder's
  // forwarding constructor.
  std::shared_ptr<BackboneImpl> impl = std::make_shared<AlexNetImpl>(num_classes);
  return Backbone(impl);
}

}  // namespace graft
