// Contract tests over every row of the backbone registry, and parity with the
// PyTorch reference (fixtures from tests/reference/backbone_fixtures.py).

#include "graft/models/registry.h"

#include <gtest/gtest.h>

#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "graft/core/error.h"
#include "graft/models/families.h"
#include "graft/models/fast.h"
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

// From sum(p.numel() for p in model.parameters()) in torchvision 0.14 and
// tests/reference/cifar_resnet_ref.py.
const std::map<std::string, int64_t> kTorchvisionParameters = {
    {"resnet18", 11689512}, {"resnet34", 21797672},  {"resnet50", 25557032},
    {"alexnet", 61100840},  {"vgg11", 132863336},    {"vgg11_bn", 132868840},
    {"vgg16", 138357544},   {"vgg16_bn", 138365992}, {"googlenet", 6624904},
    {"resnet20", 269722},   {"resnet32", 464154},    {"resnet44", 658586},
    {"resnet56", 853018}};

std::vector<std::string> slot_parameters(const torch::nn::Module& m, const std::string& slot) {
  std::vector<std::string> out;
  for (const auto& name : parameter_names(m))
    if (has_prefix(name, slot)) out.push_back(name);
  return out;
}

void expect_stages_cover_parameters_once(const BackboneImpl& model) {
  const std::string& slot = model.classifier_name();
  const auto stages = model.stages();
  ASSERT_FALSE(stages.empty());
  std::map<std::string, int> prefix_hits;
  for (const auto& name : parameter_names(model)) {
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
      EXPECT_GT(prefix_hits[prefix], 0)
          << "stage " << stage.name << ": prefix " << prefix << " matches no parameter";
  }
}

class RegistryRow : public ::testing::TestWithParam<std::string> {
 protected:
  const BackboneSpec& spec() const { return find_backbone(GetParam()); }
};

// One model per row for the whole contract: building a VGG costs a second.
TEST_P(RegistryRow, Contract) {
  namespace nn = torch::nn;
  torch::NoGradGuard no_grad;
  const BackboneSpec& row = spec();
  Backbone model = row.make(row.source_classes);
  model->eval();
  EXPECT_EQ(model->feature_dim(), row.feature_dim);
  ASSERT_TRUE(kTorchvisionParameters.count(row.name)) << "add " << row.name << " to the table";
  EXPECT_EQ(count_parameters(*model), kTorchvisionParameters.at(row.name));
  expect_stages_cover_parameters_once(*model);

  // Shapes at the full input size are checked by the parity test; a small
  // input keeps this one fast (every family ends in a global or adaptive pool).
  torch::manual_seed(7);
  const int64_t side = std::min(row.input.size, 64);
  torch::Tensor x = torch::randn({2, row.input.channels, side, side});
  torch::Tensor f = model->features(x);
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{2, row.feature_dim}));
  EXPECT_EQ(model->classify(f).sizes(), (std::vector<int64_t>{2, row.source_classes}));

  const std::string slot = model->classifier_name();
  EXPECT_EQ(slot_parameters(*model, slot),
            (std::vector<std::string>{slot + ".weight", slot + ".bias"}));
  const int64_t before = count_parameters(*model);
  model->set_classifier(nn::AnyModule(nn::Linear(row.feature_dim, 7)));
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 7}));
  EXPECT_EQ(slot_parameters(*model, slot),
            (std::vector<std::string>{slot + ".weight", slot + ".bias"}));
  EXPECT_EQ(count_parameters(*model), before + (row.feature_dim + 1) * (7 - row.source_classes));

  model->set_classifier(nn::AnyModule(
      SequentialHead(nn::Linear(row.feature_dim, 16), nn::ReLU(), nn::Linear(16, 3))));
  EXPECT_EQ(model->classify(f).sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(slot_parameters(*model, slot),
            (std::vector<std::string>{slot + ".0.weight", slot + ".0.bias", slot + ".2.weight",
                                      slot + ".2.bias"}));
}

/// Loads `tensors` into `model` (the report must be clean) and compares its
/// features and logits with `<fixture>.io.safetensors`. The largest absolute
/// differences are recorded as test properties (see --gtest_output=xml).
void expect_model_matches_reference(Backbone model, const std::string& fixture,
                                    const TensorList& tensors) {
  torch::NoGradGuard no_grad;
  LoadReport report = load_state_dict(*model, tensors);
  ASSERT_TRUE(report.clean()) << report.summary();
  model->eval();

  TensorList io = load_safetensors(test::fixture(fixture + ".io.safetensors")).tensors;
  torch::Tensor features = model->features(tensor_named(io, "input"));
  torch::Tensor logits = model->classify(features);
  ASSERT_EQ(features.sizes(), tensor_named(io, "features").sizes());
  ASSERT_EQ(logits.sizes(), tensor_named(io, "logits").sizes());
  EXPECT_LE(test::rel_error(features, tensor_named(io, "features")), 1e-4);
  EXPECT_LE(test::rel_error(logits, tensor_named(io, "logits")), 1e-4);
  auto max_abs_diff = [](const torch::Tensor& a, const torch::Tensor& b) {
    std::ostringstream out;
    out << std::scientific << std::setprecision(3) << (a - b).abs().max().item<double>();
    return out.str();
  };
  ::testing::Test::RecordProperty("features_max_abs_diff",
                                  max_abs_diff(features, tensor_named(io, "features")));
  ::testing::Test::RecordProperty("logits_max_abs_diff",
                                  max_abs_diff(logits, tensor_named(io, "logits")));

  // The evaluation fast path (channels-last, BatchNorm folded into the
  // convolutions) against the same reference.
  to_channels_last(*model);
  {
    FoldedBatchNorm fold(*model);
    torch::Tensor fast = model->features(channels_last(tensor_named(io, "input")));
    EXPECT_LE(test::rel_error(fast, tensor_named(io, "features")), 1e-4) << fixture << " folded";
  }
  // Unfolded again: the registered parameters were never changed.
  EXPECT_LE(test::rel_error(model->features(tensor_named(io, "input")), tensor_named(io, "features")),
            1e-4);
}

/// The same for a fresh `name` backbone as its registry row builds it.
void expect_matches_reference(const std::string& name, const TensorList& tensors) {
  const BackboneSpec& row = find_backbone(name);
  expect_model_matches_reference(row.make(row.source_classes), name, tensors);
}

TEST_P(RegistryRow, MatchesPyTorchReference) {
  const std::string name = GetParam();
  if (!test::have_fixture(name + ".io.safetensors") ||
      !test::have_fixture(name + ".weights.safetensors"))
    GTEST_SKIP() << "fixtures for " << name << " missing: run tests/reference/make_fixtures.py";
  expect_matches_reference(
      name, load_safetensors(test::fixture(name + ".weights.safetensors")).tensors);
}

// The same weights as torch.save(model.state_dict(), path) writes them, the
// way torchvision publishes its checkpoints.
TEST_P(RegistryRow, MatchesPyTorchReferenceFromStateDictPth) {
  const std::string name = GetParam();
  if (!test::have_fixture(name + ".io.safetensors") ||
      !test::have_fixture(name + ".state_dict.pth"))
    GTEST_SKIP() << "fixtures for " << name << " missing: run tests/reference/make_fixtures.py";
  expect_matches_reference(name, read_weights(test::fixture(name + ".state_dict.pth")));
}

class CifarRow : public ::testing::TestWithParam<std::string> {};

// The same weights in akamaster's wrapping ({'state_dict': {'module.' + name:
// tensor}, 'best_prec1': ...}) and the legacy (pre-1.6) torch.save format.
TEST_P(CifarRow, MatchesPyTorchReferenceFromLegacyTh) {
  const std::string name = GetParam();
  if (!test::have_fixture(name + ".io.safetensors") || !test::have_fixture(name + ".legacy.th"))
    GTEST_SKIP() << "fixtures for " << name << " missing: run tests/reference/make_fixtures.py";
  expect_matches_reference(name, read_weights(test::fixture(name + ".legacy.th")));
}

// GoogLeNet without torchvision's transform_input: what graft built before the
// googlenet row had it, and what runs saved then still load as.
TEST(Registry, GoogLeNetWithoutTransformInputMatchesPyTorchReference) {
  const std::string fixture = "googlenet_no_transform";
  if (!test::have_fixture(fixture + ".io.safetensors") ||
      !test::have_fixture(fixture + ".state_dict.pth"))
    GTEST_SKIP() << "fixtures for " << fixture << " missing: run tests/reference/make_fixtures.py";
  expect_model_matches_reference(make_googlenet(1000, /*transform_input=*/false), fixture,
                                 read_weights(test::fixture(fixture + ".state_dict.pth")));
  expect_model_matches_reference(make_backbone(find_backbone("googlenet"), 1000, false), fixture,
                                 read_weights(test::fixture(fixture + ".state_dict.pth")));
}

// The transform matters: the googlenet reference (transform_input=True) is
// not reproduced by the same weights without it, so the parity test above
// would catch a row that lost it.
TEST(Registry, GoogLeNetReferenceNeedsTheInputTransform) {
  if (!test::have_fixture("googlenet.io.safetensors") ||
      !test::have_fixture("googlenet.state_dict.pth"))
    GTEST_SKIP() << "fixtures for googlenet missing: run tests/reference/make_fixtures.py";
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(find_backbone("googlenet").transform_input);
  Backbone model = make_googlenet(1000, /*transform_input=*/false);
  ASSERT_TRUE(load_state_dict(*model, read_weights(test::fixture("googlenet.state_dict.pth"))).clean());
  model->eval();
  TensorList io = load_safetensors(test::fixture("googlenet.io.safetensors")).tensors;
  EXPECT_GT(test::rel_error(model->forward(tensor_named(io, "input")), tensor_named(io, "logits")),
            1e-2);
}

TEST(Registry, OnlyGoogLeNetHasAnInputTransform) {
  for (const auto& row : backbone_registry())
    EXPECT_EQ(row.transform_input, row.family == "googlenet") << row.name;
  EXPECT_THROW(make_backbone(find_backbone("resnet20"), 10, /*transform_input=*/true), Error);
  EXPECT_EQ(backbone_key("googlenet", true), "googlenet+transform_input");
  EXPECT_EQ(backbone_key("resnet18", false), "resnet18");
}

std::vector<std::string> all_names() {
  std::vector<std::string> out;
  for (const auto& row : backbone_registry()) out.push_back(row.name);
  return out;
}

std::vector<std::string> cifar_names() {
  std::vector<std::string> out;
  for (const auto& row : backbone_registry())
    if (row.family == "cifar_resnet") out.push_back(row.name);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Registry, RegistryRow, ::testing::ValuesIn(all_names()),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Registry, CifarRow, ::testing::ValuesIn(cifar_names()),
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

TEST(Registry, MacCountsMatchPublishedValues) {
  // torchvision's documented GFLOPS (which are MACs) and He et al.'s ResNet-20.
  const std::map<std::string, double> expected = {{"resnet18", 1.81e9},  {"resnet50", 4.09e9},
                                                  {"alexnet", 0.71e9},   {"vgg16", 15.47e9},
                                                  {"googlenet", 1.50e9}, {"resnet20", 41e6}};
  for (const auto& [name, macs] : expected) {
    const BackboneSpec& row = find_backbone(name);
    Backbone model = row.make(row.source_classes);
    model->train();
    const double got = static_cast<double>(count_macs(*model, row.input));
    EXPECT_NEAR(got / macs, 1.0, 0.03) << name << ": " << got << " MACs, expected about " << macs;
    EXPECT_TRUE(model->is_training()) << name << ": count_macs must restore the mode";
  }
}

TEST(Backbone, SetClassifierFollowsTheBackbonesDtypeAndMode) {
  namespace nn = torch::nn;
  Backbone model = find_backbone("resnet20").make(10);
  model->to(torch::kFloat64);
  model->eval();
  model->set_classifier(nn::AnyModule(SequentialHead(nn::Linear(64, 8), nn::Dropout(0.5))));
  for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat64);
  for (const auto& m : model->modules()) EXPECT_FALSE(m->is_training());
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({1, 3, 32, 32}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(model->forward(x), model->classify(model->features(x))));
}

TEST(Backbone, TrainingModeBackwardReachesEveryParameter) {
  // One row per family but VGG (whose 130M parameters make this slow; its
  // layers are the same kinds as AlexNet's), on a small input.
  for (const std::string name : {"resnet20", "resnet18", "googlenet", "alexnet"}) {
    const BackboneSpec& row = find_backbone(name);
    Backbone model = row.make(5);
    model->train();
    torch::manual_seed(3);
    const int64_t side = std::min(row.input.size, 64);
    torch::Tensor loss = model->forward(torch::randn({2, 3, side, side})).pow(2).sum();
    loss.backward();
    for (const auto& p : model->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << name << ": " << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << name << ": " << p.key();
    }
  }
}

TEST(Backbone, UnsupportedDepthsAreErrors) {
  EXPECT_THROW(make_resnet(101, 10), Error);
  EXPECT_THROW(make_cifar_resnet(110, 10), Error);
  EXPECT_THROW(make_vgg(19, false, 10), Error);
}

}  // namespace
}  // namespace graft
