#include "graft/eval/metrics.h"

#include <cmath>
#include <sstream>

#include <gtest/gtest.h>

#include "graft/core/error.h"

namespace graft {
namespace {

// Predictions chosen by hand: true 0,0,0,1,1,2 predicted 0,0,1,1,2,2.
TEST(Metrics, HandCountedExample) {
  torch::Tensor labels = torch::tensor({0, 0, 0, 1, 1, 2}, torch::kInt64);
  torch::Tensor pred = torch::tensor({0, 0, 1, 1, 2, 2}, torch::kInt64);
  torch::Tensor logits = torch::one_hot(pred, 3).to(torch::kFloat32) * 5;
  Metrics m = compute_metrics(logits, labels, {"a", "b", "c"});
  EXPECT_EQ(m.count, 6);
  EXPECT_DOUBLE_EQ(m.accuracy, 4.0 / 6);
  EXPECT_EQ(m.confusion, (std::vector<std::vector<int64_t>>{{2, 1, 0}, {0, 1, 1}, {0, 0, 1}}));
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 1.0);
  EXPECT_DOUBLE_EQ(m.per_class[0].recall, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.per_class[1].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[1].recall, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[2].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[2].f1, 2 * 0.5 * 1.0 / 1.5);
  EXPECT_LT(m.top5, 0);  // only with more than 5 classes
  // The loss is torch's cross-entropy of the same logits.
  EXPECT_NEAR(m.loss, torch::nn::functional::cross_entropy(logits, labels).item<double>(), 1e-9);
}

TEST(Metrics, TopFiveWithManyClasses) {
  // Class k's logits rank the true label at position k % 7.
  const int n = 14, c = 7;
  torch::Tensor logits = torch::zeros({n, c});
  torch::Tensor labels = torch::zeros({n}, torch::kInt64);
  for (int i = 0; i < n; ++i) {
    int rank = i % c;
    for (int j = 0; j < c; ++j) logits[i][j] = float(c - j);  // column j has rank j
    labels[i] = rank;
  }
  Metrics m = compute_metrics(logits, labels, {"0", "1", "2", "3", "4", "5", "6"});
  EXPECT_DOUBLE_EQ(m.top5, 10.0 / 14);  // ranks 0..4 of every 7
  EXPECT_DOUBLE_EQ(m.accuracy, 2.0 / 14);
}

}  // namespace
}  // namespace graft

namespace graft {
namespace {

TEST(Predictions, CsvRowsHoldTheSoftmaxOfThePredictionAndQuoteNames) {
  torch::Tensor logits = torch::tensor({{2.0f, 0.0f}, {0.5f, 1.5f}});
  torch::Tensor labels = torch::tensor({1, 1}, torch::kInt64);
  std::string csv = predictions_csv(logits, labels, {"a/1.png", "b,\"2\".png"}, {"cat", "dog, big"});
  std::istringstream in(csv);
  std::string header, r1, r2;
  std::getline(in, header);
  std::getline(in, r1);
  std::getline(in, r2);
  EXPECT_EQ(header, "path,label,predicted,confidence");
  const double p1 = 1.0 / (1.0 + std::exp(-2.0));
  EXPECT_EQ(r1.substr(0, r1.rfind(',')), "a/1.png,\"dog, big\",cat");
  EXPECT_NEAR(std::stod(r1.substr(r1.rfind(',') + 1)), p1, 1e-5);
  EXPECT_EQ(r2.substr(0, r2.rfind(',')), "\"b,\"\"2\"\".png\",\"dog, big\",\"dog, big\"");
  EXPECT_NEAR(std::stod(r2.substr(r2.rfind(',') + 1)), 1.0 / (1.0 + std::exp(-1.0)), 1e-5);
}

// What graft predict prints: the softmax of the row, most probable first,
// k clamped to the number of classes.
TEST(Predictions, TopLabelsAreTheSoftmaxMostProbableFirst) {
  const torch::Tensor logits = torch::tensor({0.0f, 2.0f, -1.0f, 1.0f});
  const std::vector<std::string> classes = {"a", "b", "c", "d"};
  const auto top = top_labels(logits, classes, 2);
  ASSERT_EQ(top.size(), 2u);
  const double z = 1 + std::exp(2.0) + std::exp(-1.0) + std::exp(1.0);
  EXPECT_EQ(top[0].label, "b");
  EXPECT_NEAR(top[0].probability, std::exp(2.0) / z, 1e-6);
  EXPECT_EQ(top[1].label, "d");
  EXPECT_NEAR(top[1].probability, std::exp(1.0) / z, 1e-6);
  const auto all = top_labels(logits, classes, 10);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[3].label, "c");
  double sum = 0;
  for (const auto& t : all) sum += t.probability;
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_THROW(top_labels(logits, {"a", "b"}, 1), Error);
}

}  // namespace
}  // namespace graft
