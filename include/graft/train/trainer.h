#pragma once
/// Training a run of any task: train() looks the task up in the task table
/// (train/task.h), which runs it through the one loop (train/loop.h).

#include "graft/train/loop.h"
#include "graft/train/options.h"

namespace graft {

/// Trains as `options` says and writes the run directory. With
/// options.resume the settings come from the run's config.json (except
/// threads, workers, device and quiet) and training continues from the last
/// checkpoint. Throws graft::Error / UsageError on bad input, before long
/// work starts where possible.
TrainSummary train(TrainOptions options);

}  // namespace graft
