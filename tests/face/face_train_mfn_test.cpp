// graft train --task face --embedder mobilefacenet (issue 18, section 3, "used
// by train"): the head is that of a brute-force recomputation on MobileFaceNet
// embeddings from the already-tested embedding path (FacePipeline with
// --embedder mobilefacenet, whose graph matches TF.js in mobilefacenet_test),
// every verb that loads a face run rebuilds MobileFaceNet, the run records its
// embedder, and what does not fit is refused: --finetune with it, an unknown
// --embedder, the other embedder with the run or its gallery, ONNX export, a
// head of the other embedder's size. Four AT&T people, already-cropped faces
// (--no-detect): images 1-5 to train, 6-8 to test.
#include <algorithm>
#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../../src/serve/models.h"
#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/face/face_train.h"
#include "graft/face/mobilefacenet.h"
#include "graft/face/pipeline.h"
#include "graft/weights/safetensors.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;
using test::contains;
using test::graft_cli;

// The files of `dir`'s identity folders, sorted as embed_face_folder sorts them.
std::vector<std::pair<std::string, std::string>> mfnt_files(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> out;  // (identity, path)
  for (const auto& id : fs::directory_iterator(dir))
    for (const auto& f : fs::directory_iterator(id.path()))
      out.push_back({id.path().filename().string(), f.path().string()});
  std::sort(out.begin(), out.end());
  return out;
}

class MobileFaceNetTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = test::face_data_missing(); !why.empty()) GTEST_SKIP() << why;
    if (!fs::exists(default_mobilefacenet_dir() + "/mobilefacenet.bin"))
      GTEST_SKIP() << "MobileFaceNet absent (bash scripts/mobilefacenet_model.sh)";
    test::copy_att_faces(dir_ / "train", {1, 4}, {1, 5});
    test::copy_att_faces(dir_ / "test", {1, 4}, {6, 8});
  }
  test::CliResult train(const std::string& out, const std::vector<std::string>& more) const {
    std::vector<std::string> a = {"train", "--task", "face", "--no-detect", "--threads", "1", "--quiet",
                                  "--data", dir_ / "train", "--out", dir_ / out};
    a.insert(a.end(), more.begin(), more.end());
    return graft_cli(a);
  }
  // The embedding path under test's reference: MobileFaceNet by name.
  static FacePipeline mfn_pipeline() {
    FaceOptions o;
    o.detect = false;
    o.embedder_name = kMobileFaceNetName;
    return FacePipeline(o);
  }
  test::TempDir dir_;
};

TEST_F(MobileFaceNetTrain, CentroidRunIsTheBruteForceNearestCentroidOfItsEmbeddings) {
  const test::CliResult t = train("run", {"--embedder", "mobilefacenet", "--test", dir_ / "test"});
  ASSERT_EQ(t.code, 0) << t.err;
  const std::string run = dir_ / "run";
  // The run records its embedder: name, the package files' sha256, size.
  const auto model = nlohmann::json::parse(read_file(run + "/face_model.json"));
  EXPECT_EQ(model["embedder"], kMobileFaceNetName);
  EXPECT_EQ(model["weights_sha256"], sha256_hex(read_file(default_mobilefacenet_dir() + "/mobilefacenet.json") +
                                                read_file(default_mobilefacenet_dir() + "/mobilefacenet.bin")));
  EXPECT_EQ(model["embedding_dim"], kMobileFaceNetDim);
  EXPECT_FALSE(model.contains("embedder_weights"));
  const auto cfg = nlohmann::json::parse(read_file(run + "/config.json"));
  EXPECT_EQ(cfg["options"]["embedder"], "mobilefacenet");
  EXPECT_EQ(cfg["options"]["backbone"], kMobileFaceNetName);

  // Brute force: each identity's mean embedding, re-normalised; each test
  // image's nearest centroid by Euclidean distance.
  FacePipeline p = mfn_pipeline();
  std::vector<std::string> ids;
  std::vector<torch::Tensor> sums;
  for (const auto& [id, path] : mfnt_files(dir_ / "train")) {
    if (ids.empty() || ids.back() != id) {
      ids.push_back(id);
      sums.push_back(torch::zeros({kMobileFaceNetDim}));
    }
    sums.back() += p.embed_file(path);
  }
  auto centroids = torch::stack(sums);
  centroids = centroids / centroids.norm(2, 1, true);
  const FaceClassifier c = load_face_classifier(run);
  EXPECT_EQ(c.classes, ids);
  ASSERT_EQ(c.weight.sizes().vec(), std::vector<int64_t>({4, kMobileFaceNetDim}));
  EXPECT_LT((c.weight - centroids).abs().max().item<double>(), 1e-5);

  std::vector<std::string> args = {"predict", run, "--json", "--top-k", "2", "--threads", "1"};
  std::vector<std::string> want_label;
  std::vector<double> want_distance;
  int right = 0;
  const auto test_files = mfnt_files(dir_ / "test");
  for (const auto& [id, path] : test_files) {
    args.push_back(path);
    const auto d = (centroids - p.embed_file(path).unsqueeze(0)).norm(2, 1);
    const int64_t best = d.argmin().item<int64_t>();
    want_label.push_back(ids[static_cast<size_t>(best)]);
    want_distance.push_back(d[best].item<double>());
    right += want_label.back() == id;
  }
  const double want_accuracy = static_cast<double>(right) / static_cast<double>(test_files.size());
  EXPECT_GE(want_accuracy, 0.5);  // a real embedder, not noise (4 classes)
  const auto tj = nlohmann::json::parse(t.out);
  EXPECT_DOUBLE_EQ(tj["test_accuracy"].get<double>(), want_accuracy);

  const test::CliResult pr = graft_cli(args);
  ASSERT_EQ(pr.code, 0) << pr.err;
  std::istringstream lines(pr.out);
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) {
    ASSERT_LT(n, test_files.size());
    const auto pj = nlohmann::json::parse(line);
    EXPECT_EQ(pj["top"][0]["label"], want_label[n]) << test_files[n].second;
    EXPECT_NEAR(pj["top"][0]["distance"].get<double>(), want_distance[n], 1e-5) << test_files[n].second;
    ++n;
  }
  EXPECT_EQ(n, test_files.size());
  const test::CliResult ev = graft_cli({"eval", run, "--data", dir_ / "test", "--threads", "1"});
  ASSERT_EQ(ev.code, 0) << ev.err;
  const auto ej = nlohmann::json::parse(ev.out);
  EXPECT_DOUBLE_EQ(ej["accuracy"].get<double>(), want_accuracy);
  EXPECT_EQ(ej["embedder"], kMobileFaceNetName);

  // graft embed on the run: MobileFaceNet's 192-d embeddings.
  const std::string emb = dir_ / "emb.safetensors";
  const test::CliResult em = graft_cli({"embed", run, dir_ / "test/s2", "--out", emb, "--threads", "1"});
  ASSERT_EQ(em.code, 0) << em.err;
  const SafetensorsFile ef = load_safetensors(emb);
  const auto names = nlohmann::json::parse(ef.metadata.at("inputs")).get<std::vector<std::string>>();
  ASSERT_EQ(names.size(), 3u);
  for (size_t i = 0; i < names.size(); ++i)
    EXPECT_LT((ef.tensors.at(0).second[static_cast<int64_t>(i)] - p.embed_file(names[i])).abs().max().item<double>(),
              1e-5)
        << names[i];
}

TEST_F(MobileFaceNetTrain, LinearHeadScoresMobileFaceNetEmbeddings) {
  const test::CliResult t = train("lin", {"--embedder", "mobilefacenet", "--head", "linear"});
  ASSERT_EQ(t.code, 0) << t.err;
  const std::string run = dir_ / "lin";
  const FaceClassifier c = load_face_classifier(run);
  ASSERT_EQ(c.weight.sizes().vec(), std::vector<int64_t>({4, kMobileFaceNetDim}));
  FacePipeline p = mfn_pipeline();
  // Train accuracy as reported = the head's argmax on the reference embeddings.
  int right = 0, n = 0;
  for (const auto& [id, path] : mfnt_files(dir_ / "train")) {
    const auto s = p.embed_file(path).unsqueeze(0).matmul(c.weight.t()) + c.bias;
    right += c.classes[static_cast<size_t>(s.argmax(1).item<int64_t>())] == id;
    ++n;
  }
  const double train_accuracy = nlohmann::json::parse(t.out)["train_accuracy"].get<double>();
  EXPECT_DOUBLE_EQ(train_accuracy, static_cast<double>(right) / n);
  // The head is fitted on centred embeddings: without that, MobileFaceNet's
  // common direction left it predicting one class (bench/RESULTS.md).
  EXPECT_GE(train_accuracy, 0.9);
  // predict's top-1 of a test image is that argmax too.
  const std::string probe = dir_ / "test/s3/6.pgm";
  const test::CliResult pr = graft_cli({"predict", run, "--json", "--threads", "1", probe});
  ASSERT_EQ(pr.code, 0) << pr.err;
  const auto s = p.embed_file(probe).unsqueeze(0).matmul(c.weight.t()) + c.bias;
  EXPECT_EQ(nlohmann::json::parse(pr.out)["top"][0]["label"], c.classes[static_cast<size_t>(s.argmax(1).item<int64_t>())]);
}

TEST_F(MobileFaceNetTrain, WhatDoesNotFitIsRefused) {
  // No fine-tuning of MobileFaceNet: a usage error naming both and what works.
  const test::CliResult ft = train("ft", {"--embedder", "mobilefacenet", "--finetune", "arcface"});
  EXPECT_EQ(ft.code, 2);
  EXPECT_TRUE(contains(ft.err, "--finetune: arcface with --embedder mobilefacenet")) << ft.err;
  EXPECT_TRUE(contains(ft.err, "--embedder dlib")) << ft.err;
  EXPECT_FALSE(fs::exists(dir_ / "ft/config.json"));
  const test::CliResult bad = train("bad", {"--embedder", "arcface"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_TRUE(contains(bad.err, "--embedder: 'arcface' is not valid (expected one of dlib, mobilefacenet)")) << bad.err;

  const test::CliResult t = train("run", {"--embedder", "mobilefacenet"});
  ASSERT_EQ(t.code, 0) << t.err;
  const std::string run = dir_ / "run";
  // The run with the other embedder asked for explicitly.
  FaceOptions other;
  other.detect = false;
  other.embedder_name = kFaceEmbedderName;
  other.embedder_run = run;
  try {
    FacePipeline p(other);
    ADD_FAILURE() << "a MobileFaceNet run was loaded with face-api's embedder";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "was trained on embedder human-models-3.0.4/mobilefacenet, but "
                                   "face-api-1.7.15/face_recognition_model was asked for"))
        << e.what();
  }
  // A gallery enrolled through the run is MobileFaceNet's: the default
  // embedder refuses it, and the run refuses a face-api gallery.
  const std::string g = dir_ / "g.json", gd = dir_ / "gd.json";
  const test::CliResult en = graft_cli({"face", "enroll", "--no-detect", "--threads", "1", "--embedder", run,
                                        "--gallery", g, dir_ / "train"});
  ASSERT_EQ(en.code, 0) << en.err;
  EXPECT_EQ(nlohmann::json::parse(read_file(g))["embedder"], kMobileFaceNetName);
  const std::string probe = dir_ / "test/s1/6.pgm";
  const test::CliResult id = graft_cli({"face", "identify", "--no-detect", "--threads", "1", "--gallery", g, probe});
  EXPECT_EQ(id.code, 1);
  EXPECT_TRUE(contains(id.err, "--embedder mobilefacenet")) << id.err;
  ASSERT_EQ(graft_cli({"face", "enroll", "--no-detect", "--threads", "1", "--gallery", gd, dir_ / "train"}).code, 0);
  const test::CliResult id2 = graft_cli({"face", "identify", "--no-detect", "--threads", "1", "--embedder", run,
                                         "--gallery", gd, probe});
  EXPECT_EQ(id2.code, 1);
  EXPECT_TRUE(contains(id2.err, "--embedder dlib")) << id2.err;
  // graft serve rebuilds MobileFaceNet for its gallery.
  serve::ServeOptions so;
  so.gallery = g;
  EXPECT_EQ(serve::load_served_gallery(so)->describe()["embedder"], kMobileFaceNetName);

  // ONNX export has no writer for MobileFaceNet's graph: a usage error.
  const test::CliResult ex = graft_cli({"export", run, "--format", "onnx", "--out", dir_ / "m.onnx"});
  EXPECT_EQ(ex.code, 2);
  EXPECT_TRUE(contains(ex.err, "--embedder mobilefacenet")) << ex.err;
  EXPECT_FALSE(fs::exists(dir_ / "m.onnx"));

  // A head of face-api's size in a MobileFaceNet run: refused, naming both.
  save_safetensors(run + "/head.safetensors", {{"weight", torch::zeros({4, 128})}});
  const test::CliResult ev = graft_cli({"eval", run, "--data", dir_ / "test", "--threads", "1"});
  EXPECT_EQ(ev.code, 1);
  EXPECT_TRUE(contains(ev.err, "a head of 128 inputs, but the run's embedder human-models-3.0.4/mobilefacenet gives "
                               "192-d embeddings"))
      << ev.err;
}

}  // namespace
}  // namespace graft
