#include "graft/models/head.h"

#include "graft/core/error.h"
#include "graft/models/backbone.h"

namespace graft {

torch::nn::AnyModule make_head(const std::string& spec, int64_t in_features, int64_t classes) {
  if (spec == "linear") return torch::nn::AnyModule(torch::nn::Linear(in_features, classes));
  if (spec == "centroid") return torch::nn::AnyModule(CentroidHead(in_features, classes));
  if (spec.rfind("mlp:", 0) == 0) {
    std::string h = spec.substr(4);
    bool digits = !h.empty() && h.size() < 7 && h.find_first_not_of("0123456789") == std::string::npos;
    GRAFT_CHECK_USAGE(digits && std::stoi(h) >= 1, "--head: '", spec,
                      "' (expected mlp:HIDDEN with HIDDEN a positive width)");
    int64_t hidden = std::stoi(h);
    return torch::nn::AnyModule(SequentialHead(
        torch::nn::Linear(in_features, hidden), torch::nn::ReLU(), torch::nn::Dropout(0.2),
        torch::nn::Linear(hidden, classes)));
  }
  throw UsageError(str_cat("--head: '", spec, "' (expected linear, mlp:HIDDEN or centroid)"));
}

CentroidHeadImpl::CentroidHeadImpl(int64_t in_features, int64_t classes) {
  weight = register_buffer("weight", torch::zeros({classes, in_features}));
}

namespace {
torch::Tensor unit_rows(const torch::Tensor& x) {
  return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(1));
}
}  // namespace

torch::Tensor CentroidHeadImpl::forward(torch::Tensor x) {
  return torch::mm(unit_rows(x.to(weight.dtype())), unit_rows(weight).t()) * kCentroidScale;
}

void CentroidHeadImpl::add(const torch::Tensor& features, const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  weight.index_add_(0, labels.to(weight.device()), unit_rows(features.to(weight.dtype())));
}

void CentroidHeadImpl::finish() {
  torch::NoGradGuard no_grad;
  weight.copy_(unit_rows(weight));
}

torch::Tensor class_centroid(const torch::Tensor& features) {
  return unit_rows(unit_rows(features.to(torch::kFloat32)).sum(0, /*keepdim=*/true))[0];
}

CentroidHeadImpl* as_centroid(torch::nn::Module& head) { return dynamic_cast<CentroidHeadImpl*>(&head); }

}  // namespace graft
