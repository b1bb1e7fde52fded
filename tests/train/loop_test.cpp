// The one training loop (train/loop.h) on a toy task: a linear regression
// whose every step the test can redo by hand, so the loop's schedule,
// warmup, clipping, skipped steps, resume, early stopping and time budget
// are checked against an independent computation.

#include "graft/train/loop.h"

#include <cmath>
#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "test_util.h"

namespace graft {
namespace {

constexpr int64_t kLoopRows = 16, kLoopBatch = 4;

// y = X w* on 16 fixed rows, 4 steps of 4 rows an epoch; MSE loss.
class LoopTestTask : public LoopTask {
 public:
  explicit LoopTestTask(std::vector<double> val_accuracy = {}, int64_t skip_step = -1,
                        std::vector<double> val_loss = {})
      : val_accuracy_(std::move(val_accuracy)), val_loss_(std::move(val_loss)), skip_step_(skip_step) {
    torch::manual_seed(11);
    lin_ = torch::nn::Linear(torch::nn::LinearOptions(3, 1).bias(false));
    x_ = torch::randn({kLoopRows, 3});
    y_ = x_.matmul(torch::tensor({1.0f, -2.0f, 0.5f})).unsqueeze(1);
  }
  torch::nn::Module& module() override { return *lin_; }
  std::vector<ParamGroup> param_groups() override { return {{"all", lin_->parameters(), 0.1, 0.0}}; }
  int64_t steps_per_epoch() override { return kLoopRows / kLoopBatch; }
  int64_t items_per_epoch() override { return kLoopRows; }
  const char* unit() const override { return "rows/s"; }
  void begin_epoch(int64_t, int64_t) override {}
  StepStats step(int64_t, int64_t s) override {
    if (s == skip_step_) return StepStats{0, 0, 0, 0, /*skip=*/true};
    auto loss = torch::mse_loss(lin_(x_.narrow(0, s * kLoopBatch, kLoopBatch)), y_.narrow(0, s * kLoopBatch, kLoopBatch));
    loss.backward();
    return StepStats{loss.item<double>() * kLoopBatch, 0, kLoopBatch, kLoopBatch, false};
  }
  bool has_validation() override { return !val_accuracy_.empty(); }
  Metrics validate() override {
    Metrics m;
    m.loss = val_loss_.empty() ? 0 : val_loss_.at(validations_);
    m.accuracy = val_accuracy_.at(validations_++);
    return m;
  }
  void save_model() override { saved_after_.push_back(validations_); }

  torch::Tensor weight() const { return lin_->weight.detach().clone(); }
  torch::Tensor x_, y_;
  std::vector<size_t> saved_after_;  // validations done when the model was saved

 private:
  torch::nn::Linear lin_{nullptr};
  std::vector<double> val_accuracy_, val_loss_;
  size_t validations_ = 0;
  int64_t skip_step_;
};

TrainOptions loop_test_options(const std::string& out) {
  TrainOptions o;
  o.out = out;
  o.epochs = 3;
  o.optimizer = "sgd";
  o.momentum = 0;
  o.schedule = "cosine";
  o.warmup_epochs = 1;
  o.clip_grad = 0.5;
  o.quiet = true;
  make_dirs(out);
  return o;
}

// The same training written out: warmup then cosine per step, the gradient
// clipped to norm 0.5 as torch's clip_grad_norm_ does, plain SGD. Returns
// the weights and each epoch's mean loss.
std::pair<torch::Tensor, std::vector<double>> loop_test_by_hand(const LoopTestTask& t, torch::Tensor w,
                                                                int64_t skip_step = -1) {
  const int64_t steps = kLoopRows / kLoopBatch, total = 3 * steps, warmup = steps;
  std::vector<double> epoch_loss;
  for (int64_t e = 0; e < 3; ++e) {
    double sum = 0;
    int64_t seen = 0;
    for (int64_t s = 0; s < steps; ++s) {
      if (s == skip_step) continue;
      const int64_t k = e * steps + s;
      const double factor = k < warmup ? double(k + 1) / warmup
                                       : 0.5 * (1 + std::cos(M_PI * double(k - warmup) / double(total - warmup)));
      torch::Tensor v = w.clone().requires_grad_(true);
      auto loss = torch::mse_loss(t.x_.narrow(0, s * kLoopBatch, kLoopBatch).matmul(v.t()),
                                  t.y_.narrow(0, s * kLoopBatch, kLoopBatch));
      loss.backward();
      torch::Tensor g = v.grad();
      const double norm = g.norm().item<double>();
      g = g * std::min(1.0, 0.5 / (norm + 1e-6));
      w = (w - 0.1 * factor * g).detach();
      sum += loss.item<double>() * kLoopBatch;
      seen += kLoopBatch;
    }
    epoch_loss.push_back(sum / double(seen));
  }
  return {w, epoch_loss};
}

std::vector<double> loop_test_train_losses(const std::string& run) {
  std::stringstream ss(read_file(run + "/metrics.csv"));
  std::string line;
  std::getline(ss, line);  // header
  std::vector<double> out;
  while (std::getline(ss, line)) out.push_back(std::stod(line.substr(line.find(',') + 1)));
  return out;
}

TEST(Loop, EqualsTheSameTrainingWrittenOut) {
  test::TempDir dir;
  LoopTestTask task;
  const torch::Tensor w0 = task.weight();
  TrainSummary s = run_loop(loop_test_options(dir / "run"), task);
  EXPECT_EQ(s.epochs_run, 3);
  EXPECT_EQ(s.steps, 12);
  EXPECT_FALSE(s.interrupted);
  auto [w, losses] = loop_test_by_hand(task, w0);
  EXPECT_LT((task.weight() - w).abs().max().item<double>(), 1e-6);
  const auto logged = loop_test_train_losses(dir / "run");
  ASSERT_EQ(logged.size(), 3u);
  for (size_t e = 0; e < 3; ++e) EXPECT_NEAR(logged[e], losses[e], 1e-5 * (1 + losses[e])) << e;
  // No validation: every epoch's model is kept.
  EXPECT_EQ(task.saved_after_.size(), 3u);
}

TEST(Loop, ASkippedStepNeitherStepsNorCounts) {
  test::TempDir dir;
  LoopTestTask task({}, /*skip_step=*/1);
  const torch::Tensor w0 = task.weight();
  TrainSummary s = run_loop(loop_test_options(dir / "run"), task);
  EXPECT_EQ(s.steps, 12);  // the loop still went through every step
  auto [w, losses] = loop_test_by_hand(task, w0, /*skip_step=*/1);
  EXPECT_LT((task.weight() - w).abs().max().item<double>(), 1e-6);
  const auto logged = loop_test_train_losses(dir / "run");
  for (size_t e = 0; e < 3; ++e) EXPECT_NEAR(logged[e], losses[e], 1e-5 * (1 + losses[e])) << e;
}

TEST(Loop, StoppedMidEpochAndResumedEqualsUninterrupted) {
  test::TempDir dir;
  LoopTestTask whole;
  run_loop(loop_test_options(dir / "whole"), whole);

  TrainOptions cut = loop_test_options(dir / "cut");
  cut.should_stop = [](int64_t step) { return step == 6; };  // step 2 of epoch 2
  LoopTestTask first;
  TrainSummary a = run_loop(cut, first);
  EXPECT_TRUE(a.interrupted);
  EXPECT_EQ(a.epochs_run, 1);
  cut.should_stop = nullptr;
  cut.resume = true;
  LoopTestTask second;  // fresh weights: the checkpoint must restore them
  TrainSummary b = run_loop(cut, second);
  EXPECT_FALSE(b.interrupted);
  EXPECT_EQ(b.epochs_run, 3);
  EXPECT_EQ(b.steps, 6);
  EXPECT_TRUE(second.weight().equal(whole.weight()));
  EXPECT_EQ(loop_test_train_losses(dir / "cut"), loop_test_train_losses(dir / "whole"));
}

TEST(Loop, KeepsTheBestEpochAndStopsEarly) {
  test::TempDir dir;
  TrainOptions o = loop_test_options(dir / "run");
  o.epochs = 6;
  o.patience = 2;
  LoopTestTask task({0.5, 0.7, 0.6, 0.6, 0.9, 0.9});
  TrainSummary s = run_loop(o, task);
  EXPECT_TRUE(s.stopped_early);
  EXPECT_EQ(s.epochs_run, 4);  // epochs 3 and 4 were no better than 2
  EXPECT_EQ(s.best_epoch, 2);
  EXPECT_DOUBLE_EQ(s.best_val_accuracy, 0.7);
  EXPECT_EQ(task.saved_after_, (std::vector<size_t>{1, 2}));
}

// --select-metric loss keeps the epoch of the lowest validation loss, not
// of the best accuracy; the summary still reports that epoch's accuracy.
TEST(Loop, SelectMetricLossKeepsTheLowestLoss) {
  test::TempDir dir;
  TrainOptions o = loop_test_options(dir / "run");
  o.epochs = 4;
  o.select_metric = "loss";
  LoopTestTask task({0.5, 0.9, 0.6, 0.7}, -1, {0.8, 0.6, 0.4, 0.5});
  TrainSummary s = run_loop(o, task);
  EXPECT_EQ(s.best_epoch, 3);
  EXPECT_DOUBLE_EQ(s.best_val_accuracy, 0.6);
  EXPECT_EQ(task.saved_after_, (std::vector<size_t>{1, 2, 3}));
  o.select_metric = "accuracy";
  o.out = dir / "acc";
  make_dirs(o.out);
  LoopTestTask by_accuracy({0.5, 0.9, 0.6, 0.7}, -1, {0.8, 0.6, 0.4, 0.5});
  EXPECT_EQ(run_loop(o, by_accuracy).best_epoch, 2);
}

TEST(Loop, TheTimeBudgetEndsTheRunAsDone) {
  test::TempDir dir;
  TrainOptions o = loop_test_options(dir / "run");
  o.time_budget = 1e-9;  // minutes: reached after the first step
  LoopTestTask task;
  TrainSummary s = run_loop(o, task);
  EXPECT_TRUE(s.budget_reached);
  EXPECT_FALSE(s.interrupted);
  EXPECT_EQ(s.steps, 1);
  EXPECT_EQ(s.epochs_run, 3);  // done: --resume has nothing left to do
  EXPECT_EQ(loop_test_train_losses(dir / "run").size(), 1u);
}

}  // namespace
}  // namespace graft
