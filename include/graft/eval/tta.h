#pragma once
/// Test-time augmentation (graft eval / predict --tta): the softmax
/// probabilities of an image's views (data/transforms.h, eval_views) are
/// averaged, each view's logits divided by the run's temperature first.
///
/// Metrics that need logits (loss, NLL, ECE, the confidences of
/// test_predictions.csv, "unknown") are computed from the log of the averaged
/// probabilities, used in place of logits at temperature 1: its softmax is
/// the averaged probability itself, so every existing metric sees exactly the
/// averaged distribution, and a loss or NLL is -log of the averaged
/// probability of the label. The log is taken as logsumexp over the views of
/// log_softmax - log V (float64), which stays finite where a probability
/// underflows.

#include <string>
#include <vector>

#include <torch/types.h>

#include "graft/eval/calibration.h"
#include "graft/eval/metrics.h"

namespace graft {

/// log(mean over views of softmax(view_logits / t)) in float64 on the CPU:
/// [N, V, C] -> [N, C], or one image's [V, C] -> [C].
torch::Tensor tta_log_probabilities(const torch::Tensor& view_logits, double t);

/// RunScoring::score for the views' raw logits [N, V, C]: metrics, the
/// rejection block and the written files from the averaged calibrated
/// probabilities; the "calibration" block (when the run has one) gives the
/// NLL and ECE of the averaged probabilities with each view's logits divided
/// by T ("nll", "ece") and not ("nll_uncalibrated", "ece_uncalibrated").
ScoredSet score_views(const RunScoring& scoring, const torch::Tensor& view_logits, const torch::Tensor& labels,
                      const std::vector<std::string>& classes, const std::vector<std::string>& ids,
                      const std::string& write_dir);

/// RunScoring::predict for one image's view logits [V, C].
void predict_views(const RunScoring& scoring, InputPrediction& p, const torch::Tensor& view_logits,
                   const std::vector<std::string>& classes, int64_t k);

}  // namespace graft
