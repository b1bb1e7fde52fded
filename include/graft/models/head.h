#pragma once
/// The new head that replaces a source classifier: built from its --head
/// spec by training and by every loader of a saved model.

#include <cstdint>
#include <string>

#include <torch/torch.h>

namespace graft {

/// Builds the head: "linear" (a Linear) or "mlp:HIDDEN" (Linear, ReLU,
/// Dropout(0.2), Linear as a SequentialHead). Throws graft::UsageError naming
/// --head, the spec seen and the forms expected.
torch::nn::AnyModule make_head(const std::string& spec, int64_t in_features, int64_t classes);

}  // namespace graft
