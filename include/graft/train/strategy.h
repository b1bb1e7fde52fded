#pragma once
/// Transfer strategies: which parameters train and at which learning rate.

#include <string>
#include <vector>

#include <torch/torch.h>

#include "graft/models/backbone.h"
// make_head moved to graft/models/head.h. src/train/trainer.cpp still finds
// it through this header while it is being rewritten elsewhere; drop this
// include once trainer.cpp includes graft/models/head.h itself.
#include "graft/models/head.h"

namespace graft {

struct Strategy {
  enum Kind { kLinear, kPartial, kFull } kind = kLinear;
  int stages = 0;  // kPartial: the last `stages` stages are trainable
};

/// Parses "linear", "partial:N" (N >= 1) or "full"; throws graft::UsageError
/// naming --strategy. N larger than the backbone's stage count is an error
/// when the backbone is known (num_stages > 0).
Strategy parse_strategy(const std::string& text, int num_stages = 0);
std::string to_string(const Strategy& s);

/// Sets requires_grad: the head always trains; backbone stages train per the
/// strategy. Returns the names of the trainable stages, input to output.
std::vector<std::string> apply_strategy(BackboneImpl& model, const Strategy& s);

/// model.train(), then every BatchNorm whose parameters are frozen goes back
/// to eval mode so that its running statistics never change.
void set_train_mode(BackboneImpl& model);

/// An optimiser parameter group with its own base learning rate.
struct ParamGroup {
  std::string name;  // "head", or a stage name
  std::vector<torch::Tensor> params;
  double lr = 0;
  double weight_decay = 0;
};

/// Groups of trainable parameters: the head at `lr`; the k-th trainable
/// stage counted from the last one at lr * backbone_lr_mult * layer_decay^k.
/// Norm weights and biases (tensors of one dimension) get no weight decay.
std::vector<ParamGroup> param_groups(BackboneImpl& model, double lr, double backbone_lr_mult,
                                     double layer_decay, double weight_decay);

/// Learning-rate factor at `step` of `total` steps: linear warmup over
/// `warmup` steps, then cosine to zero, linear to zero (Hugging Face's
/// get_linear_schedule_with_warmup), step decay (gamma every step_size
/// steps) or constant.
double lr_factor(const std::string& schedule, int64_t step, int64_t total, int64_t warmup,
                 int64_t step_size, double gamma);

}  // namespace graft
