#include "graft/eval/calibration.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <torch/torch.h>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"

namespace graft {

namespace {

const char* const kCalibrationFile = "calibration.json";
constexpr int kQuantileSteps = 1000;

// logits / t in float64 on the CPU, checked against the labels.
torch::Tensor divided_logits(const torch::Tensor& logits, const torch::Tensor& labels, double t) {
  GRAFT_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0),
              "calibration: logits of shape ", logits.sizes(), " and labels of shape ", labels.sizes(),
              " (expected [N, C] and [N])");
  GRAFT_CHECK(t > 0 && std::isfinite(t), "calibration: temperature ", t, " (expected a positive number)");
  return logits.to(torch::kCPU, torch::kFloat64) / t;
}

// The top probability of each row of softmax(logits), ascending.
std::vector<double> sorted_top_probabilities(const torch::Tensor& logits) {
  const torch::Tensor top = std::get<0>(torch::softmax(logits.to(torch::kFloat64), 1).max(1)).contiguous();
  std::vector<double> p(top.data_ptr<double>(), top.data_ptr<double>() + top.numel());
  std::sort(p.begin(), p.end());
  return p;
}

// numpy.linear_quantile(p, q) with the default ("linear") method; p sorted, not empty.
double linear_quantile(const std::vector<double>& p, double q) {
  const double pos = q * static_cast<double>(p.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, p.size() - 1);
  return p[lo] + (p[hi] - p[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

double mean_nll(const torch::Tensor& logits, const torch::Tensor& labels, double t) {
  if (logits.size(0) == 0) return 0;
  const torch::Tensor lp = torch::log_softmax(divided_logits(logits, labels, t), 1);
  return -lp.gather(1, labels.to(torch::kCPU, torch::kInt64).unsqueeze(1)).mean().item<double>();
}

namespace {

// The bins of expected_calibration_error and reliability_bins: per bin, the
// count and the sums of top probability and of right answers.
struct CalibrationBinSums {
  std::vector<double> confidence, right;
  std::vector<int64_t> count;
  int64_t n = 0;
};

CalibrationBinSums calibration_bin_sums(const torch::Tensor& logits, const torch::Tensor& labels, double t,
                                        int bins) {
  GRAFT_CHECK(bins >= 1, "calibration: ", bins, " bins (expected at least 1)");
  CalibrationBinSums s;
  s.confidence.assign(bins, 0);
  s.right.assign(bins, 0);
  s.count.assign(bins, 0);
  s.n = logits.size(0);
  if (s.n == 0) return s;
  const auto [top, pred] = torch::softmax(divided_logits(logits, labels, t), 1).max(1);
  const torch::Tensor right = pred.eq(labels.to(torch::kCPU, torch::kInt64));
  auto p = top.accessor<double, 1>();
  auto ok = right.accessor<bool, 1>();
  for (int64_t i = 0; i < s.n; ++i) {
    // Bin b holds b/bins < p <= (b+1)/bins.
    int b = static_cast<int>(std::ceil(p[i] * bins)) - 1;
    b = std::clamp(b, 0, bins - 1);
    s.confidence[b] += p[i];
    s.right[b] += ok[i] ? 1 : 0;
    s.count[b] += 1;
  }
  return s;
}

}  // namespace

double expected_calibration_error(const torch::Tensor& logits, const torch::Tensor& labels, double t,
                                  int bins) {
  const CalibrationBinSums s = calibration_bin_sums(logits, labels, t, bins);
  double ece = 0;
  for (int b = 0; b < bins; ++b)
    if (s.count[b] > 0) ece += std::fabs(s.right[b] - s.confidence[b]) / static_cast<double>(s.n);
  return ece;
}

std::vector<ReliabilityBin> reliability_bins(const torch::Tensor& logits, const torch::Tensor& labels, double t,
                                             int bins) {
  const CalibrationBinSums s = calibration_bin_sums(logits, labels, t, bins);
  std::vector<ReliabilityBin> out(static_cast<size_t>(bins));
  for (int b = 0; b < bins; ++b) {
    out[b].count = s.count[b];
    if (s.count[b] == 0) continue;
    out[b].confidence = s.confidence[b] / static_cast<double>(s.count[b]);
    out[b].accuracy = s.right[b] / static_cast<double>(s.count[b]);
  }
  return out;
}

TemperatureFit fit_temperature(const torch::Tensor& logits, const torch::Tensor& labels) {
  TemperatureFit fit;
  fit.examples = logits.size(0);
  if (fit.examples == 0) {
    fit.converged = false;
    fit.bins_before = fit.bins_after = std::vector<ReliabilityBin>(kCalibrationBins);
    return fit;
  }
  fit.nll_before = mean_nll(logits, labels, 1);
  fit.ece_before = expected_calibration_error(logits, labels, 1);
  auto f = [&](double log_t) { return mean_nll(logits, labels, std::exp(log_t)); };
  const double range = std::log(kMaxTemperature);
  const double invphi = (std::sqrt(5.0) - 1) / 2;
  double a = -range, b = range;
  double c = b - invphi * (b - a), d = a + invphi * (b - a);
  double fc = f(c), fd = f(d);
  bool finite = std::isfinite(fit.nll_before) && std::isfinite(fc) && std::isfinite(fd);
  while (finite && b - a > 1e-9) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - invphi * (b - a);
      fc = f(c);
      finite = std::isfinite(fc);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + invphi * (b - a);
      fd = f(d);
      finite = std::isfinite(fd);
    }
  }
  const double x = (a + b) / 2;
  // At an end of the range, or as low there (a set the model separates
  // perfectly: the NLL falls to 0 as T -> 0, and is 0 in float64 well before).
  fit.converged = finite && x > -range + 1e-6 && x < range - 1e-6 && f(x) < std::min(f(-range), f(range));
  fit.temperature = fit.converged ? std::exp(x) : 1.0;
  fit.nll_after = mean_nll(logits, labels, fit.temperature);
  fit.ece_after = expected_calibration_error(logits, labels, fit.temperature);
  fit.bins_before = reliability_bins(logits, labels, 1);
  fit.bins_after = reliability_bins(logits, labels, fit.temperature);
  return fit;
}

TemperatureFit write_run_calibration(const std::string& run, const std::string& method,
                                     const torch::Tensor& logits, const torch::Tensor& labels) {
  TemperatureFit fit;
  if (method == "temperature") {
    fit = fit_temperature(logits, labels);
    if (!fit.converged)
      log_warn(str_cat("calibration: the temperature fit on ", fit.examples,
                       " validation examples did not converge (the best temperature lies at an end of [",
                       1 / kMaxTemperature, ", ", kMaxTemperature,
                       "], as when the model separates the validation set perfectly); keeping T = 1"));
  } else {
    fit.examples = logits.size(0);
    fit.nll_before = fit.nll_after = mean_nll(logits, labels, 1);
    fit.ece_before = fit.ece_after = expected_calibration_error(logits, labels, 1);
    fit.bins_before = fit.bins_after = reliability_bins(logits, labels, 1);
  }
  nlohmann::ordered_json j = {{"method", method},          {"temperature", fit.temperature},
                              {"converged", fit.converged}, {"fitted_on", "validation"},
                              {"examples", fit.examples},   {"nll_before", fit.nll_before},
                              {"nll_after", fit.nll_after}, {"ece_before", fit.ece_before},
                              {"ece_after", fit.ece_after}};
  nlohmann::ordered_json q = nlohmann::ordered_json::array();
  if (fit.examples > 0) {
    const std::vector<double> p = sorted_top_probabilities(divided_logits(logits, labels, fit.temperature));
    for (int i = 0; i <= kQuantileSteps; ++i) q.push_back(linear_quantile(p, static_cast<double>(i) / kQuantileSteps));
  }
  j["confidence_quantiles"] = q;
  j["reliability"] = reliability_json(fit.bins_before, fit.bins_after);
  write_file_atomic((std::filesystem::path(run) / kCalibrationFile).string(), j.dump(1) + "\n");
  return fit;
}

RunCalibration read_run_calibration(const std::string& run) {
  RunCalibration c;
  const std::string path = (std::filesystem::path(run) / kCalibrationFile).string();
  if (!std::filesystem::exists(path)) return c;
  const nlohmann::json j = read_json_file(path);
  const std::string where = "'" + path + "'";
  c.present = true;
  c.method = json_get<std::string>(j, "method", where);
  c.temperature = json_get<double>(j, "temperature", where);
  GRAFT_CHECK(c.temperature > 0 && std::isfinite(c.temperature), where, ": temperature ", c.temperature,
              " (expected a positive number)");
  c.confidence_quantiles = json_get<std::vector<double>>(j, "confidence_quantiles", where);
  GRAFT_CHECK(c.confidence_quantiles.empty() || c.confidence_quantiles.size() == kQuantileSteps + 1, where,
              ": ", c.confidence_quantiles.size(), " confidence quantiles (expected ", kQuantileSteps + 1, ")");
  return c;
}

double threshold_at_frr(const RunCalibration& c, double frr, const std::string& run) {
  GRAFT_CHECK_USAGE(!c.confidence_quantiles.empty(), "--reject-at-frr: '", run,
                    "' kept no validation confidences (trained without validation data, or before "
                    "calibration.json existed); give --reject-below P instead");
  return linear_quantile(c.confidence_quantiles, frr);
}

double reject_threshold(const RejectOptions& r, const RunCalibration& c, const std::string& run) {
  GRAFT_CHECK_USAGE(r.reject_below == 0 || r.reject_at_frr == 0,
                    "--reject-below and --reject-at-frr: give one of them, not both");
  auto check = [](const char* flag, double v) {
    GRAFT_CHECK_USAGE(v == 0 || (v > 0 && v < 1), flag, ": ", v, " (expected a number in (0, 1))");
  };
  check("--reject-below", r.reject_below);
  check("--reject-at-frr", r.reject_at_frr);
  if (r.reject_at_frr > 0) return threshold_at_frr(c, r.reject_at_frr, run);
  return r.reject_below;
}

nlohmann::ordered_json calibration_json(const torch::Tensor& logits, const torch::Tensor& labels, double t) {
  nlohmann::ordered_json j;
  j["temperature"] = t;
  j["nll"] = mean_nll(logits, labels, t);
  j["ece"] = expected_calibration_error(logits, labels, t);
  j["nll_uncalibrated"] = mean_nll(logits, labels, 1);
  j["ece_uncalibrated"] = expected_calibration_error(logits, labels, 1);
  return j;
}

nlohmann::ordered_json rejection_json(const torch::Tensor& logits, const torch::Tensor& labels,
                                      double threshold) {
  const auto [top, pred] = torch::softmax(divided_logits(logits, labels, 1), 1).max(1);
  const torch::Tensor accepted = top.ge(threshold);
  const int64_t n = logits.size(0), kept = accepted.sum().item<int64_t>();
  const int64_t right = pred.eq(labels.to(torch::kCPU, torch::kInt64)).logical_and(accepted).sum().item<int64_t>();
  nlohmann::ordered_json j;
  j["threshold"] = threshold;
  j["rejected"] = n - kept;
  j["rejection_rate"] = n ? static_cast<double>(n - kept) / static_cast<double>(n) : 0.0;
  j["accepted_accuracy"] = kept ? static_cast<double>(right) / static_cast<double>(kept) : 0.0;
  return j;
}

ScoredSet score_set(const torch::Tensor& logits, const torch::Tensor& labels,
                    const std::vector<std::string>& classes, const RunCalibration& calibration,
                    double reject_threshold, const std::vector<std::string>& ids, const std::string& write_dir) {
  const torch::Tensor scaled = logits.to(torch::kCPU, torch::kFloat32) / calibration.temperature;
  ScoredSet s;
  s.metrics = compute_metrics(scaled, labels, classes);
  if (calibration.present) s.calibration = calibration_json(logits, labels, calibration.temperature);
  if (reject_threshold > 0) s.rejection = rejection_json(scaled, labels, reject_threshold);
  if (!write_dir.empty()) {
    write_file_atomic(write_dir + "/test_metrics.json", evaluation_json(s).dump(2) + "\n");
    write_file_atomic(write_dir + "/test_predictions.csv", predictions_csv(scaled, labels, ids, classes));
  }
  return s;
}

ScoredSet RunScoring::score(const torch::Tensor& logits, const torch::Tensor& labels,
                            const std::vector<std::string>& classes, const std::vector<std::string>& ids,
                            const std::string& write_dir) const {
  return score_set(logits, labels, classes, calibration, threshold, ids, write_dir);
}

void RunScoring::predict(InputPrediction& p, const torch::Tensor& logits, const std::vector<std::string>& classes,
                         int64_t k) const {
  p.top = top_labels(logits / calibration.temperature, classes, k);
  p.unknown = !p.top.empty() && p.top[0].probability < threshold;
}

RunScoring run_scoring(const std::string& run, const RejectOptions& reject) {
  RunScoring s;
  s.calibration = read_run_calibration(run);
  s.threshold = reject_threshold(reject, s.calibration, run);
  return s;
}

nlohmann::ordered_json evaluation_json(const ScoredSet& s) {
  nlohmann::ordered_json j = to_json(s.metrics);
  if (!s.calibration.is_null()) j["calibration"] = s.calibration;
  if (!s.rejection.is_null()) j["rejection"] = s.rejection;
  return j;
}

}  // namespace graft
