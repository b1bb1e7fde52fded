#pragma once
/// The training loop shared by every strategy: data, model, optimiser,
/// epochs, validation, best model, checkpoints, resume, test.

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "graft/eval/metrics.h"
#include "graft/train/options.h"
#include "graft/train/strategy.h"

namespace graft {

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
/// The options stored in o.out/config.json, with how-to-run settings
/// (threads, workers, device, quiet, stop_after_epoch, should_stop) from o.
TrainOptions resume_options(const TrainOptions& o);

}  // namespace graft
