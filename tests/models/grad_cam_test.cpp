// Grad-CAM (models/grad_cam.h) against a hand-written Python Grad-CAM with
// hooks (tests/reference/grad_cam_fixtures.py) on the registry fixtures'
// weights and inputs, for a torchvision ResNet, a CIFAR ResNet, VGG,
// AlexNet and GoogLeNet.

#include "graft/models/grad_cam.h"

#include <gtest/gtest.h>

#include "graft/models/registry.h"
#include "graft/weights/safetensors.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace graft {
namespace {

class GradCam : public ::testing::TestWithParam<std::string> {};

TEST_P(GradCam, MatchesPythonGradCamWithin1e4) {
  const std::string name = GetParam();
  const std::string cam_file = "grad_cam/" + name + ".safetensors";
  if (!test::have_fixture(cam_file) || !test::have_fixture(name + ".weights.safetensors"))
    GTEST_SKIP() << "fixtures for " << name << " missing: run tests/reference/make_fixtures.py";
  const BackboneSpec& row = find_backbone(name);
  Backbone model = row.make(row.source_classes);
  ASSERT_TRUE(load_state_dict(*model, load_safetensors(test::fixture(name + ".weights.safetensors")).tensors).clean());
  model->eval();
  const std::map<std::string, torch::Tensor> ref = test::load_named(test::fixture(cam_file));
  const torch::Tensor input = ref.at("input"), want = ref.at("cam");
  const torch::Tensor got = grad_cam(*model, input, ref.at("targets"));
  ASSERT_EQ(got.sizes(), want.sizes());
  const double diff = (got - want).abs().max().item<double>();
  std::cout << "[ GradCam ] " << name << ": max |C++ - Python| = " << diff << "\n";
  EXPECT_LT(diff, 1e-4) << name;
  // Not a degenerate map: each spans [0, 1].
  for (int64_t i = 0; i < got.size(0); ++i) {
    EXPECT_FLOAT_EQ(got[i].min().item<float>(), 0.0f) << name << " image " << i;
    EXPECT_FLOAT_EQ(got[i].max().item<float>(), 1.0f) << name << " image " << i;
  }
  // Another class gives another map (the comparison above is not vacuous).
  const torch::Tensor other = grad_cam(*model, input, (ref.at("targets") + 1) % row.source_classes);
  EXPECT_GT((other - want).abs().max().item<double>(), 1e-2) << name;
  // The parameters' gradients are left alone.
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.grad().defined()) << name;
}

INSTANTIATE_TEST_SUITE_P(Families, GradCam,
                         ::testing::Values("resnet18", "resnet20", "vgg11_bn", "alexnet", "googlenet"),
                         [](const auto& info) { return info.param; });

// features() is pool_features(feature_map()): the map is what global pooling
// sees, in every family.
TEST(GradCamFeatureMap, FeaturesPoolTheLastStage) {
  torch::NoGradGuard no_grad;
  for (const char* name : {"resnet20", "alexnet"}) {
    const BackboneSpec& row = find_backbone(name);
    Backbone model = row.make(4);
    model->eval();
    const torch::Tensor x = torch::randn({2, 3, row.input.size, row.input.size});
    const torch::Tensor map = model->feature_map(x);
    ASSERT_EQ(map.dim(), 4) << name;
    EXPECT_TRUE(torch::equal(model->pool_features(map), model->features(x))) << name;
  }
}

TEST(GradCamErrors, ShapesAndTargetsAreChecked) {
  const BackboneSpec& row = find_backbone("resnet20");
  Backbone model = row.make(3);
  model->eval();
  const torch::Tensor x = torch::randn({2, 3, 32, 32});
  EXPECT_TRUE(test::contains(test::error_of([&] { grad_cam(*model, x, torch::tensor({0})); }),
                             "(expected [N, C, H, W] and [N])"));
  EXPECT_TRUE(test::contains(test::error_of([&] { grad_cam(*model, x, torch::tensor({0, 3})); }),
                             "grad_cam: target classes 0 to 3 (expected 0 to 2)"));
  // Works under InferenceMode too (the report may be written from there).
  c10::InferenceMode inference;
  EXPECT_EQ(grad_cam(*model, x, torch::tensor({0, 2})).sizes(), (std::vector<int64_t>{2, 32, 32}));
}

}  // namespace
}  // namespace graft
