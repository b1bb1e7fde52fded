// Temperature scaling, ECE, NLL and the reject threshold against the numpy
// brute-force reference (tests/reference/calibration_fixtures.py) on fixed
// logits.

#include <gtest/gtest.h>

#include <cmath>
#include <optional>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/eval/calibration.h"
#include "graft/train/loop.h"
#include "test_util.h"

namespace graft {
namespace {

class Calibration : public test::ReferenceTest {
 protected:
  Calibration()
      : ReferenceTest("calibration/cases.safetensors", "calibration/expected.json", "no reference fixtures") {}
  double want(const std::string& key) const { return json_["mis"][key].get<double>(); }
};

TEST_F(Calibration, TemperatureNllAndEceEqualTheBruteForceReference) {
  const torch::Tensor z = at("mis.logits"), y = at("mis.labels");
  const TemperatureFit fit = fit_temperature(z, y);
  EXPECT_TRUE(fit.converged);
  // The reference's grid is ~1e-7 wide in log t; the NLL is flat there.
  EXPECT_NEAR(fit.temperature, want("temperature"), 1e-5 * want("temperature"));
  EXPECT_NEAR(fit.nll_before, want("nll_before"), 1e-9);
  EXPECT_NEAR(fit.nll_after, want("nll_after"), 1e-9);
  EXPECT_NEAR(fit.ece_before, want("ece_before"), 1e-9);
  EXPECT_NEAR(fit.ece_after, want("ece_after"), 1e-6);
  EXPECT_NEAR(expected_calibration_error(z, y, 1.7), want("ece_t1_7"), 1e-9);
  EXPECT_NEAR(mean_nll(z, y, 1.7), want("nll_t1_7"), 1e-9);
  EXPECT_LT(fit.nll_after, fit.nll_before);
}

TEST_F(Calibration, ASeparableSetDoesNotConvergeAndKeepsT1) {
  const torch::Tensor z = at("separable.logits"), y = at("separable.labels");
  const TemperatureFit fit = fit_temperature(z, y);
  EXPECT_FALSE(fit.converged);
  EXPECT_EQ(fit.temperature, 1.0);
  EXPECT_NEAR(fit.nll_after, json_["separable"]["nll_before"].get<double>(), 1e-9);
  EXPECT_NEAR(fit.ece_after, json_["separable"]["ece_before"].get<double>(), 1e-9);
}

// The run file, its quantiles, the thresholds and the scored set.
TEST_F(Calibration, RunFileThresholdsAndScoredSet) {
  const torch::Tensor z = at("mis.logits"), y = at("mis.labels");
  test::TempDir dir;
  write_run_calibration(dir.path(), "temperature", z, y);
  const RunCalibration c = read_run_calibration(dir.path());
  ASSERT_TRUE(c.present);
  EXPECT_EQ(c.method, "temperature");
  EXPECT_NEAR(c.temperature, want("temperature"), 1e-5 * want("temperature"));
  // Quantiles at the fitted temperature (the reference's differs by ~1e-6).
  EXPECT_NEAR(threshold_at_frr(c, 0.05, dir.path()), want("q0_05"), 1e-5);
  EXPECT_NEAR(threshold_at_frr(c, 0.5, dir.path()), want("q0_5"), 1e-5);
  EXPECT_EQ(reject_threshold({0.6, 0}, c, dir.path()), 0.6);
  EXPECT_EQ(reject_threshold({0, 0.05}, c, dir.path()), threshold_at_frr(c, 0.05, dir.path()));

  const std::vector<std::string> classes = {"a", "b", "c", "d", "e"};
  std::vector<std::string> ids(static_cast<size_t>(z.size(0)), "x");
  const ScoredSet s = score_set(z, y, classes, c, 0.6, ids, dir.path());
  // Dividing by T never changes a class.
  const Metrics raw = compute_metrics(z, y, classes);
  EXPECT_EQ(s.metrics.accuracy, raw.accuracy);
  EXPECT_EQ(s.metrics.confusion, raw.confusion);
  EXPECT_NEAR(s.metrics.loss, want("nll_after"), 1e-5);
  EXPECT_NEAR(s.calibration["nll_uncalibrated"].get<double>(), want("nll_before"), 1e-9);
  EXPECT_NEAR(s.calibration["ece_uncalibrated"].get<double>(), want("ece_before"), 1e-9);
  EXPECT_EQ(s.rejection["rejected"].get<int64_t>(), json_["mis"]["rejected_0_6"].get<int64_t>());
  EXPECT_NEAR(s.rejection["accepted_accuracy"].get<double>(), want("accepted_accuracy_0_6"), 1e-12);
  const auto written = nlohmann::json::parse(read_file(dir.path() + "/test_metrics.json"));
  EXPECT_EQ(written["rejection"]["rejected"].get<int64_t>(), s.rejection["rejected"].get<int64_t>());
  EXPECT_EQ(written["calibration"]["temperature"].get<double>(), c.temperature);
}

// The reliability diagram's bins (the bins of the ECE) against the numpy
// recomputation: counts exactly, means within rounding.
void expect_bins_equal(const std::vector<ReliabilityBin>& got, const nlohmann::json& want, double tolerance,
                       const std::string& what) {
  const auto count = want["count"].get<std::vector<int64_t>>();
  const auto confidence = want["confidence"].get<std::vector<double>>();
  const auto accuracy = want["accuracy"].get<std::vector<double>>();
  ASSERT_EQ(got.size(), count.size()) << what;
  for (size_t b = 0; b < got.size(); ++b) {
    EXPECT_EQ(got[b].count, count[b]) << what << " bin " << b;
    EXPECT_NEAR(got[b].confidence, confidence[b], tolerance) << what << " bin " << b;
    EXPECT_NEAR(got[b].accuracy, accuracy[b], 1e-12) << what << " bin " << b;
  }
}

TEST_F(Calibration, ReliabilityBinsEqualTheNumpyRecomputation) {
  const torch::Tensor z = at("mis.logits"), y = at("mis.labels");
  const std::vector<ReliabilityBin> b1 = reliability_bins(z, y, 1), b17 = reliability_bins(z, y, 1.7);
  expect_bins_equal(b1, json_["mis"]["reliability_before"], 1e-12, "t = 1");
  expect_bins_equal(b17, json_["mis"]["reliability_t1_7"], 1e-12, "t = 1.7");
  // The ECE is these bins' weighted gap.
  double ece = 0;
  for (const ReliabilityBin& b : b17) ece += static_cast<double>(b.count) * std::fabs(b.accuracy - b.confidence);
  EXPECT_NEAR(ece / static_cast<double>(z.size(0)), expected_calibration_error(z, y, 1.7), 1e-12);

  // calibration.json keeps them, before and after; the fitted T differs from
  // the reference's grid by ~1e-6 relative.
  test::TempDir dir;
  const TemperatureFit fit = write_run_calibration(dir.path(), "temperature", z, y);
  expect_bins_equal(fit.bins_after, json_["mis"]["reliability_after"], 1e-6, "fit after");
  const std::string file = dir.path() + "/calibration.json";
  const nlohmann::json j = nlohmann::json::parse(read_file(file));
  ASSERT_EQ(j["reliability"]["bins"].get<int>(), kCalibrationBins);
  expect_bins_equal(read_reliability(j, file)->before, json_["mis"]["reliability_before"], 1e-12, "file before");
  const std::optional<ReliabilityDiagram> d = read_reliability(j, file);
  ASSERT_TRUE(d.has_value());
  expect_bins_equal(d->after, json_["mis"]["reliability_after"], 1e-6, "file after");
  EXPECT_EQ(d->method, "temperature");
  EXPECT_EQ(d->temperature, fit.temperature);
  EXPECT_EQ(d->ece_before, fit.ece_before);
  EXPECT_EQ(d->ece_after, fit.ece_after);
  // --calibrate none: the same bins on both sides.
  write_run_calibration(dir.path(), "none", z, y);
  const auto none = read_reliability(nlohmann::json::parse(read_file(file)), file);
  ASSERT_TRUE(none.has_value());
  expect_bins_equal(none->after, json_["mis"]["reliability_before"], 1e-12, "none after");
}

// A calibration.json written before the bins were kept still reads, without
// a diagram; damaged bins are errors naming the file.
TEST(CalibrationReliability, OlderFilesHaveNoDiagramAndDamagedBinsAreErrors) {
  test::TempDir dir;
  const std::string file = dir.path() + "/calibration.json";
  nlohmann::json old = {{"method", "temperature"}, {"temperature", 1.5},   {"converged", true},
                        {"examples", 10},          {"ece_before", 0.2},    {"ece_after", 0.1},
                        {"confidence_quantiles", nlohmann::json::array()}};
  write_file_atomic(file, old.dump());
  EXPECT_TRUE(read_run_calibration(dir.path()).present);
  EXPECT_FALSE(read_reliability(old, file).has_value());

  nlohmann::json damaged = old;
  damaged["reliability"] = reliability_json(std::vector<ReliabilityBin>(15), std::vector<ReliabilityBin>(15));
  EXPECT_TRUE(read_reliability(damaged, file).has_value());
  damaged["reliability"]["after"]["count"] = nlohmann::json::array({1, 2});
  EXPECT_TRUE(test::contains(test::error_of([&] { read_reliability(damaged, file); }),
                             "\"reliability\".\"after\": 2 counts, 15 confidences and 15 accuracies (expected 15"));
  damaged["reliability"]["after"] = damaged["reliability"]["before"];
  damaged["reliability"]["after"]["count"][2] = 1e300;
  EXPECT_TRUE(test::contains(test::error_of([&] { read_reliability(damaged, file); }),
                             "\"reliability\".\"after\": count 1e+300 is not an integer"));
  damaged["reliability"]["bins"] = 2.5;
  EXPECT_TRUE(test::contains(test::error_of([&] { read_reliability(damaged, file); }),
                             "\"reliability\": \"bins\" is 2.5 (expected an integer from 1 to 1000)"));
  damaged["reliability"]["bins"] = 15;
  damaged["reliability"]["after"] = damaged["reliability"]["before"];
  damaged["reliability"]["after"]["confidence"][3] = 1.5;
  EXPECT_TRUE(test::contains(test::error_of([&] { read_reliability(damaged, file); }),
                             "bin 3 has count 0, confidence 1.5"));
}

// --select-metric's scores and --class-weights auto against the numpy
// versions of scikit-learn's definitions.
TEST_F(Calibration, SelectionMetricsAndClassWeightsEqualTheScikitLearnDefinitions) {
  const std::vector<std::string> five = {"a", "b", "c", "d", "e"}, four = {"a", "b", "c", "d"};
  const Metrics mis = compute_metrics(at("mis.logits"), at("mis.labels"), five);
  EXPECT_NEAR(balanced_accuracy(mis), want("balanced_accuracy"), 1e-12);
  EXPECT_NEAR(macro_f1(mis), want("macro_f1"), 1e-12);
  const Metrics sparse = compute_metrics(at("sparse.logits"), at("sparse.labels"), four);
  EXPECT_NEAR(balanced_accuracy(sparse), json_["sparse"]["balanced_accuracy"].get<double>(), 1e-12);
  EXPECT_NEAR(macro_f1(sparse), json_["sparse"]["macro_f1"].get<double>(), 1e-12);
  EXPECT_EQ(to_json(sparse)["macro_f1"].get<double>(), macro_f1(sparse));

  TrainOptions o;
  o.class_weights = "auto";
  const torch::Tensor counts = torch::bincount(at("mis.labels"));
  std::vector<int64_t> n(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel());
  const torch::Tensor w = class_weight_tensor(o, n);
  const auto want_w = json_["mis"]["class_weights"].get<std::vector<double>>();
  ASSERT_EQ(w.numel(), static_cast<int64_t>(want_w.size()));
  for (size_t k = 0; k < want_w.size(); ++k) EXPECT_NEAR(w[k].item<double>(), want_w[k], 1e-6) << k;
  o.class_weights = "none";
  EXPECT_FALSE(class_weight_tensor(o, n).defined());
}

TEST(CalibrationErrors, RejectFlagsOutOfRangeBothOrWithoutConfidences) {
  const RunCalibration none;
  EXPECT_EQ(test::error_of([&] { reject_threshold({1.5, 0}, none, "run"); }),
            "--reject-below: 1.5 (expected a number in (0, 1))");
  EXPECT_EQ(test::error_of([&] { reject_threshold({0, -0.1}, none, "run"); }),
            "--reject-at-frr: -0.1 (expected a number in (0, 1))");
  EXPECT_EQ(test::error_of([&] { reject_threshold({0.5, 0.1}, none, "run"); }),
            "--reject-below and --reject-at-frr: give one of them, not both");
  EXPECT_TRUE(test::contains(test::error_of([&] { reject_threshold({0, 0.1}, none, "run"); }),
                             "--reject-at-frr: 'run' kept no validation confidences"));
  EXPECT_EQ(reject_threshold({}, none, "run"), 0.0);
}

}  // namespace
}  // namespace graft
