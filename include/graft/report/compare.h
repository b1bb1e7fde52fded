#pragma once
/// Side-by-side comparison of runs (graft compare): a markdown table for the
/// terminal and a self-contained HTML page.

#include <cstdint>
#include <string>
#include <vector>

namespace graft {

/// One run in a comparison.
struct CompareRow {
  std::string run;             // the directory as given
  double accuracy = 0;         // test accuracy if the run has one, else best validation
  std::string accuracy_kind;   // "test", "val" or "" (no accuracy yet: NaN)
  int64_t best_epoch = 0;      // see best_epoch() in run_data.h
  int64_t epochs = 0;          // epochs run (rows of metrics.csv)
  int64_t planned_epochs = 0;  // --epochs of the run
  double seconds = 0;          // training time: the sum of metrics.csv's seconds
  std::string strategy, backbone, weights, lr;
  std::vector<double> val_accuracy;  // per epoch, for the comparison plot
};

/// Reads each run (a search folder stands for its trials, best first).
/// Throws graft::Error naming the run and file at the first bad one.
std::vector<CompareRow> compare_runs(const std::vector<std::string>& runs);

/// A markdown table, one row per run, the best accuracy in bold.
std::string compare_markdown(const std::vector<CompareRow>& rows);

/// An HTML page: the same table and the runs' validation accuracy per epoch.
std::string compare_html(const std::vector<CompareRow>& rows);

}  // namespace graft
