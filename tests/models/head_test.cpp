#include "graft/models/head.h"

#include <gtest/gtest.h>

#include "graft/core/error.h"
#include "graft/models/backbone.h"
#include "test_util.h"

namespace graft {
namespace {

TEST(ModelsHead, LinearMapsFeaturesToClasses) {
  torch::nn::AnyModule head = make_head("linear", 8, 3);
  EXPECT_EQ(head.forward(torch::randn({5, 8})).sizes(), torch::IntArrayRef({5, 3}));
  auto params = head.ptr()->named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params["weight"].sizes(), torch::IntArrayRef({3, 8}));
  EXPECT_EQ(params["bias"].sizes(), torch::IntArrayRef({3}));
}

// mlp:HIDDEN is Linear, ReLU, Dropout(0.2), Linear with nn.Sequential's
// child names, so saved heads load in Python as nn.Sequential.
TEST(ModelsHead, MlpIsASequentialOfTorchNames) {
  torch::nn::AnyModule head = make_head("mlp:16", 8, 3);
  std::vector<std::string> names;
  for (const auto& p : head.ptr()->named_parameters()) names.push_back(p.key());
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"}));
  auto children = head.ptr()->named_children();
  ASSERT_EQ(children.size(), 4u);
  EXPECT_NE(dynamic_cast<torch::nn::ReLUImpl*>(children["1"].get()), nullptr);
  auto* dropout = dynamic_cast<torch::nn::DropoutImpl*>(children["2"].get());
  ASSERT_NE(dropout, nullptr);
  EXPECT_DOUBLE_EQ(dropout->options.p(), 0.2);
  EXPECT_EQ(head.ptr()->named_parameters()["3.weight"].sizes(), torch::IntArrayRef({3, 16}));
  head.ptr()->eval();
  EXPECT_EQ(head.forward(torch::randn({2, 8})).sizes(), torch::IntArrayRef({2, 3}));
}

TEST(ModelsHead, BadSpecsNameTheOptionAndTheValue) {
  for (const std::string spec : {"mlp:x", "mlp:", "mlp:0", "mlp:1234567", "conv", ""}) {
    SCOPED_TRACE(spec);
    try {
      make_head(spec, 4, 2);
      FAIL() << "no error";
    } catch (const UsageError& e) {
      EXPECT_TRUE(test::contains(e.what(), "--head: '" + spec + "'")) << e.what();
      EXPECT_TRUE(test::contains(e.what(), "expected")) << e.what();
    }
  }
}

}  // namespace
}  // namespace graft
