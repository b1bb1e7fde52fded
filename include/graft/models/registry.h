#pragma once
/// The one table of backbones: name, family, features, input spec, size.
/// `graft models` prints it, --backbone validates against it, and the
/// contract tests run over every row.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "graft/data/input_spec.h"
#include "graft/models/backbone.h"

namespace graft {

struct BackboneSpec {
  std::string name;         // torchvision name: "resnet18", "vgg16_bn", ...
  std::string family;       // "resnet", "cifar_resnet", "alexnet", "vgg", "googlenet"
  std::string description;  // one line
  int64_t feature_dim = 0;
  int64_t source_classes = 0;  // classifier size of the published weights
  InputSpec input;
  /// Builds the network with a Linear classifier of `num_classes` outputs,
  /// initialised as torchvision initialises it.
  std::function<Backbone(int64_t num_classes)> make;
};

/// All rows, in display order.
const std::vector<BackboneSpec>& backbone_registry();

/// The row named `name`; throws graft::UsageError naming --backbone, the
/// value and every valid name.
const BackboneSpec& find_backbone(const std::string& name);

/// Comma-separated list of names (for --help).
std::string backbone_names();

/// Number of parameters (elements) of a module.
int64_t count_parameters(const torch::nn::Module& module);

/// Multiply-accumulate count of one forward pass of `model` on a batch of one
/// input of spec.size (convolutions and linear layers, the usual convention:
/// torchvision's "GFLOPS" column is this number). Measured by observing the
/// ATen calls (aten::convolution, aten::linear, addmm/mm/bmm, each counted at
/// the outermost level) that a real forward pass makes on the calling thread,
/// in eval mode without gradients; the model's train/eval mode is restored.
int64_t count_macs(BackboneImpl& model, const InputSpec& spec);

}  // namespace graft
