// The image task trained through train() (train/image_train.cpp).

#include "graft/train/trainer.h"
#include "graft/train/image_train.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "graft/data/image_set.h"
#include "graft/eval/infer.h"
#include "graft/eval/int8_run.h"
#include "graft/models/saved_model.h"
#include "graft/weights/safetensors.h"
#include "test_util.h"

namespace graft {
namespace {

TrainOptions tiny_options(const test::TempDir& dir, const std::string& data) {
  TrainOptions o;
  o.data = data;
  o.val = data;
  o.backbone = "resnet20";
  o.weights = "none";
  o.batch_size = 8;
  o.augment = "none";
  o.workers = 2;
  o.cache_dir = dir / "cache";
  o.out = dir / "run";
  o.quiet = true;
  return o;
}

// tiny_options on a synthetic folder dir/data of `classes` x `per_class`
// images of 32 x 32 pixels.
TrainOptions tiny_run(const test::TempDir& dir, int classes, int per_class) {
  test::write_synthetic_image_folder(dir / "data", classes, per_class, 32);
  return tiny_options(dir, dir / "data");
}

TEST(Trainer, LearnsATinyFolderToFullTrainingAccuracy) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 3, 8);
  o.strategy = "full";
  o.epochs = 12;
  o.lr = 0.05;
  o.backbone_lr_mult = 1.0;
  TrainSummary s = train(o);
  EXPECT_EQ(s.epochs_run, 12);
  // Evaluate the saved model on the training images, independently of the
  // trainer's own bookkeeping.
  LoadedModel m = load_model(o.out);
  ImageSet set = open_image_set(dir / "data");
  Outputs out = infer(*m.model, set, m.info.input, InferOptions{}, false);
  double acc = out.values.argmax(1).eq(out.labels).to(torch::kFloat64).mean().item<double>();
  EXPECT_EQ(acc, 1.0);
  EXPECT_EQ(m.info.classes, set.classes);
  // metrics.csv has a header and one row per epoch.
  std::string csv = read_file(o.out + "/metrics.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 13);
}

TEST(Trainer, LinearProbeOnCachedFeaturesEqualsRecomputedFeatures) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 3, 6);
  o.strategy = "linear";
  o.epochs = 5;
  o.lr = 0.1;
  o.out = dir / "cached";
  train(o);
  o.feature_cache = false;
  o.out = dir / "recomputed";
  train(o);
  auto a = load_safetensors(dir / "cached/model.safetensors").tensors;
  auto b = load_safetensors(dir / "recomputed/model.safetensors").tensors;
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    if (a[i].first.rfind("linear.", 0) == 0) {
      // Only the head trains; batching of the feature pass may change the
      // last bits of the features.
      EXPECT_TRUE(torch::allclose(a[i].second, b[i].second, 1e-4, 1e-5)) << a[i].first;
    } else {
      EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
    }
  }
  // The on-disk cache was written and is reused.
  EXPECT_FALSE(std::filesystem::is_empty(dir / "cache"));
}

// --precision int8 on a linear probe (issue 21): the cached features are
// those of the int8 network that graft eval --precision int8 builds for the
// saved run (same data, --calibration and seed), not the fp32 ones.
TEST(Trainer, Int8LinearProbeTrainsOnTheRunsInt8Features) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 3, 8);
  o.strategy = "linear";
  o.epochs = 2;
  o.precision = "int8";
  o.calibration = 16;
  train(o);

  LoadedModel m = load_model(o.out);
  InferOptions io;
  io.precision = Precision::kInt8;
  io.calibration = 16;
  prepare_int8_run(m, o.out, io);  // calibrates on config.json's data, as graft eval does
  const ImageSet set = open_image_set(dir / "data");
  const torch::Tensor want = infer(*m.model, set, m.info.input, io, /*features=*/true).values;
  LoadedModel plain = load_model(o.out);
  const torch::Tensor fp32 = infer(*plain.model, set, m.info.input, InferOptions{}, /*features=*/true).values;
  ASSERT_GT((want - fp32).abs().max().item<double>(), 0.0);
  int matched = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "cache")) {
    if (e.path().extension() != ".safetensors") continue;
    const torch::Tensor f = test::load_named(e.path().string()).at("features");
    ASSERT_EQ(f.sizes(), want.sizes()) << e.path();
    EXPECT_LE((f.to(torch::kFloat32) - want).abs().max().item<double>(), 1e-5) << e.path();
    ++matched;
  }
  EXPECT_GE(matched, 1);

  o.strategy = "full";
  o.out = dir / "full";
  const std::string e = test::error_of([&] { train(o); });
  EXPECT_TRUE(test::contains(e, "--precision int8: for the linear probe's cached features")) << e;
}

TEST(Trainer, ResumeEqualsAnUninterruptedRun) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 2, 6);
  o.strategy = "full";
  o.augment = "light";
  o.head = "mlp:8";  // dropout: the random stream must resume too
  o.epochs = 4;
  o.optimizer = "adamw";
  o.lr = 0.01;
  o.out = dir / "whole";
  train(o);

  o.out = dir / "interrupted";
  // 12 training images in batches of 8: 2 steps an epoch. Stop in the
  // middle of epoch 2, and once more at the end of epoch 3.
  const auto s = test::train_stopped_twice(o, [](int64_t step) { return step == 3 || step == 6; });
  EXPECT_EQ(s[0].epochs_run, 1);
  EXPECT_EQ(s[1].epochs_run, 3);
  EXPECT_EQ(s[2].epochs_run, 4);
  EXPECT_EQ(read_file(dir / "whole/model.safetensors"),
            read_file(dir / "interrupted/model.safetensors"));
  // The last state (not only the best model) is the same too.
  test::expect_same_last_state(dir / "whole", dir / "interrupted");
}


TEST(Trainer, EarlyStoppingKeepsTheBestEpoch) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 2, 4);
  o.strategy = "linear";
  o.epochs = 6;
  o.patience = 2;
  // A learning rate too small to change any prediction: validation accuracy
  // never improves after the first epoch.
  o.lr = 1e-12;
  o.schedule = "constant";
  TrainSummary s = train(o);
  EXPECT_TRUE(s.stopped_early);
  EXPECT_EQ(s.epochs_run, 3);
  EXPECT_EQ(s.best_epoch, 1);
  std::string csv = read_file(o.out + "/metrics.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);
}


// Hardening: a diverging run stops with an error naming the epoch and step,
// and never leaves a model of NaNs behind (it used to exit 0 with one).
TEST(TrainerDivergence, AHugeLearningRateStopsWithAnErrorAndSavesNoNaNModel) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 2, 8);
  o.strategy = "full";
  o.epochs = 3;
  o.lr = 1e10;
  o.momentum = 0;
  std::string msg = test::error_of([&] { train(o); });
  EXPECT_NE(msg.find("training diverged"), std::string::npos) << msg;
  EXPECT_NE(msg.find("the loss of epoch "), std::string::npos) << msg;
  // Whatever was saved before the divergence is finite.
  if (std::filesystem::exists(o.out + "/model.safetensors"))
    for (auto& [name, t] : test::load_named(o.out + "/model.safetensors"))
      EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << name;
}

TEST(TrainerDivergence, NonFiniteOptionsAreUsageErrors) {
  test::TempDir dir;
  TrainOptions base = tiny_options(dir, dir / "data");
  struct Case {
    const char* flag;
    std::function<void(TrainOptions&)> set;
  } cases[] = {
      {"--lr", [](TrainOptions& o) { o.lr = INFINITY; }},
      {"--weight-decay", [](TrainOptions& o) { o.weight_decay = INFINITY; }},
      {"--momentum", [](TrainOptions& o) { o.momentum = NAN; }},
      {"--momentum", [](TrainOptions& o) { o.momentum = -1; }},
      {"--momentum", [](TrainOptions& o) { o.momentum = 1; }},
      {"--gamma", [](TrainOptions& o) { o.gamma = NAN; }},
      {"--gamma", [](TrainOptions& o) { o.gamma = 0; }},
      {"--label-smoothing", [](TrainOptions& o) { o.label_smoothing = NAN; }},
      {"--clip-grad", [](TrainOptions& o) { o.clip_grad = INFINITY; }},
      {"--epochs", [](TrainOptions& o) { o.epochs = INT64_MAX; }},
      {"--per-class", [](TrainOptions& o) { o.per_class = INT64_MAX; }},
  };
  for (const auto& c : cases) {
    TrainOptions o = base;
    c.set(o);
    try {
      validate(o);
      ADD_FAILURE() << c.flag << " accepted";
    } catch (const UsageError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(c.flag, 0), 0u) << e.what();
    }
  }
}

TEST(TrainerDivergence, NonFiniteSourceWeightsNameTheTensor) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 2, 4);
  o.epochs = 1;
  o.out = dir / "source";
  train(o);
  auto tensors = test::load_named(dir / "source/model.safetensors");
  TensorList list;
  for (auto& [k, v] : tensors) list.emplace_back(k, k == "conv1.weight" ? v.clone().fill_(NAN) : v);
  save_safetensors(dir / "nan.safetensors", list);
  o.weights = dir / "nan.safetensors";
  o.out = dir / "run";
  std::string msg = test::error_of([&] { train(o); });
  EXPECT_NE(msg.find("tensor 'conv1.weight' holds NaN"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir / "nan.safetensors"), std::string::npos) << msg;
  EXPECT_FALSE(std::filesystem::exists(dir / "run/model.safetensors"));
}

TEST(TrainerData, OneClassIsRefused) {
  test::TempDir dir;
  TrainOptions o = tiny_run(dir, 1, 6);
  std::string msg = test::error_of([&] { train(o); });
  EXPECT_NE(msg.find("needs at least 2 classes"), std::string::npos) << msg;
}

// Every image of one class is truncated: the run refuses, naming the class;
// with some readable ones left it goes on and says how many were left out.
TEST(TrainerData, AClassWithNoReadableImageIsAnError) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "data", 3, 4, 32);
  for (const auto& e : std::filesystem::directory_iterator(dir / "data/class1")) {
    std::string bytes = read_file(e.path().string());
    write_file_atomic(e.path().string(), bytes.substr(0, 40));  // header only
  }
  for (const char* strategy : {"full", "linear"}) {
    TrainOptions o = tiny_options(dir, dir / "data");
    o.strategy = strategy;
    o.epochs = 1;
    o.val = "";
    o.val_split = 0;
    o.out = dir / (std::string("run_") + strategy);
    std::string msg = test::error_of([&] { train(o); });
    EXPECT_NE(msg.find("class 'class1' has no readable training image (all 4 failed"), std::string::npos)
        << strategy << ": " << msg;
  }
}

}  // namespace
}  // namespace graft
