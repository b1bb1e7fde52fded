#include "graft/models/head.h"

#include "graft/core/error.h"
#include "graft/models/backbone.h"

namespace graft {

torch::nn::AnyModule make_head(const std::string& spec, int64_t in_features, int64_t classes) {
  if (spec == "linear") return torch::nn::AnyModule(torch::nn::Linear(in_features, classes));
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
  throw UsageError(str_cat("--head: '", spec, "' (expected linear or mlp:HIDDEN)"));
}

}  // namespace graft
