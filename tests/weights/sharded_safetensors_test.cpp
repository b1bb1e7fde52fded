#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/files.h"
#include "graft/weights/safetensors.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace graft {
namespace {

TensorList all_tensors() {
  return {
      {"embed.weight", torch::arange(12, torch::kFloat32).reshape({3, 4}) / 3.0},
      {"layer.0.weight", torch::arange(6, torch::kFloat32).reshape({2, 3}) - 2.5},
      {"layer.0.bias", (torch::arange(2, torch::kFloat32) * 0.25).to(torch::kFloat16)},
      {"layer.1.weight", torch::arange(8, torch::kInt64) * 1000000007},
      {"head.weight", torch::ones({5}) * 0.125},
  };
}

// Shards: a = embed, layer.0.*; b = layer.1, head (+ an unmapped "extra").
// The index lists names in an order different from both shards' layout.
void write_checkpoint(const test::TempDir& dir, const std::string& index_name,
                      const nlohmann::ordered_json& weight_map) {
  TensorList t = all_tensors();
  save_safetensors(dir / "model-00001-of-00002.safetensors", {t[0], t[1], t[2]});
  save_safetensors(dir / "model-00002-of-00002.safetensors",
                   {{"extra", torch::zeros({1})}, t[3], t[4]});
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", 123}};
  index["weight_map"] = weight_map;
  write_file_atomic(dir / index_name, index.dump(2));
}

nlohmann::ordered_json default_map() {
  nlohmann::ordered_json m = nlohmann::ordered_json::object();
  m["head.weight"] = "model-00002-of-00002.safetensors";
  m["embed.weight"] = "model-00001-of-00002.safetensors";
  m["layer.0.weight"] = "model-00001-of-00002.safetensors";
  m["layer.0.bias"] = "model-00001-of-00002.safetensors";
  m["layer.1.weight"] = "model-00002-of-00002.safetensors";
  return m;
}

void expect_in_map_order(const TensorList& got) {
  std::map<std::string, torch::Tensor> want;
  for (auto& [n, t] : all_tensors()) want[n] = t;
  std::vector<std::string> order = {"head.weight", "embed.weight", "layer.0.weight",
                                    "layer.0.bias", "layer.1.weight"};
  ASSERT_EQ(got.size(), order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(got[i].first, order[i]);
    EXPECT_EQ(got[i].second.scalar_type(), want[order[i]].scalar_type()) << order[i];
    EXPECT_TRUE(torch::equal(got[i].second, want[order[i]])) << order[i];
  }
}

TEST(ShardedSafetensors, ReadsTheIndexFileInWeightMapOrder) {
  test::TempDir dir;
  write_checkpoint(dir, "model.safetensors.index.json", default_map());
  expect_in_map_order(read_weights(dir / "model.safetensors.index.json"));
}

TEST(ShardedSafetensors, ReadsAFolderHoldingTheIndex) {
  test::TempDir dir;
  write_checkpoint(dir, "model.safetensors.index.json", default_map());
  expect_in_map_order(read_weights(dir.path()));
  expect_in_map_order(read_weights(dir.path() + "/"));
}

TEST(ShardedSafetensors, AnIndexWithAnotherNameIsReadByPath) {
  test::TempDir dir;
  write_checkpoint(dir, "pytorch_model.safetensors.index.json", default_map());
  expect_in_map_order(read_weights(dir / "pytorch_model.safetensors.index.json"));
  EXPECT_NE(test::error_of([&] { read_weights(dir.path()); }).find("model.safetensors.index.json"),
            std::string::npos);
}

TEST(ShardedSafetensors, ReadsAFolderHoldingASingleModelSafetensors) {
  test::TempDir dir;
  save_safetensors(dir / "model.safetensors", all_tensors());
  TensorList got = read_weights(dir.path());
  ASSERT_EQ(got.size(), all_tensors().size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, all_tensors()[i].first);
    EXPECT_TRUE(torch::equal(got[i].second, all_tensors()[i].second));
  }
}

TEST(ShardedSafetensors, ShardsResolveRelativeToTheIndexNotTheWorkingDir) {
  test::TempDir dir;
  std::string sub = dir / "ckpt";
  make_dirs(sub);
  TensorList t = all_tensors();
  save_safetensors(sub + "/a.safetensors", t);
  nlohmann::ordered_json index;
  index["weight_map"] = {{"embed.weight", "a.safetensors"}};
  write_file_atomic(sub + "/model.safetensors.index.json", index.dump());
  TensorList got = read_weights(sub + "/model.safetensors.index.json");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(torch::equal(got[0].second, t[0].second));
}

// The error of reading a checkpoint whose index maps layer.1.weight to `shard`.
std::string error_with_layer1_in(const std::string& shard) {
  test::TempDir dir;
  nlohmann::ordered_json m = default_map();
  m["layer.1.weight"] = shard;
  write_checkpoint(dir, "model.safetensors.index.json", m);
  return test::error_of([&] { read_weights(dir.path()); });
}

TEST(ShardedSafetensors, AMissingShardIsNamed) {
  std::string e = error_with_layer1_in("model-00003-of-00002.safetensors");
  EXPECT_NE(e.find("model-00003-of-00002.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
}

TEST(ShardedSafetensors, ATensorAbsentFromItsShardIsNamedWithTheShard) {
  std::string e = error_with_layer1_in("model-00001-of-00002.safetensors");  // it is in shard 2
  EXPECT_NE(e.find("'layer.1.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find("model-00001-of-00002.safetensors"), std::string::npos) << e;
}

TEST(ShardedSafetensors, BadIndexFilesAreErrors) {
  test::TempDir dir;
  write_file_atomic(dir / "model.safetensors.index.json", "{\"weight_map\": ");
  EXPECT_NE(test::error_of([&] { read_weights(dir.path()); }).find("not valid JSON"),
            std::string::npos);
  write_file_atomic(dir / "model.safetensors.index.json", "{\"weight_map\": [1]}");
  EXPECT_NE(test::error_of([&] { read_weights(dir.path()); }).find("weight_map"),
            std::string::npos);
  write_file_atomic(dir / "model.safetensors.index.json", "{\"weight_map\": {\"a\": 3}}");
  EXPECT_NE(test::error_of([&] { read_weights(dir.path()); }).find("'a'"), std::string::npos);
  write_file_atomic(dir / "other.json", "{\"hello\": 1}");
  EXPECT_NE(test::error_of([&] { read_weights(dir / "other.json"); }).find("neither"),
            std::string::npos);
  test::TempDir empty;
  EXPECT_NE(test::error_of([&] { read_weights(empty.path()); }).find("folder"),
            std::string::npos);
}

}  // namespace
}  // namespace graft
