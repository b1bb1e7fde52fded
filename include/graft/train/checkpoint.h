#pragma once
/// The last training state of a run, for --resume: model, optimiser, epoch,
/// best-so-far and the metrics rows, in ONE file written atomically, so a
/// killed run never leaves a half-updated checkpoint.

#include <string>
#include <vector>

#include <torch/torch.h>

#include "graft/train/epoch_row.h"

namespace graft {

struct TrainerState {
  int64_t epochs_done = 0;
  int64_t best_epoch = 0;
  double best_accuracy = 0;  // the best epoch's --select-metric score (higher is better; loss: -loss)
  int64_t bad_epochs = 0;
  std::vector<EpochRow> rows;
  /// Mid-epoch position (0 at an epoch boundary): optimiser steps done in
  /// epoch `epochs_done`, with the running sums of that epoch.
  int64_t step_in_epoch = 0;
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
  double seconds = 0;
};

/// RUN/checkpoint/last.safetensors. It also holds the global random
/// generator's state, so dropout continues the same stream after a resume.
std::string checkpoint_path(const std::string& run_dir);

void save_checkpoint(const std::string& run_dir, torch::nn::Module& model,
                     torch::optim::Optimizer& optimizer, const TrainerState& state);

/// Restores model and optimiser in place and returns the trainer state.
/// Throws graft::Error naming the file if it does not match the model.
TrainerState load_checkpoint(const std::string& run_dir, torch::nn::Module& model,
                             torch::optim::Optimizer& optimizer);

}  // namespace graft
