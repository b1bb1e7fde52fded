#include "graft/eval/tta.h"

#include <cmath>

#include <torch/torch.h>

#include "graft/core/error.h"
#include "graft/core/files.h"

namespace graft {

torch::Tensor tta_log_probabilities(const torch::Tensor& view_logits, double t) {
  GRAFT_CHECK(view_logits.dim() == 2 || view_logits.dim() == 3, "test-time augmentation: view logits of shape ",
              view_logits.sizes(), " (expected [N, V, C] or [V, C])");
  GRAFT_CHECK(t > 0 && std::isfinite(t), "test-time augmentation: temperature ", t, " (expected a positive number)");
  const int64_t view_dim = view_logits.dim() - 2, views = view_logits.size(view_dim);
  GRAFT_CHECK(views > 0, "test-time augmentation: no views");
  const torch::Tensor lp = torch::log_softmax(view_logits.to(torch::kCPU, torch::kFloat64) / t, -1);
  return torch::logsumexp(lp, view_dim) - std::log(static_cast<double>(views));
}

ScoredSet score_views(const RunScoring& scoring, const torch::Tensor& view_logits, const torch::Tensor& labels,
                      const std::vector<std::string>& classes, const std::vector<std::string>& ids,
                      const std::string& write_dir) {
  GRAFT_CHECK(view_logits.dim() == 3, "test-time augmentation: view logits of shape ", view_logits.sizes(),
              " (expected [N, V, C])");
  const RunCalibration& c = scoring.calibration;
  const torch::Tensor calibrated = tta_log_probabilities(view_logits, c.temperature);
  // The averaged probabilities are already calibrated: scored at T = 1.
  ScoredSet s = score_set(calibrated, labels, classes, RunCalibration{}, scoring.threshold, ids, "");
  if (c.present) {
    const torch::Tensor raw = tta_log_probabilities(view_logits, 1);
    s.calibration = nlohmann::ordered_json{{"temperature", c.temperature},
                                           {"nll", mean_nll(calibrated, labels)},
                                           {"ece", expected_calibration_error(calibrated, labels)},
                                           {"nll_uncalibrated", mean_nll(raw, labels)},
                                           {"ece_uncalibrated", expected_calibration_error(raw, labels)}};
  }
  if (!write_dir.empty()) {
    write_file_atomic(write_dir + "/test_metrics.json", evaluation_json(s).dump(2) + "\n");
    write_file_atomic(write_dir + "/test_predictions.csv",
                      predictions_csv(calibrated.to(torch::kFloat32), labels, ids, classes));
  }
  return s;
}

void predict_views(const RunScoring& scoring, InputPrediction& p, const torch::Tensor& view_logits,
                   const std::vector<std::string>& classes, int64_t k) {
  GRAFT_CHECK(view_logits.dim() == 2, "test-time augmentation: view logits of shape ", view_logits.sizes(),
              " (expected [V, C])");
  p.top = top_labels(tta_log_probabilities(view_logits, scoring.calibration.temperature), classes, k);
  p.unknown = !p.top.empty() && p.top[0].probability < scoring.threshold;
}

}  // namespace graft
