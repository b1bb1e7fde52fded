// The centroid head (models/head.h) against the numpy reference
// (tests/reference/centroid_fixtures.py), a centroid run trained through
// train(), and graft enroll (eval/run_eval.h).

#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/data/image_set.h"
#include "graft/eval/infer.h"
#include "graft/eval/run_eval.h"
#include "graft/models/head.h"
#include "graft/models/saved_model.h"
#include "graft/train/trainer.h"
#include "graft/weights/safetensors.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace graft {
namespace {

class CentroidHeadRef : public test::ReferenceTest {
 protected:
  CentroidHeadRef()
      : ReferenceTest("centroid/cases.safetensors", "centroid/expected.json", "no reference fixtures") {}
  torch::Tensor want(const std::string& key) const {
    const auto rows = json_[key].get<std::vector<std::vector<double>>>();
    torch::Tensor t = torch::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())},
                                   torch::kFloat64);
    for (size_t i = 0; i < rows.size(); ++i)
      for (size_t j = 0; j < rows[i].size(); ++j) t[i][j] = rows[i][j];
    return t;
  }
};

TEST_F(CentroidHeadRef, RowsLogitsAndPredictionsEqualTheNumpyReference) {
  const torch::Tensor x = at("train.features"), y = at("train.labels"), q = at("query.features");
  CentroidHead head(x.size(1), 3);
  // Fitted in uneven chunks, as the loop's batches come.
  head->add(x.narrow(0, 0, 7), y.narrow(0, 0, 7));
  head->add(x.narrow(0, 7, 50), y.narrow(0, 7, 50));
  head->add(x.narrow(0, 57, 33), y.narrow(0, 57, 33));
  head->finish();
  const torch::Tensor centroids = want("centroids");
  EXPECT_LT((head->weight.to(torch::kFloat64) - centroids).abs().max().item<double>(), 1e-6);
  const torch::Tensor logits = head->forward(q);
  EXPECT_LT((logits.to(torch::kFloat64) - want("logits")).abs().max().item<double>(), 1e-5);
  const auto predicted = json_["predicted"].get<std::vector<int64_t>>();
  for (size_t i = 0; i < predicted.size(); ++i) EXPECT_EQ(logits[i].argmax().item<int64_t>(), predicted[i]) << i;
  // One class's row from its examples alone (what graft enroll computes).
  for (int64_t c = 0; c < 3; ++c) {
    const torch::Tensor mine = x.index_select(0, y.eq(c).nonzero().squeeze(1));
    EXPECT_LT((class_centroid(mine).to(torch::kFloat64) - centroids[c]).abs().max().item<double>(), 1e-6);
  }
}

TrainOptions centroid_options(const test::TempDir& dir, int classes, int per_class) {
  test::write_synthetic_image_folder(dir / "data", classes, per_class, 32);
  TrainOptions o;
  o.data = dir / "data";
  o.val = dir / "data";
  o.backbone = "resnet20";
  o.weights = "none";
  o.head = "centroid";
  o.strategy = "linear";
  o.batch_size = 4;
  o.workers = 2;
  o.cache_dir = dir / "cache";
  o.out = dir / "run";
  o.quiet = true;
  return o;
}

// Features of a folder's images by the saved model's backbone.
Outputs run_features(const std::string& run, const std::string& folder, const OpenOptions& open = {}) {
  LoadedModel m = load_model(run);
  return infer(*m.model, open_image_set(folder, open), m.info.input, InferOptions{}, /*features=*/true);
}

torch::Tensor centroid_rows(const std::string& run) {
  for (auto& [name, t] : load_safetensors(run + "/model.safetensors").tensors)
    if (name == "linear.weight") return t;
  ADD_FAILURE() << "no linear.weight in " << run;
  return {};
}

TEST(CentroidRun, IsFittedInOnePassToTheClassMeansOfItsFeatures) {
  test::TempDir dir;
  TrainOptions o = centroid_options(dir, 3, 6);
  o.epochs = 5;  // one pass whatever it says
  const TrainSummary s = train(o);
  EXPECT_EQ(s.epochs_run, 1);
  EXPECT_EQ(s.steps, 5);  // 18 images in batches of 4
  // The rows are the class means of the saved model's own features,
  // computed again here outside the trainer.
  const Outputs f = run_features(o.out, o.data);
  const torch::Tensor rows = centroid_rows(o.out);
  ASSERT_EQ(rows.sizes(), (std::vector<int64_t>{3, 64}));
  for (int64_t c = 0; c < 3; ++c) {
    const torch::Tensor mine = f.values.index_select(0, f.labels.eq(c).nonzero().squeeze(1));
    EXPECT_LT((rows[c] - class_centroid(mine)).abs().max().item<double>(), 1e-5) << c;
  }
  EXPECT_TRUE(fs::exists(o.out + "/calibration.json"));
  // The loop's metrics row: no training loss or accuracy (nothing is
  // trained), a validation accuracy.
  const std::string csv = read_file(o.out + "/metrics.csv");
  EXPECT_TRUE(test::contains(csv, "\n1,nan,nan,")) << csv;
  // Without the feature cache the backbone runs per batch: the same rows.
  o.feature_cache = false;
  o.out = dir / "uncached";
  train(o);
  EXPECT_LT((centroid_rows(o.out) - rows).abs().max().item<double>(), 1e-5);
}

TEST(CentroidRun, EnrollAddsAClassThatPredictSeesAndReplacesItByName) {
  test::TempDir dir;
  TrainOptions o = centroid_options(dir, 3, 6);
  o.classes = {"class0", "class1"};
  train(o);
  const std::string new_class = dir / "data/class2";
  // The CLI: a JSON line, exit 0.
  test::CliResult r = test::graft_cli({"enroll", o.out, "--class", "stripes", new_class, "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = parse_json(r.out, "graft enroll's output");
  EXPECT_EQ(j["action"], "added");
  EXPECT_EQ(j["examples"], 6);
  EXPECT_EQ(j["classes"], 3);
  const LoadedModel m = load_model(o.out);
  EXPECT_EQ(m.info.classes, (std::vector<std::string>{"class0", "class1", "stripes"}));
  // Its row is the unit mean of its images' features; the old rows stay.
  OpenOptions as_class;
  as_class.as_class = "stripes";
  const torch::Tensor rows = centroid_rows(o.out);
  EXPECT_LT((rows[2] - class_centroid(run_features(o.out, new_class, as_class).values)).abs().max().item<double>(),
            1e-5);
  // graft predict sees it at once: the class2 images are "stripes".
  std::vector<std::string> images;
  for (const auto& e : fs::directory_iterator(new_class)) images.push_back(e.path().string());
  int right = 0;
  for (const auto& p : predict_image_run(o.out, images, ImageEvalOptions{}))
    right += p.top.at(0).label == "stripes";
  EXPECT_GE(right, 5);
  // The same name again replaces the row (from other images: class0's).
  const Enrolment e = enroll_image_class(o.out, "stripes", dir / "data/class0", ImageEvalOptions{});
  EXPECT_TRUE(e.replaced);
  EXPECT_EQ(load_model(o.out).info.classes.size(), 3u);
  EXPECT_LT((centroid_rows(o.out)[2] - rows[0]).abs().max().item<double>(), 1e-5);
  // A kill between the weights and model.json: the weights name the
  // classes, and they win.
  ModelInfo stale = m.info;
  stale.classes = {"class0", "class1"};
  write_file_atomic(o.out + "/model.json", to_json(stale).dump(2));
  EXPECT_EQ(load_model(o.out).info.classes.size(), 3u);
}

TEST(CentroidRun, RefusesWhatItCannotDoWithAClearMessage) {
  test::TempDir dir;
  TrainOptions o = centroid_options(dir, 2, 4);
  o.strategy = "full";
  EXPECT_TRUE(test::contains(test::error_of([&] { train(o); }), "--head centroid with --strategy full"));
  // A linear head's classes are fixed by training.
  o.head = "linear";
  o.strategy = "linear";
  o.epochs = 1;
  train(o);
  test::CliResult r = test::graft_cli({"enroll", o.out, "--class", "x", dir / "data/class0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(test::contains(r.err, "has a linear head")) << r.err;
  EXPECT_TRUE(test::contains(r.err, "--head centroid")) << r.err;
  r = test::graft_cli({"enroll", o.out, "--class", "", dir / "data/class0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(test::contains(r.err, "--class: ''")) << r.err;
}

}  // namespace
}  // namespace graft
