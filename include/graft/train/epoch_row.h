#pragma once
/// One epoch of a run as metrics.csv records it: written by the trainers
/// (train/checkpoint.h), read back by reports (report/run_data.h).
/// Torch-free.

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace graft {

/// Validation columns are NaN for a run without validation.
struct EpochRow {
  int64_t epoch = 0;
  double train_loss = 0, train_accuracy = 0, val_loss = 0, val_accuracy = 0, lr = 0;
  double seconds = 0, items_per_second = 0;
  /// --adapt dann|cdan: the domain classifier's training accuracy over the
  /// epoch (NaN otherwise; metrics.csv has the column only when a row has it).
  double domain_accuracy = std::numeric_limits<double>::quiet_NaN();
  /// --self-train pseudo|fixmatch: the share of the epoch's unlabelled inputs
  /// whose top probability reached --confidence, i.e. that gave a label (NaN
  /// otherwise; metrics.csv's unlabeled_kept column, only when a row has it).
  double unlabeled_kept = std::numeric_limits<double>::quiet_NaN();
};

/// metrics.csv: a header and one row per epoch.
std::string metrics_csv(const std::vector<EpochRow>& rows);

}  // namespace graft
