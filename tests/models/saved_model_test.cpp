// Run folders on disk (model.json + model.safetensors): the googlenet
// transform_input flag is recorded, and runs saved before it load as before.

#include "graft/models/saved_model.h"

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/models/registry.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace graft {
namespace {

ModelInfo googlenet_info(bool transform_input) {
  ModelInfo info;
  info.backbone = "googlenet";
  info.classes = {"a", "b"};
  info.input = find_backbone("googlenet").input;
  info.transform_input = transform_input;
  return info;
}

TEST(SavedModel, GoogLeNetRecordsTransformInputAndOlderRunsLoadWithoutIt) {
  torch::NoGradGuard no_grad;
  test::TempDir dir;
  torch::manual_seed(5);
  Backbone model = build_model(googlenet_info(true));
  // torchvision's init (std 0.01) makes the outputs vanish whatever the
  // input; He init keeps them alive so the transform shows in the logits.
  for (auto& p : model->parameters())
    if (p.dim() == 4) torch::nn::init::kaiming_normal_(p, 0.0, torch::kFanIn, torch::kReLU);
  model->eval();
  save_model(dir.path(), *model, googlenet_info(true));
  nlohmann::json j = read_json_file(dir / "model.json");
  EXPECT_EQ(j.value("transform_input", false), true);

  torch::manual_seed(6);
  const torch::Tensor x = torch::randn({2, 3, 64, 64});
  const torch::Tensor with = model->forward(x);
  LoadedModel loaded = load_model(dir.path());
  EXPECT_TRUE(loaded.info.transform_input);
  EXPECT_TRUE(torch::equal(loaded.model->forward(x), with));

  // A run saved before googlenet had the transform: no "transform_input" in
  // model.json. It loads without the transform, as it was trained.
  j.erase("transform_input");
  write_file_atomic(dir / "model.json", j.dump(2) + "\n");
  LoadedModel old = load_model(dir.path());
  EXPECT_FALSE(old.info.transform_input);
  Backbone plain = build_model(googlenet_info(false));
  ASSERT_TRUE(load_state_dict(*plain, state_dict(*model)).clean());
  plain->eval();
  const torch::Tensor without = old.model->forward(x);
  EXPECT_TRUE(torch::equal(without, plain->forward(x)));
  EXPECT_FALSE(torch::allclose(without, with));
}

TEST(SavedModel, TransformInputIsWrittenOnlyWhenTrue) {
  ModelInfo info;
  info.backbone = "resnet18";
  info.classes = {"a"};
  EXPECT_FALSE(to_json(info).contains("transform_input"));
  EXPECT_FALSE(model_info_from_json(to_json(info), "model.json").transform_input);
  EXPECT_TRUE(model_info_from_json(to_json(googlenet_info(true)), "model.json").transform_input);
}

}  // namespace
}  // namespace graft
