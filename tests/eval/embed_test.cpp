// graft embed against references: an independent forward pass of the same
// weights (plain evaluation mode, pixels decoded and normalised here), and
// NumPy's own reader of the .npy file.

#include "graft/eval/embed.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "graft/core/files.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/weights/safetensors.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

class Embed : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_fixture("resnet20.weights.safetensors"))
      GTEST_SKIP() << "resnet20 fixtures missing: run tests/reference/make_fixtures.py";
    ModelInfo info;
    info.backbone = "resnet20";
    for (int c = 0; c < 10; ++c) info.classes.push_back("class" + std::to_string(c));
    info.input = find_backbone("resnet20").input;
    info.source_weights = "fixture";
    run_ = dir_ / "run";
    make_dirs(run_);
    write_file_atomic(run_ + "/model.json", to_json(info).dump(2) + "\n");
    fs::copy_file(test::fixture("resnet20.weights.safetensors"), run_ + "/model.safetensors");
    test::write_synthetic_image_folder(dir_ / "images", 2, 3, 32, 3, 11);
    for (const auto& f : fs::recursive_directory_iterator(dir_ / "images"))
      if (f.is_regular_file()) images_.push_back(f.path().string());
    std::sort(images_.begin(), images_.end());
    reference_ = reference_features(images_);
  }

  // resnet20's pooled features of the images, in plain evaluation mode.
  static torch::Tensor reference_features(const std::vector<std::string>& images) {
    torch::NoGradGuard no_grad;
    const BackboneSpec& spec = find_backbone("resnet20");
    Backbone ref = spec.make(10);
    EXPECT_TRUE(load_state_dict(*ref, read_weights(test::fixture("resnet20.weights.safetensors"))).clean());
    ref->eval();
    std::vector<torch::Tensor> xs;
    for (const auto& path : images) {
      cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
      torch::Tensor x = torch::from_blob(bgr.data, {32, 32, 3}, torch::kUInt8).flip({2}).to(torch::kFloat32) / 255;
      x = x.permute({2, 0, 1}).contiguous();
      for (int c = 0; c < 3; ++c) x[c] = (x[c] - spec.input.mean[c]) / spec.input.std[c];
      xs.push_back(x);
    }
    return ref->features(torch::stack(xs));
  }

  test::TempDir dir_;
  std::string run_;
  std::vector<std::string> images_;
  torch::Tensor reference_;
};

// The three formats hold the same rows, equal to the reference, in the
// order of the inputs (a folder sorted, then a file); NumPy reads the .npy.
TEST_F(Embed, RunFeaturesEqualTheReferenceInEveryFormat) {
  // The folder of class 1, then the first image of class 0 as a file.
  std::vector<std::string> want_inputs(images_.begin() + 3, images_.end());
  want_inputs.push_back(images_[0]);
  const torch::Tensor want =
      torch::cat({reference_.slice(0, 3), reference_.slice(0, 0, 1)});
  const std::string folder = fs::path(images_[3]).parent_path().string();
  for (const std::string ext : {"safetensors", "npy", "csv"}) {
    const std::string out = dir_ / ("e." + ext);
    const auto r = test::graft_cli({"embed", run_, folder, images_[0], "--out", out, "--threads", "1"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto summary = nlohmann::json::parse(r.out);
    EXPECT_EQ(summary["rows"], 4);
    EXPECT_EQ(summary["dim"], 64);
    torch::Tensor rows;
    std::vector<std::string> inputs;
    if (ext == "safetensors") {
      const SafetensorsFile f = load_safetensors(out);
      ASSERT_EQ(f.tensors.size(), 1u);
      EXPECT_EQ(f.tensors[0].first, "embeddings");
      rows = f.tensors[0].second;
      inputs = nlohmann::json::parse(f.metadata.at("inputs")).get<std::vector<std::string>>();
      EXPECT_EQ(f.metadata.at("source"), run_);
    } else if (ext == "npy") {
      // NumPy's reader, as a user's script would load it.
      const std::string dump = dir_ / "npy.txt";
      const std::string cmd = "/usr/bin/python3 -c \"import numpy, sys; a = numpy.load(sys.argv[1]); "
                              "print(a.dtype, *a.shape); [print(repr(float(v))) for v in a.ravel()]\" '" +
                              out + "' > '" + dump + "' 2>&1";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(dump);
      std::istringstream in(read_file(dump));
      std::string dtype;
      int64_t n = 0, d = 0;
      in >> dtype >> n >> d;
      EXPECT_EQ(dtype, "float32");
      ASSERT_EQ(n, 4);
      ASSERT_EQ(d, 64);
      std::vector<float> v(static_cast<size_t>(n * d));
      for (float& x : v) in >> x;
      rows = torch::tensor(v).reshape({n, d});
      std::istringstream list(read_file(out + ".inputs.txt"));
      for (std::string line; std::getline(list, line);) inputs.push_back(line);
    } else {
      std::istringstream csv(read_file(out));
      std::string line;
      std::getline(csv, line);
      EXPECT_EQ(line.substr(0, 12), "input,f0,f1,");
      std::vector<float> v;
      while (std::getline(csv, line)) {
        std::stringstream cells(line);
        std::string cell;
        std::getline(cells, cell, ',');
        inputs.push_back(cell);
        while (std::getline(cells, cell, ',')) v.push_back(std::stof(cell));
      }
      rows = torch::tensor(v).reshape({static_cast<int64_t>(inputs.size()), -1});
    }
    EXPECT_EQ(inputs, want_inputs) << ext;
    ASSERT_EQ(rows.sizes(), want.sizes()) << ext;
    EXPECT_LT((rows - want).abs().max().item<double>(), 1e-4) << ext;
  }
}

// --backbone with --weights: the source's features (the run above holds the
// same weights), keyed as graft train keys them.
TEST_F(Embed, BackboneWithWeightsEqualsTheReference) {
  const std::string out = dir_ / "b.safetensors";
  const auto r = test::graft_cli({"embed", "--backbone", "resnet20", "--weights",
                                  test::fixture("resnet20.weights.safetensors"), dir_ / "images", "--out", out,
                                  "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  const torch::Tensor rows = load_safetensors(out).tensors.at(0).second;
  EXPECT_LT((rows - reference_).abs().max().item<double>(), 1e-4);
}

TEST_F(Embed, BadInputsAreUsageErrorsNamingThem) {
  const std::string out = dir_ / "x.safetensors";
  write_file_atomic(out, "keep me");
  auto r = test::graft_cli({"embed", run_, images_[0], "--out", out});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(test::contains(r.err, "--overwrite")) << r.err;
  EXPECT_EQ(read_file(out), "keep me");
  r = test::graft_cli({"embed", run_, images_[0], "--out", dir_ / "x.bin"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(test::contains(r.err, "x.bin")) << r.err;
  r = test::graft_cli({"embed", run_, dir_ / "nothing.png", "--out", dir_ / "y.csv"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(test::contains(r.err, "nothing.png")) << r.err;
  r = test::graft_cli({"embed", "--backbone", "resnet20", images_[0], "--out", dir_ / "z.csv"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(test::contains(r.err, "--weights")) << r.err;
  r = test::graft_cli({"embed", run_, images_[0], "--out", dir_ / "w.csv", "--format", "parquet"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(test::contains(r.err, "parquet")) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "w.csv"));
}

}  // namespace
}  // namespace graft
