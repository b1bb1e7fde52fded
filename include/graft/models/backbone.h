#pragma once
/// The backbone interface: a source network with torchvision parameter names,
/// split into features and a replaceable classifier slot.

#include <string>
#include <vector>

#include <torch/torch.h>

namespace graft {

class Int8Network;

/// A stage: a group of parameters (by name prefix) that is frozen or trained
/// together; stages are listed from input to output. A parameter belongs to a
/// prefix when its name equals it or starts with it followed by ".".
struct Stage {
  std::string name;
  std::vector<std::string> prefixes;  // e.g. {"layer4"} or {"conv1", "bn1"}
};

/// A Sequential whose forward takes and returns one tensor, so that it fits in
/// a torch::nn::AnyModule (a plain nn::Sequential does not: its forward is a
/// template). Children are named "0", "1", ... as in nn::Sequential, so an MLP
/// head in the "fc" slot has parameters "fc.0.weight", ...
class SequentialHeadImpl : public torch::nn::SequentialImpl {
 public:
  using torch::nn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) {
    return torch::nn::SequentialImpl::forward(std::move(x));
  }
};
TORCH_MODULE(SequentialHead);

class BackboneImpl : public torch::nn::Module {
 public:
  /// Pooled features [N, feature_dim()]: the input of the classifier slot;
  /// pool_features(feature_map(x)).
  torch::Tensor features(torch::Tensor x);
  /// The activation map of the last convolutional stage, before global
  /// pooling, [N, C, h, w] (ResNet: layer4 / layer3; VGG, AlexNet: the
  /// output of `features`, after its last max pool; GoogLeNet: inception5b).
  /// Grad-CAM's A (src/report/grad_cam.cpp).
  virtual torch::Tensor feature_map(torch::Tensor x) = 0;
  /// The rest of features(): from feature_map's output to the pooled
  /// features (global pooling, and for VGG/AlexNet fc6 and fc7).
  virtual torch::Tensor pool_features(torch::Tensor map) = 0;
  /// Stages from input to output, excluding the classifier slot. Ensures:
  /// every parameter outside the slot belongs to exactly one stage prefix.
  virtual std::vector<Stage> stages() const = 0;

  /// classifier(features(x)).
  torch::Tensor forward(torch::Tensor x);
  /// Applies the classifier slot to features.
  torch::Tensor classify(torch::Tensor features);
  /// Full parameter-name prefix of the classifier slot, e.g. "fc",
  /// "classifier.6", "linear".
  const std::string& classifier_name() const { return classifier_name_; }
  /// Replaces the classifier slot (a Linear, or a SequentialHead for an MLP
  /// head); it is registered under classifier_name() and moved to the
  /// backbone's device, dtype and train/eval mode.
  void set_classifier(torch::nn::AnyModule head);
  int64_t feature_dim() const { return feature_dim_; }
  /// With a network set (--precision int8, models/int8.h), features() and
  /// forward() run it instead of the float modules; nullptr goes back to
  /// float. Evaluation only: the int8 network holds its own copy of the
  /// weights, made when it was built.
  void set_int8(std::shared_ptr<Int8Network> network) { int8_ = std::move(network); }
  bool int8() const { return int8_ != nullptr; }

 protected:
  /// Families call this once in their constructor: `parent` is the module
  /// that owns the slot (this, or a nested classifier module), `child` its
  /// name there, `full_name` its full prefix.
  void init_classifier(torch::nn::Module& parent, const std::string& child,
                       const std::string& full_name, torch::nn::AnyModule head,
                       int64_t feature_dim);

 private:
  torch::nn::Module* classifier_parent_ = nullptr;
  std::string classifier_child_, classifier_name_;
  torch::nn::AnyModule classifier_;
  int64_t feature_dim_ = 0;
  std::shared_ptr<Int8Network> int8_;
};
TORCH_MODULE(Backbone);

}  // namespace graft
