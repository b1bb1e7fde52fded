#include "graft/weights/state_dict.h"

#include <gtest/gtest.h>

#include "graft/models/registry.h"
#include "test_util.h"

namespace graft {
namespace {

TEST(StateDict, ReadsAZipCheckpointAndStripsTheDataParallelPrefix) {
  std::string path = test::shared_data(
      "pretrained/resnet_cifar10_akamaster/converted/resnet20-12fca82f.state_dict.pt");
  if (path.empty()) GTEST_SKIP() << "../shared/data is absent";
  TensorList t = read_weights(path);
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(t.front().first, "conv1.weight");  // stored as module.conv1.weight
  Backbone model = find_backbone("resnet20").make(10);
  LoadReport r = load_state_dict(*model, t);
  // The file predates num_batches_tracked: not reported, as in PyTorch.
  EXPECT_TRUE(r.clean()) << r.summary();
  auto named = model->named_parameters();
  for (const auto& [name, tensor] : t)
    if (named.contains(name)) EXPECT_TRUE(torch::equal(named[name], tensor)) << name;
}

TEST(StateDict, ReportsMissingUnexpectedAndMismatchedByName) {
  Backbone model = find_backbone("resnet20").make(10);
  TensorList t = state_dict(*model);
  t.erase(t.begin());                                          // conv1.weight missing
  t.emplace_back("extra.weight", torch::zeros({2}));           // unexpected
  for (auto& [name, tensor] : t)
    if (name == "linear.weight") tensor = torch::zeros({3, 64});  // shape mismatch
  LoadReport r = load_state_dict(*model, t);
  EXPECT_EQ(r.missing, std::vector<std::string>{"conv1.weight"});
  EXPECT_EQ(r.loaded, t.size() - 2);
  EXPECT_EQ(r.unexpected, std::vector<std::string>{"extra.weight"});
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_EQ(r.mismatched[0], "linear.weight: file [3, 64] vs model [10, 64]");
  // The source classifier can be skipped by prefix.
  LoadReport skip = load_state_dict(*model, t, {"linear"});
  EXPECT_TRUE(skip.mismatched.empty());
}

}  // namespace
}  // namespace graft
