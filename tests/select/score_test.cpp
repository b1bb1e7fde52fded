// graft score: the scores of each candidate equal the transferability
// functions applied to the candidate's own features and source classifier;
// bad candidates fail before any feature is computed.

#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/files.h"
#include "graft/data/image_set.h"
#include "graft/eval/infer.h"
#include "graft/eval/int8_run.h"
#include "graft/models/registry.h"
#include "graft/select/score.h"
#include "graft/select/transferability.h"
#include "graft/weights/safetensors.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace graft {
namespace {

TEST(Score, CandidatesScoreTheirOwnFeaturesAndClassifier) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "target", 3, 8, 32);
  torch::manual_seed(5);
  Backbone source = find_backbone("resnet20").make(10);
  TensorList full = state_dict(*source);
  TensorList body;  // without the source classifier
  for (const auto& [k, v] : full)
    if (k.rfind(source->classifier_name() + ".", 0) != 0) body.emplace_back(k, v);
  save_safetensors(dir / "full.safetensors", full);
  save_safetensors(dir / "body.safetensors", body);

  ScoreOptions o;
  o.data = dir / "target";
  o.candidates = {"resnet20=" + (dir / "full.safetensors"), "resnet20=" + (dir / "body.safetensors")};
  o.cache_dir = dir / "cache";
  o.threads = 2;
  auto scores = score_candidates(o);
  ASSERT_EQ(scores.size(), 2u);

  // The reference: the same weights, features and logits by infer().
  ImageSet set = open_image_set(dir / "target");
  InferOptions io;
  source->eval();
  Outputs f = infer(*source, set, find_backbone("resnet20").input, io, /*features=*/true);
  Outputs z = infer(*source, set, find_backbone("resnet20").input, io, /*features=*/false);
  torch::Tensor probs = torch::softmax(z.values.to(torch::kFloat64), 1);
  for (const auto& s : scores) {
    SCOPED_TRACE(s.candidate);
    EXPECT_NEAR(s.logme, logme(f.values, f.labels), 1e-9);
    EXPECT_NEAR(s.h_score, h_score(f.values, f.labels), 1e-6);
    EXPECT_EQ(s.feature_dim, 64);
    const bool with_fc = s.candidate.find("full") != std::string::npos;
    EXPECT_EQ(s.has_source_classifier, with_fc);
    if (with_fc) {
      EXPECT_NEAR(s.leep, leep(probs, f.labels), 1e-6);
      EXPECT_NEAR(s.nce, nce(probs.argmax(1), f.labels), 1e-9);
    }
  }
  auto j = to_json(scores);
  EXPECT_EQ(j[0]["rank"], 1);
  EXPECT_NE(score_table(scores).find("| 2 |"), std::string::npos);
}

// --precision int8 (issue 21): the candidate's features are the int8
// network's, calibrated on --calibration images of the target set as
// prepare_int8_source calibrates (the reference below), and every score is
// computed on them; LEEP takes the float source classifier on those features.
TEST(Score, Int8CandidatesScoreTheirInt8Features) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "target", 3, 8, 32);
  torch::manual_seed(5);
  Backbone source = find_backbone("resnet20").make(10);
  save_safetensors(dir / "full.safetensors", state_dict(*source));

  ScoreOptions o;
  o.data = dir / "target";
  o.candidates = {"resnet20=" + (dir / "full.safetensors")};
  o.cache_dir = dir / "cache";
  o.threads = 2;
  o.precision = "int8";
  o.calibration = 16;
  const auto scores = score_candidates(o);
  ASSERT_EQ(scores.size(), 1u);
  o.precision = "fp32";
  const auto fp32 = score_candidates(o);

  ImageSet set = open_image_set(dir / "target");
  InferOptions io;
  io.precision = Precision::kInt8;
  io.calibration = 16;
  io.calibration_data = dir / "target";
  source->eval();
  prepare_int8_source(*source, "resnet20", find_backbone("resnet20").input, io);
  const Outputs f = infer(*source, set, find_backbone("resnet20").input, io, /*features=*/true);
  torch::Tensor probs;
  {
    torch::InferenceMode guard;
    probs = torch::softmax(source->classify(f.values).to(torch::kFloat64), 1);
  }
  const CandidateScore& s = scores[0];
  EXPECT_NEAR(s.logme, logme(f.values, f.labels), 1e-9);
  EXPECT_NEAR(s.h_score, h_score(f.values, f.labels), 1e-6);
  EXPECT_NEAR(s.leep, leep(probs, f.labels), 1e-6);
  EXPECT_NE(s.logme, fp32[0].logme) << "the int8 features are not the fp32 ones";

  test::CliResult bad = test::graft_cli({"score", "--data", dir / "target", "--backbones", "resnet20=none", "--precision", "int8",
                         "--calibration", "8"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_TRUE(test::contains(bad.err, "--calibration: 8 images (expected at least 16)")) << bad.err;
}

// graft score --source-data through the command line (issue 19): CKA, MMD,
// the MMD permutation p-value and the proxy A-distance in the JSON equal the
// functions of select/transferability.h applied to the features the run
// cached (every row used: fewer rows than --max-similarity-samples).
TEST(Score, SourceDataThroughTheCommandLine) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "target", 3, 8, 32, 3, /*seed=*/1);
  test::write_synthetic_image_folder(dir / "source", 2, 10, 32, 3, /*seed=*/2);
  test::CliResult r = test::graft_cli({"score", "--data", dir / "target", "--source-data", dir / "source",
                                       "--backbones", "resnet20=none", "--cache-dir", dir / "cache",
                                       "--permutations", "50", "--threads", "2", "--quiet", "--out",
                                       dir / "score.json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("| MMD p | PAD |"), std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(read_file(dir / "score.json"));
  const nlohmann::json& s = j.at(0);
  // The two cached feature files: 24 target rows and 20 source rows.
  torch::Tensor target, source;
  for (const auto& e : std::filesystem::directory_iterator(dir / "cache")) {
    torch::Tensor f = test::load_named(e.path().string()).at("features");
    (f.size(0) == 24 ? target : source) = f;
  }
  ASSERT_TRUE(target.defined() && source.defined());
  ASSERT_EQ(source.size(0), 20);
  test::expect_domain_shift(s, source, target, 50);

  test::CliResult bad = test::graft_cli({"score", "--data", dir / "target", "--source-data", dir / "source",
                                         "--backbones", "resnet20=none", "--permutations", "0"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--permutations: 0"), std::string::npos) << bad.err;
}

TEST(Score, BadCandidatesFailBeforeAnyWork) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "target", 2, 3, 32);
  ScoreOptions o;
  o.data = dir / "target";
  o.cache_dir = dir / "cache";
  auto err = [&](std::vector<std::string> c) {
    o.candidates = std::move(c);
    return test::error_of([&] { score_candidates(o); });
  };
  EXPECT_NE(err({"resnet20=" + (dir / "nope.pth")}).find("do not exist"), std::string::npos);
  EXPECT_NE(err({"resnet99=none"}).find("resnet99"), std::string::npos);
  EXPECT_NE(err({dir / "target"}).find("neither BACKBONE=WEIGHTS"), std::string::npos);
  write_file_atomic(dir / "junk.pth", "not a checkpoint");
  std::string e = err({"resnet20=none", "resnet20=" + (dir / "junk.pth")});
  EXPECT_NE(e.find("junk.pth"), std::string::npos) << e;
  // A resnet18 file offered as a resnet20: the body does not fit.
  torch::manual_seed(1);
  save_safetensors(dir / "r18.safetensors", state_dict(*find_backbone("resnet18").make(10)));
  e = err({"resnet20=" + (dir / "r18.safetensors")});
  EXPECT_NE(e.find("do not fit resnet20"), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(dir / "cache")) << "no feature was computed";
  o.candidates = {"resnet20=none"};
  o.classes = {"class0"};
  e = test::error_of([&] { score_candidates(o); });
  EXPECT_NE(e.find("1 class"), std::string::npos) << e;
}

}  // namespace
}  // namespace graft
