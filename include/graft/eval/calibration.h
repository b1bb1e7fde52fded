#pragma once
/// Calibrated confidence for classification runs (image and text):
/// temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural
/// Networks"), its metrics (NLL, expected calibration error), and the
/// open-set answer "unknown" below a confidence threshold.
///
/// Training fits one temperature T on the validation logits of the saved
/// model and writes RUN/calibration.json; eval and predict divide the logits
/// by T before the softmax. Dividing by T > 0 never changes a prediction's
/// class. The file also keeps quantiles of the validation set's calibrated
/// top probability, so that a threshold can be chosen at a false-rejection
/// rate (`--reject-at-frr`).

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "graft/eval/metrics.h"
#include "graft/eval/reliability.h"

namespace graft {

/// The temperature's search range: T in [1/kMaxTemperature, kMaxTemperature].
inline constexpr double kMaxTemperature = 100;
/// Bins of the expected calibration error (Guo et al. use 15).
inline constexpr int kCalibrationBins = 15;

/// Mean negative log-likelihood of softmax(logits / t) at the labels, in
/// float64. logits [N, C], labels [N].
double mean_nll(const torch::Tensor& logits, const torch::Tensor& labels, double t = 1);

/// Expected calibration error of softmax(logits / t): the inputs fall in
/// `bins` equal-width bins of their top probability p, bin b holding
/// b/bins < p <= (b+1)/bins; ECE = sum over bins of |accuracy - mean p| x
/// (inputs in the bin) / N.
double expected_calibration_error(const torch::Tensor& logits, const torch::Tensor& labels, double t = 1,
                                  int bins = kCalibrationBins);

/// The bins expected_calibration_error sums over (the same binning), with
/// each bin's count, mean top probability and accuracy: the reliability
/// diagram of softmax(logits / t).
std::vector<ReliabilityBin> reliability_bins(const torch::Tensor& logits, const torch::Tensor& labels, double t = 1,
                                             int bins = kCalibrationBins);

struct TemperatureFit {
  double temperature = 1;
  /// false: the minimum lies at an end of the range, or is no lower than
  /// there (a validation set that the model separates perfectly, whose NLL
  /// falls to 0 as T -> 0), or the logits are not finite; temperature is
  /// then 1.
  bool converged = true;
  double nll_before = 0, nll_after = 0;
  double ece_before = 0, ece_after = 0;
  /// reliability_bins at T = 1 and at `temperature`.
  std::vector<ReliabilityBin> bins_before, bins_after;
  int64_t examples = 0;
};

/// The T > 0 that minimises mean_nll(logits, labels, T): golden-section
/// search on log T over the range (the NLL is convex in 1/T, so unimodal in
/// log T), to a relative width of 1e-9.
TemperatureFit fit_temperature(const torch::Tensor& logits, const torch::Tensor& labels);

/// What RUN/calibration.json says; absent file: not present, T = 1.
struct RunCalibration {
  bool present = false;
  std::string method = "none";  ///< "temperature" or "none" (--calibrate none)
  double temperature = 1;
  /// The validation set's calibrated top probability at the quantiles
  /// 0, 1/1000, ..., 1 (numpy's "linear" method).
  std::vector<double> confidence_quantiles;
};

/// Fits (method "temperature") or not ("none") on the validation logits and
/// labels of the model just saved, and writes RUN/calibration.json
/// atomically. A fit that does not converge is a warning, and T stays 1.
TemperatureFit write_run_calibration(const std::string& run, const std::string& method,
                                     const torch::Tensor& logits, const torch::Tensor& labels);
/// Reads RUN/calibration.json (graft::Error naming the file when damaged).
RunCalibration read_run_calibration(const std::string& run);

/// The top-probability threshold below which a share `frr` of the run's
/// validation inputs would be rejected. UsageError when the run kept no
/// validation confidences.
double threshold_at_frr(const RunCalibration& c, double frr, const std::string& run);

/// How eval and predict answer "unknown": below `reject_below`, or at the
/// threshold of `reject_at_frr` (0: off; at most one of them).
struct RejectOptions {
  double reject_below = 0;
  double reject_at_frr = 0;
};
/// The threshold of `r` for `run` (0: none); UsageError for a value outside
/// (0, 1) or both given.
double reject_threshold(const RejectOptions& r, const RunCalibration& c, const std::string& run);

/// A labelled set scored by a run: the metrics of logits / T (accuracy and
/// classes as the raw logits'; loss is the calibrated NLL), the
/// "calibration" block (null when the run has no calibration.json) and the
/// "rejection" block (null without a threshold).
struct ScoredSet {
  Metrics metrics;
  nlohmann::ordered_json calibration, rejection;
};
/// Scores raw `logits` [N, C] against `labels` with the run's calibration
/// and reject threshold (0: none). With `write_dir`, writes
/// test_metrics.json (evaluation_json) and test_predictions.csv (calibrated
/// confidences; `ids` name the rows) there, atomically.
ScoredSet score_set(const torch::Tensor& logits, const torch::Tensor& labels,
                    const std::vector<std::string>& classes, const RunCalibration& calibration,
                    double reject_threshold, const std::vector<std::string>& ids, const std::string& write_dir);
/// How a run's logits become answers: its calibration and reject threshold,
/// read once per evaluation or prediction (run_scoring).
struct RunScoring {
  RunCalibration calibration;
  double threshold = 0;  ///< 0: never "unknown"
  /// score_set with this calibration and threshold.
  ScoredSet score(const torch::Tensor& logits, const torch::Tensor& labels, const std::vector<std::string>& classes,
                  const std::vector<std::string>& ids, const std::string& write_dir) const;
  /// p.top: the `k` best of `classes` for one row of raw logits [C] at the
  /// run's temperature; p.unknown below the threshold.
  void predict(InputPrediction& p, const torch::Tensor& logits, const std::vector<std::string>& classes,
               int64_t k) const;
};
/// RUN's calibration.json and the threshold of `reject` for it (UsageError
/// as reject_threshold says).
RunScoring run_scoring(const std::string& run, const RejectOptions& reject);

/// to_json(metrics) with the "calibration" and "rejection" blocks that are set.
nlohmann::ordered_json evaluation_json(const ScoredSet& s);

/// eval's "calibration" block for raw logits and labels at temperature t:
/// temperature, nll, ece (calibrated), nll_uncalibrated, ece_uncalibrated.
nlohmann::ordered_json calibration_json(const torch::Tensor& logits, const torch::Tensor& labels, double t);
/// eval's "rejection" block: threshold, rejected (count and rate) and the
/// accuracy on the accepted inputs. `logits` already divided by T.
nlohmann::ordered_json rejection_json(const torch::Tensor& logits, const torch::Tensor& labels,
                                      double threshold);

}  // namespace graft
