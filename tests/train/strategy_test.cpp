#include "graft/train/strategy.h"

#include <gtest/gtest.h>

#include "graft/core/error.h"
#include "graft/models/head.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace graft {
namespace {

bool starts_with(const std::string& s, const std::string& p) {
  return s == p || s.rfind(p + ".", 0) == 0;
}

// Every registry row: the strategies leave exactly the intended parameters
// trainable, and a saved model loads back with the same output.
TEST(StrategyContract, FreezingLeavesExactlyTheIntendedParametersTrainable) {
  for (const auto& spec : backbone_registry()) {
    SCOPED_TRACE(spec.name);
    Backbone model = spec.make(spec.source_classes);
    model->set_classifier(make_head("linear", model->feature_dim(), 3));
    auto stages = model->stages();
    const int n = static_cast<int>(stages.size());
    for (const std::string text : {std::string("linear"), std::string("partial:1"),
                                   "partial:" + std::to_string(n), std::string("full")}) {
      Strategy s = parse_strategy(text, n);
      apply_strategy(*model, s);
      int first = s.kind == Strategy::kLinear ? n : s.kind == Strategy::kFull ? 0 : n - s.stages;
      for (const auto& p : model->named_parameters(true)) {
        bool want = starts_with(p.key(), model->classifier_name());
        for (int i = first; i < n; ++i)
          for (const auto& prefix : stages[i].prefixes) want = want || starts_with(p.key(), prefix);
        EXPECT_EQ(p.value().requires_grad(), want) << text << " " << p.key();
      }
      // The optimiser sees exactly the trainable parameters, once each.
      size_t grouped = 0;
      for (const auto& g : param_groups(*model, 0.1, 0.1, 0.5, 1e-4)) grouped += g.params.size();
      size_t trainable = 0;
      for (const auto& p : model->parameters()) trainable += p.requires_grad();
      EXPECT_EQ(grouped, trainable) << text;
    }
  }
}

TEST(StrategyContract, SaveThenLoadGivesTheSameOutput) {
  torch::NoGradGuard no_grad;
  for (const auto& spec : backbone_registry()) {
    SCOPED_TRACE(spec.name);
    ModelInfo info;
    info.backbone = spec.name;
    info.head = "mlp:16";
    info.classes = {"a", "b", "c"};
    info.input = spec.input;
    torch::manual_seed(7);
    Backbone model = build_model(info);
    model->eval();
    // A smaller input than the default keeps the big models quick; every
    // family pools adaptively.
    int size = std::min(spec.input.size, 64);
    torch::Tensor x = torch::randn({2, 3, size, size});
    torch::Tensor before = model->forward(x);
    std::string bytes = safetensors_bytes(state_dict(*model));
    torch::manual_seed(8);
    Backbone loaded = build_model(info);
    LoadReport r = load_state_dict(*loaded, parse_safetensors(bytes, "memory").tensors);
    EXPECT_TRUE(r.clean()) << r.summary();
    loaded->eval();
    EXPECT_TRUE(torch::equal(loaded->forward(x), before));
    EXPECT_EQ(before.sizes(), torch::IntArrayRef({2, 3}));
  }
}

TEST(Strategy, FrozenBatchNormKeepsItsRunningStatistics) {
  const auto& spec = find_backbone("resnet20");
  Backbone model = spec.make(10);
  model->set_classifier(make_head("linear", model->feature_dim(), 4));
  apply_strategy(*model, parse_strategy("partial:1", 4));  // layer3 + head train
  set_train_mode(*model);
  auto buffers = model->named_buffers(true);
  torch::Tensor frozen_before = buffers["layer1.0.bn1.running_mean"].clone();
  torch::Tensor trained_before = buffers["layer3.0.bn1.running_mean"].clone();
  model->forward(torch::randn({8, 3, 32, 32}) * 3 + 1);
  EXPECT_TRUE(torch::equal(buffers["layer1.0.bn1.running_mean"], frozen_before));
  EXPECT_FALSE(torch::equal(buffers["layer3.0.bn1.running_mean"], trained_before));
  EXPECT_EQ(buffers["layer1.0.bn1.num_batches_tracked"].item<int64_t>(), 0);
}

TEST(Strategy, DiscriminativeLearningRates) {
  const auto& spec = find_backbone("resnet20");
  Backbone model = spec.make(10);
  model->set_classifier(make_head("linear", model->feature_dim(), 4));
  apply_strategy(*model, parse_strategy("full", 4));
  std::map<std::string, ParamGroup> groups;
  for (auto& g : param_groups(*model, 0.1, 0.5, 0.2, 1e-3)) groups[g.name] = g;
  EXPECT_DOUBLE_EQ(groups.at("head").lr, 0.1);
  EXPECT_DOUBLE_EQ(groups.at("layer3").lr, 0.1 * 0.5);
  EXPECT_DOUBLE_EQ(groups.at("layer2").lr, 0.1 * 0.5 * 0.2);
  EXPECT_DOUBLE_EQ(groups.at("layer1").lr, 0.1 * 0.5 * 0.2 * 0.2);
  // Biases and norm weights never decay.
  EXPECT_DOUBLE_EQ(groups.at("layer1/no_decay").weight_decay, 0.0);
  EXPECT_DOUBLE_EQ(groups.at("layer1").weight_decay, 1e-3);
  for (const auto& p : groups.at("layer1").params) EXPECT_GT(p.dim(), 1);
}

TEST(Strategy, Schedules) {
  EXPECT_DOUBLE_EQ(lr_factor("cosine", 0, 100, 0, 0, 0), 1.0);
  EXPECT_NEAR(lr_factor("cosine", 50, 100, 0, 0, 0), 0.5, 1e-12);
  EXPECT_NEAR(lr_factor("cosine", 100, 100, 0, 0, 0), 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(lr_factor("cosine", 0, 100, 10, 0, 0), 0.1);
  EXPECT_DOUBLE_EQ(lr_factor("cosine", 9, 100, 10, 0, 0), 1.0);
  EXPECT_DOUBLE_EQ(lr_factor("step", 25, 100, 0, 10, 0.5), 0.25);
  EXPECT_DOUBLE_EQ(lr_factor("constant", 99, 100, 0, 0, 0), 1.0);
}

TEST(Strategy, BadSpecsNameTheOption) {
  EXPECT_THROW(parse_strategy("partial:0"), UsageError);
  EXPECT_THROW(parse_strategy("some"), UsageError);
  try {
    parse_strategy("partial:9", 4);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--strategy"), std::string::npos);
  }
}

}  // namespace
}  // namespace graft
