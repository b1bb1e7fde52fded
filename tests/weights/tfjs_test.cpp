#include "graft/weights/tfjs.h"

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/files.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

// The order tests/reference/tfjs_fixtures.py writes.
const std::vector<std::string> kNames = {"dense/kernel", "dense/bias", "ids", "scalar",
                                         "q8",           "q16",        "half"};

void expect_fixture_tensors(const TensorList& got) {
  auto want = test::load_named(test::fixture("tfjs_expected.safetensors"));
  ASSERT_EQ(got.size(), kNames.size());
  for (size_t i = 0; i < kNames.size(); ++i) {
    const auto& [name, t] = got[i];
    EXPECT_EQ(name, kNames[i]);
    const torch::Tensor& w = want.at(kNames[i]);
    EXPECT_EQ(t.scalar_type(), w.scalar_type()) << name;
    EXPECT_EQ(t.sizes(), w.sizes()) << name;
    // Bit-exact: the same double arithmetic, then one rounding to float32.
    EXPECT_TRUE(torch::equal(t, w)) << name << "\n" << t << "\n" << w;
  }
}

TEST(Tfjs, ReadsAWeightsManifestWithShardsAndQuantization) {
  if (!test::have_fixture("tfjs_expected.safetensors")) GTEST_SKIP() << "no reference fixtures";
  expect_fixture_tensors(read_tfjs_weights(test::fixture("tfjs/model-weights_manifest.json")));
  expect_fixture_tensors(read_weights(test::fixture("tfjs/model-weights_manifest.json")));
}

TEST(Tfjs, ReadsModelJsonWithAWeightsManifestKey) {
  if (!test::have_fixture("tfjs_expected.safetensors")) GTEST_SKIP() << "no reference fixtures";
  expect_fixture_tensors(read_weights(test::fixture("tfjs/model.json")));
}

TEST(Tfjs, HalfWeightsKeepSignedZeroAndSubnormals) {
  if (!test::have_fixture("tfjs_expected.safetensors")) GTEST_SKIP() << "no reference fixtures";
  TensorList t = read_tfjs_weights(test::fixture("tfjs/model-weights_manifest.json"));
  torch::Tensor half = t.back().second;
  EXPECT_TRUE(std::signbit(half[0][1].item<float>()));
  EXPECT_GT(half[0][0].item<float>(), 0.0f);
  EXPECT_LT(half[0][0].item<float>(), 1e-7f);
}

TEST(Tfjs, RecognisesManifests) {
  EXPECT_TRUE(is_tfjs_manifest("[]"));
  EXPECT_TRUE(is_tfjs_manifest("{\"weightsManifest\": []}"));
  EXPECT_FALSE(is_tfjs_manifest("{\"weight_map\": {}}"));
  EXPECT_FALSE(is_tfjs_manifest("[1, "));
}

// A one-group manifest over `shard` bytes written next to it.
std::string write_manifest(const test::TempDir& dir, const std::string& weights,
                           const std::string& shard, const std::string& paths = "[\"w.bin\"]") {
  write_file_atomic(dir / "w.bin", shard);
  std::string path = dir / "m-weights_manifest.json";
  write_file_atomic(path, "[{\"paths\": " + paths + ", \"weights\": " + weights + "}]");
  return path;
}

std::string floats(std::vector<float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

TEST(Tfjs, QuantizedInt32WeightsAreRounded) {
  test::TempDir dir;
  std::string m = write_manifest(
      dir,
      R"([{"name": "i", "shape": [3], "dtype": "int32",
           "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1}}])",
      std::string("\x00\x03\x0a", 3));
  TensorList t = read_tfjs_weights(m);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].second.scalar_type(), torch::kInt32);
  // -1, 0.5, 4 rounded as JS Math.round: halves go up.
  EXPECT_TRUE(torch::equal(t[0].second, torch::tensor({-1, 1, 4}, torch::kInt32)));
  // -2.5 rounds to -2 (Math.round), not -3; the dtype may come from original_dtype.
  m = write_manifest(
      dir,
      R"([{"name": "i", "shape": [2], "quantization": {"dtype": "uint8", "scale": 0.5,
           "min": -3, "original_dtype": "int32"}}])",
      std::string("\x01\x02", 2));
  t = read_tfjs_weights(m);
  EXPECT_TRUE(torch::equal(t[0].second, torch::tensor({-2, -2}, torch::kInt32)));
}

TEST(Tfjs, BoolWeightsAreOneBytePerValue) {
  test::TempDir dir;
  std::string m = write_manifest(
      dir, R"([{"name": "b", "shape": [3], "dtype": "bool"}, {"name": "f", "shape": [1], "dtype": "float32"}])",
      std::string("\x01\x00\x07", 3) + floats({1.5f}));
  TensorList t = read_tfjs_weights(m);
  EXPECT_TRUE(torch::equal(t[0].second, torch::tensor({true, false, true})));
  EXPECT_EQ(t[1].second.item<float>(), 1.5f);
}

TEST(Tfjs, ShortOrLongShardDataIsAnErrorNamingTheSizes) {
  test::TempDir dir;
  const char* w = R"([{"name": "a", "shape": [2, 2], "dtype": "float32"}])";
  std::string m = write_manifest(dir, w, floats({1, 2, 3}));
  std::string e = test::error_of([&] { read_tfjs_weights(m); });
  EXPECT_NE(e.find("12 bytes"), std::string::npos) << e;
  EXPECT_NE(e.find("need 16 bytes"), std::string::npos) << e;
  EXPECT_NE(e.find("m-weights_manifest.json"), std::string::npos) << e;
  m = write_manifest(dir, w, floats({1, 2, 3, 4, 5}));
  e = test::error_of([&] { read_tfjs_weights(m); });
  EXPECT_NE(e.find("20 bytes"), std::string::npos) << e;
}

TEST(Tfjs, AMissingShardIsNamed) {
  test::TempDir dir;
  std::string m = write_manifest(dir, R"([{"name": "a", "shape": [1], "dtype": "float32"}])",
                                 floats({1}), R"(["w.bin", "gone.bin"])");
  std::string e = test::error_of([&] { read_weights(m); });
  EXPECT_NE(e.find("gone.bin"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
}

TEST(Tfjs, BadManifestsAreErrors) {
  test::TempDir dir;
  auto err = [&](const std::string& weights) {
    return test::error_of([&] { read_tfjs_weights(write_manifest(dir, weights, floats({1}))); });
  };
  std::string e = err(R"([{"name": "a", "shape": [1], "dtype": "complex128"}])");
  EXPECT_NE(e.find("'complex128'"), std::string::npos) << e;
  EXPECT_NE(e.find("'a'"), std::string::npos) << e;
  e = err(R"([{"name": "a", "shape": [1], "dtype": "float32", "quantization": {"dtype": "int4"}}])");
  EXPECT_NE(e.find("'int4'"), std::string::npos) << e;
  e = err(R"([{"name": "a", "shape": [-1], "dtype": "float32"}])");
  EXPECT_NE(e.find("negative dimension -1"), std::string::npos) << e;
  // Four uint8 values fill the 4-byte shard: the missing scale is the error.
  e = err(R"([{"name": "a", "shape": [4], "dtype": "float32", "quantization": {"dtype": "uint8", "min": 0}}])");
  EXPECT_NE(e.find("\"scale\""), std::string::npos) << e;
  e = err(R"([{"shape": [1], "dtype": "float32"}])");
  EXPECT_NE(e.find("\"name\""), std::string::npos) << e;
  e = err(R"([{"name": "a", "shape": "x", "dtype": "float32"}])");
  EXPECT_NE(e.find("\"shape\""), std::string::npos) << e;

  write_file_atomic(dir / "bad.json", "[{\"paths\": ");
  e = test::error_of([&] { read_tfjs_weights(dir / "bad.json"); });
  EXPECT_NE(e.find("not valid JSON"), std::string::npos) << e;
  e = test::error_of([&] { read_weights(dir / "bad.json"); });
  EXPECT_NE(e.find("bad.json"), std::string::npos) << e;
  write_file_atomic(dir / "obj.json", "{\"weightsManifest\": 3}");
  e = test::error_of([&] { read_weights(dir / "obj.json"); });
  EXPECT_NE(e.find("not a TF.js weights manifest"), std::string::npos) << e;
}

// Real weights fetched by scripts/face_models.sh, when present.
TEST(Tfjs, ReadsTheFaceApiModelsWhenFetched) {
  const char* cache = std::getenv("GRAFT_CACHE_DIR");
  const char* home = std::getenv("HOME");
  std::string root = cache && *cache ? cache : std::string(home ? home : "") + "/.cache/graft";
  fs::path dir = fs::path(root) / "face-api-1.7.15" / "model";
  if (!fs::is_directory(dir)) GTEST_SKIP() << dir << " is absent (scripts/face_models.sh)";
  int manifests = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string path = entry.path().string();
    if (path.size() < 5 || path.compare(path.size() - 5, 5, ".json") != 0) continue;
    ++manifests;
    auto manifest = nlohmann::json::parse(read_file(path));
    size_t listed = 0;
    for (const auto& g : manifest) listed += g.at("weights").size();
    TensorList t = read_weights(path);
    EXPECT_EQ(t.size(), listed) << path;
    int64_t values = 0;
    for (const auto& [name, tensor] : t) {
      values += tensor.numel();
      if (tensor.is_floating_point())
        EXPECT_TRUE(torch::isfinite(tensor).all().item<bool>()) << path << " " << name;
    }
    std::cout << entry.path().filename().string() << ": " << t.size() << " tensors, " << values
              << " values\n";
    if (entry.path().filename() == "face_recognition_model-weights_manifest.json") {
      ASSERT_FALSE(t.empty());
      EXPECT_EQ(t.back().first, "fc");
      EXPECT_EQ(t.back().second.sizes(), (std::vector<int64_t>{256, 128}));  // 128-d embedding
    }
  }
  EXPECT_EQ(manifests, 7);
}

}  // namespace
}  // namespace graft
