#include "graft/models/backbone.h"

#include "graft/core/error.h"
#include "graft/models/int8.h"

namespace graft {

torch::Tensor BackboneImpl::features(torch::Tensor x) {
  if (int8_) return int8_->features(x);
  return pool_features(feature_map(std::move(x)));
}

torch::Tensor BackboneImpl::forward(torch::Tensor x) {
  if (int8_) return int8_->forward(x);
  return classify(features(std::move(x)));
}

torch::Tensor BackboneImpl::classify(torch::Tensor features) {
  GRAFT_CHECK(!classifier_.is_empty(), "backbone has no classifier (init_classifier not called)");
  return classifier_.forward(std::move(features));
}

void BackboneImpl::init_classifier(torch::nn::Module& parent, const std::string& child,
                                   const std::string& full_name, torch::nn::AnyModule head,
                                   int64_t feature_dim) {
  GRAFT_CHECK(!head.is_empty(), "classifier '", full_name, "': the head module is empty");
  classifier_parent_ = &parent;
  classifier_child_ = child;
  classifier_name_ = full_name;
  feature_dim_ = feature_dim;
  parent.register_module(child, head.ptr());
  classifier_ = std::move(head);
}

void BackboneImpl::set_classifier(torch::nn::AnyModule head) {
  GRAFT_CHECK(classifier_parent_ != nullptr,
              "backbone has no classifier slot (init_classifier not called)");
  GRAFT_CHECK(!head.is_empty(), "classifier '", classifier_name_, "': the new head is empty");
  // The new head follows the backbone: same device, dtype and train/eval mode,
  // so that a head made on the CPU works on a model already moved to a GPU.
  auto params = parameters();
  if (!params.empty()) head.ptr()->to(params.front().device(), params.front().scalar_type());
  head.ptr()->train(is_training());
  classifier_parent_->replace_module(classifier_child_, head.ptr());
  classifier_ = std::move(head);
}

}  // namespace graft
