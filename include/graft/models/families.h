#pragma once
/// Constructors of the model families (one .cpp each). Parameter names match
/// torchvision (and akamaster's CIFAR ResNets), so published state_dicts load
/// unchanged.

#include <cstdint>
#include <string>

#include "graft/models/backbone.h"
#include "graft/models/fast.h"

namespace graft {

/// torchvision ResNet; depth 18, 34 or 50. Classifier slot "fc".
Backbone make_resnet(int depth, int64_t num_classes);
/// CIFAR ResNet (He et al. 2016, option-A shortcuts); depth 20, 32, 44 or 56.
/// Parameter names as akamaster/pytorch_resnet_cifar10 (without "module.").
/// Classifier slot "linear".
Backbone make_cifar_resnet(int depth, int64_t num_classes);
/// torchvision AlexNet. Classifier slot "classifier.6"; features are the
/// 4096-d output of classifier.5.
Backbone make_alexnet(int64_t num_classes);
/// torchvision VGG; depth 11 or 16, with or without BatchNorm. Classifier
/// slot "classifier.6"; features are the 4096-d output of classifier.5.
Backbone make_vgg(int depth, bool batch_norm, int64_t num_classes);
/// torchvision GoogLeNet without the auxiliary classifiers. With
/// `transform_input` (torchvision's flag, what its published IMAGENET1K_V1
/// weights expect) the network first re-normalises inputs given with ImageNet
/// mean/std to mean = std = 0.5; it has no parameters. Classifier slot "fc".
Backbone make_googlenet(int64_t num_classes, bool transform_input);
/// Whether `model` is a GoogLeNet of make_googlenet, and whether it applies
/// torchvision's transform_input (the int8 path quantises the input as FX
/// does for each).
bool is_googlenet(const BackboneImpl& model);
bool googlenet_transforms_input(const BackboneImpl& model);

}  // namespace graft
