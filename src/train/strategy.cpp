#include "graft/train/strategy.h"

#include <cmath>

#include "graft/core/error.h"
#include "graft/models/fast.h"

namespace graft {

Strategy parse_strategy(const std::string& text, int num_stages) {
  Strategy s;
  if (text == "linear") return s;
  if (text == "full") {
    s.kind = Strategy::kFull;
    return s;
  }
  if (text.rfind("partial:", 0) == 0) {
    std::string n = text.substr(8);
    bool digits = !n.empty() && n.size() < 4 && n.find_first_not_of("0123456789") == std::string::npos;
    GRAFT_CHECK_USAGE(digits && std::stoi(n) >= 1, "--strategy: '", text,
                      "' (expected partial:N with N a positive number of stages)");
    s.kind = Strategy::kPartial;
    s.stages = std::stoi(n);
    GRAFT_CHECK_USAGE(num_stages == 0 || s.stages <= num_stages, "--strategy: '", text,
                      "' asks for ", s.stages, " stages, the backbone has ", num_stages,
                      " (use full to train all)");
    return s;
  }
  throw UsageError(str_cat("--strategy: '", text, "' (expected linear, partial:N or full)"));
}

std::string to_string(const Strategy& s) {
  switch (s.kind) {
    case Strategy::kLinear: return "linear";
    case Strategy::kFull: return "full";
    default: return "partial:" + std::to_string(s.stages);
  }
}

namespace {

bool has_prefix(const std::string& name, const std::string& prefix) {
  return name == prefix || name.rfind(prefix + ".", 0) == 0;
}

}  // namespace

std::vector<std::string> apply_strategy(BackboneImpl& model, const Strategy& s) {
  auto stages = model.stages();
  size_t first_trainable = stages.size();
  if (s.kind == Strategy::kFull) first_trainable = 0;
  if (s.kind == Strategy::kPartial)
    first_trainable = stages.size() - std::min<size_t>(s.stages, stages.size());
  std::vector<std::string> trainable_prefixes{model.classifier_name()};
  std::vector<std::string> names;
  for (size_t i = first_trainable; i < stages.size(); ++i) {
    names.push_back(stages[i].name);
    for (const auto& p : stages[i].prefixes) trainable_prefixes.push_back(p);
  }
  for (auto& p : model.named_parameters(true)) {
    bool train = false;
    for (const auto& prefix : trainable_prefixes) train = train || has_prefix(p.key(), prefix);
    p.value().set_requires_grad(train);
  }
  return names;
}

void set_train_mode(BackboneImpl& model) {
  model.train(true);
  for (const auto& m : model.modules(/*include_self=*/false)) {
    auto params = m->parameters(/*recurse=*/false);
    bool is_norm = dynamic_cast<FoldableBatchNorm2dImpl*>(m.get()) != nullptr ||
                   dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get()) != nullptr ||
                   dynamic_cast<torch::nn::BatchNorm1dImpl*>(m.get()) != nullptr;
    bool frozen = !params.empty();
    for (const auto& p : params) frozen = frozen && !p.requires_grad();
    if (is_norm && frozen) m->eval();
  }
}

std::vector<ParamGroup> param_groups(BackboneImpl& model, double lr, double backbone_lr_mult,
                                     double layer_decay, double weight_decay) {
  auto stages = model.stages();
  // Group index per parameter: the head, then stages from the last one back.
  std::vector<ParamGroup> groups;
  auto add = [&](const std::string& name, double group_lr) {
    groups.push_back({name, {}, group_lr, weight_decay});
    groups.push_back({name + "/no_decay", {}, group_lr, 0.0});
  };
  add("head", lr);
  double stage_lr = lr * backbone_lr_mult;
  for (size_t k = 0; k < stages.size(); ++k) {
    add(stages[stages.size() - 1 - k].name, stage_lr);
    stage_lr *= layer_decay;
  }
  for (auto& p : model.named_parameters(true)) {
    if (!p.value().requires_grad()) continue;
    size_t g = 0;
    bool found = has_prefix(p.key(), model.classifier_name());
    for (size_t k = 0; !found && k < stages.size(); ++k)
      for (const auto& prefix : stages[stages.size() - 1 - k].prefixes)
        if (has_prefix(p.key(), prefix)) {
          g = 2 * (k + 1);
          found = true;
          break;
        }
    GRAFT_CHECK(found, "parameter '", p.key(), "' belongs to no stage of the backbone");
    if (p.value().dim() <= 1) g += 1;
    groups[g].params.push_back(p.value());
  }
  std::vector<ParamGroup> out;
  for (auto& g : groups)
    if (!g.params.empty()) out.push_back(std::move(g));
  return out;
}

double lr_factor(const std::string& schedule, int64_t step, int64_t total, int64_t warmup,
                 int64_t step_size, double gamma) {
  if (warmup > 0 && step < warmup) return double(step + 1) / double(warmup);
  if (schedule == "constant") return 1.0;
  if (schedule == "step") {
    int64_t size = std::max<int64_t>(1, step_size);
    return std::pow(gamma, double(step / size));
  }
  int64_t span = std::max<int64_t>(1, total - warmup);
  double t = double(step - warmup) / double(span);
  if (schedule == "linear") return std::max(0.0, 1.0 - t);
  // Ganin & Lempitsky's (and CDAN's) annealing: lr_0 / (1 + 10 t)^0.75 (issue 19).
  if (schedule == "annealed") return std::pow(1.0 + 10.0 * std::min(1.0, t), -0.75);
  return 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, t)));
}

}  // namespace graft
