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
  /// torchvision's GoogLeNet transform_input: the network's first step turns
  /// inputs normalised with `input` (ImageNet mean/std) into inputs
  /// normalised with mean = std = 0.5, what its published weights (ported
  /// from TensorFlow) expect. True for googlenet, as
  /// googlenet(weights=IMAGENET1K_V1) builds it; `make` builds it so.
  bool transform_input = false;
  /// Builds the network with a Linear classifier of `num_classes` outputs,
  /// initialised as torchvision initialises it.
  std::function<Backbone(int64_t num_classes)> make;
};

/// All rows, in display order.
const std::vector<BackboneSpec>& backbone_registry();

/// The row named `name`; throws graft::UsageError naming --backbone, the
/// value and every valid name.
const BackboneSpec& find_backbone(const std::string& name);

/// `row`'s network with transform_input given: row.make when it is the
/// row's own, otherwise the other variant (only googlenet has one: runs
/// saved before the row had the transform load without it). Throws
/// graft::Error for a row without the transform asked for one.
Backbone make_backbone(const BackboneSpec& row, int64_t num_classes, bool transform_input);

/// The backbone's identity in feature-cache keys: the name, with
/// "+transform_input" when the network has the transform (so features
/// cached by a googlenet without it are never reused for one with it).
std::string backbone_key(const std::string& name, bool transform_input);

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
