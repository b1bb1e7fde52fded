// Contract tests over every row of the backbone registry, and parity with the
// PyTorch reference (fixtures from tests/reference/backbone_fixtures.py).

#include "graft/models/registry.h"

#include <map>
#include <set>

#include <gtest/gtest.h>

#include "graft/core/error.h"
#include "graft/models/families.h"
#include "graft/weights/safetensors.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace graft {
namespace {

torch::Tensor tensor_named(const TensorList& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  ADD_FAILURE() << "no tensor '" << name << "'";
  return torch::Tensor();
}

bool has_prefix(const std::string& name, const std::string& prefix) {
  return name == prefix || name.rfind(prefix + ".", 0) == 0;
}

std::vector<std::string> parameter_names(const torch::nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& p : m.named_parameters()) out.push_back(p.key());
  return out;
}

class RegistryRow : public ::testing::TestWithParam<std::string> {
 protected:
  const BackboneSpec& spec() const { return find_backbone(GetParam()); }
  torch::Tensor input(int64_t batch = 2) const {
    torch::manual_seed(7);
    return torch::randn({batch, spec().input.channels, spec().input.size, spec().input.size});
  }
};

TEST_P(RegistryRow, ShapesAndFeatureDim) {
  torch::NoGradGuard no_grad;
  Backbone model = spec().make(spec().source_classes);
  model->eval();
  EXPECT_EQ(model->feature_dim(), spec().feature_dim);
  torch::Tensor f = model->features(input());
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{2, spec().feature_dim}));
  EXPECT_EQ(model->classify(f).sizes(), (std::vector<int64_t>{2, spec().source_classes}));
}

TEST_P(RegistryRow, StagesCoverEveryNonClassifierParameterOnce) {
  Backbone model = spec().make(spec().source_classes);
  const std::string& slot = model->classifier_name();
  const auto stages = model->stages();
  ASSERT_FALSE(stages.empty());
  std::map<std::string, int> prefix_hits;
  for (const auto& name : parameter_names(*model)) {
    int covering = 0;
    for (const auto& stage : stages)
      for (const auto& prefix : stage.prefixes)
        if (has_prefix(name, prefix)) {
          ++covering;
          ++prefix_hits[prefix];
        }
    if (has_prefix(name, slot)) {
      EXPECT_EQ(covering, 0) << name << " is in the classifier slot and in a stage";
    } else {
      EXPECT_EQ(covering, 1) << name << " is covered by " << covering << " stage prefixes";
    }
  }
  std::set<std::string> stage_names;
  for (const auto& stage : stages) {
    EXPECT_TRUE(stage_names.insert(stage.name).second) << "duplicate stage " << stage.name;
    for (const auto& prefix : stage.prefixes)
      EXPECT_GT(prefix_hits[prefix], 0) << "stage " << stage.name << ": prefix " << prefix
                                        << " matches no parameter";
  }
}

TEST_P(RegistryRow, SetClassifierReplacesTheSlot) {
  torch::NoGradGuard no_grad;
  namespace nn = torch::nn;
  Backbone model = spec().make(spec().source_classes);
  model->eval();
  const std::string slot = model->classifier_name();
  const int64_t params_before = count_parameters(*model);

  model->set_classifier(nn::AnyModule(nn::Linear(model->feature_dim(), 7)));
  EXPECT_EQ(model->forward(input()).sizes(), (std::vector<int64_t>{2, 7}));
  std::vector<std::string> head;
  for (const auto& name : parameter_names(*model))
    if (has_prefix(name, slot)) head.push_back(name);
  EXPECT_EQ(head, (std::vector<std::string>{slot + ".weight", slot + ".bias"}));
  const int64_t old_head = (spec().feature_dim + 1) * spec().source_classes;
  EXPECT_EQ(count_parameters(*model), params_before - old_head + (spec().feature_dim + 1) * 7);

  model->set_classifier(nn::AnyModule(SequentialHead(
      nn::Linear(model->feature_dim(), 16), nn::ReLU(), nn::Linear(16, 3))));
  EXPECT_EQ(model->classify(torch::randn({2, model->feature_dim()})).sizes(),
            (std::vector<int64_t>{2, 3}));
  head.clear();
  for (const auto& name : parameter_names(*model))
    if (has_prefix(name, slot)) head.push_back(name);
  EXPECT_EQ(head, (std::vector<std::string>{slot + ".0.weight", slot + ".0.bias",
                                            slot + ".2.weight", slot + ".2.bias"}));
}

TEST_P(RegistryRow, MatchesPyTorchReference) {
  const std::string name = GetParam();
  if (!test::have_fixture(name + ".io.safetensors") || !test::have_fixture(name + ".weights.safetensors"))
    GTEST_SKIP() << "fixtures for " << name << " missing: run tests/reference/make_fixtures.py";
  torch::NoGradGuard no_grad;
  Backbone model = spec().make(spec().source_classes);
  LoadReport report =
      load_state_dict(*model, load_safetensors(test::fixture(name + ".weights.safetensors")).tensors);
  ASSERT_TRUE(report.clean()) << report.summary();
  model->eval();

  TensorList io = load_safetensors(test::fixture(name + ".io.safetensors")).tensors;
  torch::Tensor features = model->features(tensor_named(io, "input"));
  torch::Tensor logits = model->classify(features);
  EXPECT_LE(test::rel_error(features, tensor_named(io, "features")), 1e-4);
  EXPECT_LE(test::rel_error(logits, tensor_named(io, "logits")), 1e-4);
}

std::vector<std::string> all_names() {
  std::vector<std::string> out;
  for (const auto& row : backbone_registry()) out.push_back(row.name);
  return out;
}

INSTANTIATE_TEST_SUITE_P(All, RegistryRow, ::testing::ValuesIn(all_names()),
                         [](const auto& info) { return info.param; });

TEST(Registry, RowsHaveUniqueNamesAndConsistentSpecs) {
  std::set<std::string> names;
  for (const auto& row : backbone_registry()) {
    EXPECT_TRUE(names.insert(row.name).second) << row.name;
    EXPECT_FALSE(row.description.empty()) << row.name;
    EXPECT_TRUE(static_cast<bool>(row.make)) << row.name;
    EXPECT_EQ(row.input.channels, 3) << row.name;
    const bool cifar = row.family == "cifar_resnet";
    EXPECT_EQ(row.input.size, cifar ? 32 : 224) << row.name;
    EXPECT_EQ(row.input.resize, cifar ? 32 : 256) << row.name;
    EXPECT_EQ(row.source_classes, cifar ? 10 : 1000) << row.name;
    EXPECT_FLOAT_EQ(row.input.mean[0], 0.485f) << row.name;
    EXPECT_FLOAT_EQ(row.input.std[2], 0.225f) << row.name;
  }
  EXPECT_EQ(names.size(), 13u);
}

TEST(Registry, FindBackboneNamesTheOptionTheValueAndTheChoices) {
  EXPECT_EQ(find_backbone("vgg16_bn").name, "vgg16_bn");
  try {
    find_backbone("resnet19");
    FAIL() << "expected graft::UsageError";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("--backbone"), std::string::npos) << what;
    EXPECT_NE(what.find("resnet19"), std::string::npos) << what;
    for (const auto& row : backbone_registry())
      EXPECT_NE(what.find(row.name), std::string::npos) << what;
  }
  EXPECT_EQ(backbone_names().rfind("resnet18, resnet34", 0), 0u) << backbone_names();
}

TEST(Registry, ParameterCountsMatchTorchvision) {
  // From sum(p.numel() for p in model.parameters()) in torchvision 0.14 and
  // tests/reference/cifar_resnet_ref.py.
  const std::map<std::string, int64_t> expected = {
      {"resnet18", 11689512}, {"resnet34", 21797672},  {"resnet50", 25557032},
      {"alexnet", 61100840},  {"vgg11", 132863336},    {"vgg11_bn", 132868840},
      {"vgg16", 138357544},   {"vgg16_bn", 138365992}, {"googlenet", 6624904},
      {"resnet20", 269722},   {"resnet32", 464154},    {"resnet44", 658586},
      {"resnet56", 853018}};
  for (const auto& row : backbone_registry()) {
    ASSERT_TRUE(expected.count(row.name)) << row.name;
    EXPECT_EQ(count_parameters(*row.make(row.source_classes)), expected.at(row.name)) << row.name;
  }
}

TEST(Registry, MacCountsMatchPublishedValues) {
  // torchvision's documented GFLOPS (which are MACs) and He et al.'s ResNet-20.
  const std::map<std::string, double> expected = {
      {"resnet18", 1.81e9}, {"resnet50", 4.09e9},   {"alexnet", 0.71e9},
      {"vgg16", 15.47e9},   {"googlenet", 1.50e9},  {"resnet20", 41e6}};
  for (const auto& [name, macs] : expected) {
    const BackboneSpec& row = find_backbone(name);
    Backbone model = row.make(row.source_classes);
    model->train();
    const double got = static_cast<double>(count_macs(*model, row.input));
    EXPECT_NEAR(got / macs, 1.0, 0.03) << name << ": " << got << " MACs, expected about " << macs;
    EXPECT_TRUE(model->is_training()) << name << ": count_macs must restore the mode";
  }
}

TEST(Backbone, SetClassifierKeepsDeviceDtypeAndMode) {
  namespace nn = torch::nn;
  Backbone model = find_backbone("resnet20").make(10);
  model->to(torch::kFloat64);
  model->eval();
  model->set_classifier(nn::AnyModule(SequentialHead(nn::Linear(64, 8), nn::Dropout(0.5))));
  for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat64);
  for (const auto& m : model->modules()) EXPECT_FALSE(m->is_training());
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({3, 3, 32, 32}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(model->forward(x), model->classify(model->features(x))));
}

TEST(Backbone, UnsupportedDepthsAreErrors) {
  EXPECT_THROW(make_resnet(101, 10), Error);
  EXPECT_THROW(make_cifar_resnet(110, 10), Error);
  EXPECT_THROW(make_vgg(19, false, 10), Error);
}

}  // namespace
}  // namespace graft
