#pragma once
/// Classification metrics from logits: accuracy, top-5, per-class
/// precision/recall/F1, confusion matrix.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace graft {

struct ClassMetrics {
  std::string name;
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};

struct Metrics {
  int64_t count = 0;
  double accuracy = 0;
  double top5 = -1;  // only when there are more than 5 classes
  double loss = 0;   // mean cross-entropy
  std::vector<ClassMetrics> per_class;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};

/// logits [N, C], labels [N]; `classes` names the C columns.
Metrics compute_metrics(const torch::Tensor& logits, const torch::Tensor& labels,
                        const std::vector<std::string>& classes);

nlohmann::ordered_json to_json(const Metrics& m);

/// One CSV row per sample, "path,label,predicted,confidence": the sample's
/// identity (a file path, or "FILE#INDEX" for IDX rows), true and predicted
/// class names, and the softmax probability of the prediction. `identities`
/// and the rows of `logits` [N, C] / `labels` [N] correspond.
std::string predictions_csv(const torch::Tensor& logits, const torch::Tensor& labels,
                            const std::vector<std::string>& identities,
                            const std::vector<std::string>& classes);

}  // namespace graft
