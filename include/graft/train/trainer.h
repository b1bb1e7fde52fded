#pragma once
/// The training loop shared by every strategy: data, model, optimiser,
/// epochs, validation, best model, checkpoints, resume, test.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "graft/eval/metrics.h"
#include "graft/train/options.h"
#include "graft/train/checkpoint.h"
#include "graft/train/strategy.h"

namespace graft {

namespace dist {
class GradReducer;
}  // namespace dist

struct TrainSummary {
  std::string out;
  int64_t epochs_run = 0;
  int64_t best_epoch = 0;  // 1-based
  double best_val_accuracy = 0;
  bool has_test = false;
  Metrics test;
  bool stopped_early = false;
  bool interrupted = false;  // stopped by a signal or should_stop; --resume goes on
};

/// Trains as `options` says and writes the run directory. With
/// options.resume the settings come from the run's config.json (except
/// threads, workers, device and quiet) and training continues from the last
/// checkpoint. Throws graft::Error / UsageError on bad input, before long
/// work starts where possible.
TrainSummary train(TrainOptions options);

// Shared by the image and text trainers.

/// Creates o.out, or checks it for --resume / --overwrite (removing only the
/// files graft writes there).
void prepare_run_dir(const TrainOptions& o);
/// SGD or AdamW over the groups, each at its own learning rate.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                        const std::vector<ParamGroup>& groups);
/// Every group's learning rate = its base rate x factor.
void set_lr(torch::optim::Optimizer& opt, const std::vector<ParamGroup>& groups, double factor);
/// The end of a training epoch, the same for every task: the metrics row
/// (logged, appended to state.rows and written to metrics.csv), the best
/// model kept (save_best() when this epoch's validation accuracy is the best
/// so far, or every epoch without validation), the checkpoint, then
/// --stop-after-epoch, stop requests and early stopping. Returns true when
/// the run stops after this epoch (summary.interrupted / stopped_early say
/// why). `unit` names the items of the throughput in the log line.
bool finish_epoch(const TrainOptions& o, int64_t epoch, int64_t step, const Metrics& val,
                  bool has_val, double lr, const char* unit, TrainerState& state,
                  TrainSummary& summary, const std::function<void()>& save_best,
                  torch::nn::Module& model, torch::optim::Optimizer& optimizer);
/// Data parallel: every rank must train with the same options (only threads,
/// workers, device and quiet may differ); rank 0 publishes its own, the
/// others compare and throw graft::UsageError naming the first that differs.
void check_same_options(dist::Group& group, const TrainOptions& o);
/// Data parallel, at the start of training: every rank takes rank 0's weights
/// and buffers, and the returned reducer averages the gradients of `params`
/// over the ranks. nullptr without a group (one process).
std::unique_ptr<dist::GradReducer> start_data_parallel(const std::shared_ptr<dist::Group>& group,
                                                       torch::nn::Module& module,
                                                       std::vector<torch::Tensor> params);
/// Data parallel, after a resumed checkpoint: it holds the sums of all ranks,
/// so rank 0 carries them on and the others start their share from zero.
void share_resumed_sums(TrainerState& state, bool lead);
/// Data parallel, at the end of an epoch: each rank's training sums (loss,
/// correct, seen) become those of all ranks. Nothing without a group.
void reduce_epoch_sums(dist::Group* group, TrainerState& state);
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
TrainOptions resume_options(const TrainOptions& o);

}  // namespace graft
