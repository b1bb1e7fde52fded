#pragma once
/// The one training loop. It knows no task: a task hands it a model, its
/// parameter groups, the forward and backward pass of a step, validation and
/// how to save the model (a LoopTask); the loop owns everything else:
/// epochs and steps, gradient accumulation (the reducer's side of it),
/// clipping, the learning-rate schedule and warmup, the optimiser, early
/// stopping and best-model selection, the checkpoint and --resume,
/// SIGINT/SIGTERM and should_stop, the time budget, the data-parallel
/// reducer, metrics.csv, the progress line and report.html.

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "graft/eval/metrics.h"
#include "graft/train/adapt.h"
#include "graft/train/checkpoint.h"
#include "graft/train/options.h"
#include "graft/train/strategy.h"

namespace graft {

namespace dist {
class Group;
}

/// What one optimiser step of one rank did.
struct StepStats {
  double loss_sum = 0;  // sum over the counted items of their loss
  int64_t correct = 0;  // counted items predicted right
  int64_t count = 0;    // items the loss and accuracy are over (MLM: masked tokens)
  int64_t items = 0;    // inputs read (images, texts, sequences, chips)
  /// Nothing to learn from (e.g. no token masked): no backward was run, the
  /// optimiser does not step. Data parallel, every rank must say the same.
  bool skip = false;
};

struct TrainSummary {
  std::string task;  // the row of the task table that ran
  std::string out;
  int64_t epochs_run = 0;
  int64_t best_epoch = 0;  // 1-based
  double best_val_accuracy = 0;
  Metrics last_val;        // of the last epoch
  int64_t steps = 0;       // optimiser steps in this process
  double seconds = 0;      // training time of the whole run, epochs before a resume included
  bool has_test = false;
  Metrics test;
  bool stopped_early = false;
  bool interrupted = false;     // stopped by a signal or should_stop; --resume goes on
  bool budget_reached = false;  // --time-budget: done, not interrupted
  /// The task's own fields of graft train's summary line (face: classes,
  /// train_accuracy, ...); null for none.
  nlohmann::json details;
};

/// One run of one task as the loop drives it.
class LoopTask {
 public:
  virtual ~LoopTask() = default;
  /// Checkpointed, checked for finite weights, broadcast from rank 0.
  virtual torch::nn::Module& module() = 0;
  /// The trainable parameters, each group at its own base rate.
  virtual std::vector<ParamGroup> param_groups() = 0;
  /// This rank's optimiser steps of one epoch, and the inputs it reads in them.
  virtual int64_t steps_per_epoch() = 0;
  virtual int64_t items_per_epoch() = 0;
  /// The unit of the throughput in the epoch line ("images/s").
  virtual const char* unit() const = 0;
  /// Data parallel: the gradient all-reduce runs in backward hooks when a
  /// step is one backward pass, after the step otherwise.
  virtual bool one_backward_per_step() const { return true; }
  /// Data parallel: rank 0's buffers (BatchNorm statistics) before every step,
  /// as DistributedDataParallel does.
  virtual bool sync_buffers() const { return false; }
  /// The schedule's clock: optimiser steps (false) or epochs (true).
  virtual bool schedule_per_epoch() const { return false; }
  /// Modes, data order and random state of an epoch; first_step > 0 when a
  /// resumed epoch goes on from there.
  virtual void begin_epoch(int64_t epoch, int64_t first_step) = 0;
  /// Forward and backward of this rank's share of the next step; the loop
  /// has zeroed the gradients and steps the optimiser after.
  virtual StepStats step(int64_t epoch, int64_t step_in_epoch) = 0;
  /// After the last step of an epoch, before its checkpoint; `whole`: the
  /// epoch ran from its first to its last step in this process.
  virtual void end_epoch(int64_t /*epoch*/, bool /*whole*/) {}
  virtual bool has_validation() = 0;
  /// Validation metrics, the same on every rank.
  virtual Metrics validate() = 0;
  /// Classification tasks: the logits [N, C] and labels [N] of the last
  /// validate(). The loop fits the saved model's temperature on them
  /// (--calibrate, eval/calibration.h). Undefined tensors: not calibrated.
  virtual std::pair<torch::Tensor, torch::Tensor> validation_logits() { return {}; }
  /// The epoch's domain-classifier accuracy (--adapt dann|cdan, issue 19),
  /// the same on every rank, asked after end_epoch; NaN: none (no column).
  virtual double domain_accuracy() { return std::numeric_limits<double>::quiet_NaN(); }
  /// The epoch's share of unlabelled inputs over --confidence (--self-train),
  /// the same on every rank, asked after end_epoch; NaN: none (no column).
  virtual double unlabeled_kept() { return std::numeric_limits<double>::quiet_NaN(); }
  /// true: every epoch's model is the result (no best-model selection).
  virtual bool keep_every_epoch() const { return false; }
  /// true: the model is fitted in one pass over the data (a centroid head):
  /// one epoch, whatever --epochs says.
  virtual bool one_pass() const { return false; }
  /// Writes the model files of the run (rank 0 only).
  virtual void save_model() = 0;
  /// After a run that was not interrupted (rank 0 only): the test set, if
  /// any, evaluated with the saved model; fills summary.has_test and .test.
  virtual void test(TrainSummary& /*summary*/) {}
};


/// A task's run: its options and where it runs (data parallel: the group,
/// this process's rank and the number of ranks; alone: none, 0 and 1).
class TaskRun : public LoopTask {
 public:
  double domain_accuracy() override { return domain_accuracy_; }
  double unlabeled_kept() override { return unlabeled_kept_; }

 protected:
  explicit TaskRun(const TrainOptions& o);
  /// num / den summed over the ranks (`what` names the all-reduce in
  /// errors); NaN when den is 0. The domain classifier's accuracy of an
  /// epoch (--adapt dann|cdan) is one.
  double ratio_over_ranks(int64_t num, int64_t den, const char* what);
  /// --unlabeled (issue 19): what the epoch's unlabelled terms counted (each
  /// step adds its own; zero it when an epoch starts from its first step)...
  UnlabeledCounts unlabeled_counts_;
  /// ...summed over the ranks at the end of an epoch with unlabelled data:
  /// domain_accuracy() (--adapt dann|cdan) and unlabeled_kept() (--self-train).
  void finish_unlabeled_epoch();
  const TrainOptions& o_;
  std::shared_ptr<dist::Group> group_;
  int rank_ = 0, world_ = 1;

 private:
  double domain_accuracy_ = std::numeric_limits<double>::quiet_NaN();
  double unlabeled_kept_ = std::numeric_limits<double>::quiet_NaN();
};

/// Runs epochs state.epochs_done..o.epochs of `task` and returns how it went.
/// Settings read from `o`: epochs, optimizer, momentum, nesterov, schedule,
/// warmup_epochs, step_size, gamma, clip_grad, patience, time_budget, resume,
/// stop_after_epoch, should_stop, group, out. With o.resume the model and
/// optimiser come from o.out's checkpoint. The caller prepared o.out and
/// wrote its config.json; rank 0 alone writes, and at the end runs the
/// task's test and writes report.html.
TrainSummary run_loop(const TrainOptions& o, LoopTask& task);

/// validate(o), then the task's run T built from o (checked before any long
/// work) goes through run_loop.
template <class T>
TrainSummary run_task(const TrainOptions& o) {
  validate(o);
  T task(o);
  return run_loop(o, task);
}

/// Writes o.out/report.html; a report that cannot be written is a warning,
/// never the failure of the run it describes.
void write_report_or_warn(const std::string& out);

// Shared by the tasks.

/// Creates o.out, or checks it for --resume / --overwrite (removing only the
/// files graft writes there).
void prepare_run_dir(const TrainOptions& o);
/// SGD or AdamW over the groups, each at its own learning rate.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                        const std::vector<ParamGroup>& groups);
/// Every group's learning rate = its base rate x factor.
void set_lr(torch::optim::Optimizer& opt, const std::vector<ParamGroup>& groups, double factor);
/// Data parallel: every rank must train with the same options (only threads,
/// workers, device and quiet may differ); rank 0 publishes its own, the
/// others compare and throw graft::UsageError naming the first that differs.
void check_same_options(dist::Group& group, const TrainOptions& o);
/// The data-parallel group of o (null alone or with one rank).
std::shared_ptr<dist::Group> active_group(const TrainOptions& o);
/// Rows of every item of a set, [n, D]: alone, compute(all); data parallel,
/// each rank computes a shard and the rows are gathered back into the set's
/// order, so every rank ends with all of them.
torch::Tensor sharded_rows(dist::Group* group, int64_t n, const std::string& what,
                           const std::function<torch::Tensor(const std::vector<size_t>&)>& compute);
/// A test hook: GRAFT_FAULT_DIST_KILL=RANK:STEP kills that rank with SIGKILL
/// after that many optimiser steps, as a crash would.
void maybe_inject_fault(int rank, int64_t step);
/// Divergence checks (an inf or huge learning rate, NaN inputs): training
/// stops with graft::Error instead of saving a model of NaNs.
/// Throws when the loss of step `step_in_epoch` (1-based) of `epoch`
/// (1-based) is not finite.
void check_finite_loss(double loss, int64_t epoch, int64_t step_in_epoch);
/// Throws naming the first parameter of `model` that holds a non-finite
/// value; `when` says where in the run ("after epoch 3").
void check_finite_parameters(torch::nn::Module& model, const std::string& when);
/// Throws naming `file` and the first floating-point tensor that holds a
/// non-finite value (source weights are checked before training).
void check_finite_weights(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                          const std::string& file);
/// The options stored in o.out/config.json, with how-to-run settings
/// (threads, workers, device, quiet, stop_after_epoch, should_stop) from o.
/// Without a checkpoint yet the run starts again (resume off, overwrite on).
TrainOptions resume_options(const TrainOptions& o);
/// Cross-entropy with the run's label smoothing and class weights (defined
/// or not).
torch::Tensor classification_loss(const TrainOptions& o, const torch::Tensor& logits,
                                  const torch::Tensor& labels, const torch::Tensor& class_weights);
/// --class-weights auto: n / (classes x count) per class; undefined for none.
torch::Tensor class_weight_tensor(const TrainOptions& o, const std::vector<int64_t>& counts);

}  // namespace graft
