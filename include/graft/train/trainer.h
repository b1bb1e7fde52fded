#pragma once
/// The training loop shared by every strategy: data, model, optimiser,
/// epochs, validation, best model, checkpoints, resume, test.

#include <string>

#include "graft/eval/metrics.h"
#include "graft/train/options.h"

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

}  // namespace graft
