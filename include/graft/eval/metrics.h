#pragma once
/// Classification metrics from logits: accuracy, top-5, per-class
/// precision/recall/F1, confusion matrix; and the top-k labels of one input
/// (what graft predict reports).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "graft/data/image_header.h"
#include "graft/eval/class_metrics.h"

namespace graft {

struct Metrics {
  int64_t count = 0;
  double accuracy = 0;
  double top5 = -1;  // only when there are more than 5 classes
  double loss = 0;   // mean cross-entropy
  std::vector<ClassMetrics> per_class;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};

/// Mean recall over the classes present in the labels (scikit-learn's
/// balanced_accuracy_score).
double balanced_accuracy(const Metrics& m);
/// Mean F1 over the classes present in the labels or the predictions
/// (scikit-learn's f1_score(average="macro"); a class never predicted and
/// never present is left out).
double macro_f1(const Metrics& m);

/// logits [N, C], labels [N]; `classes` names the C columns.
Metrics compute_metrics(const torch::Tensor& logits, const torch::Tensor& labels,
                        const std::vector<std::string>& classes);

nlohmann::ordered_json to_json(const Metrics& m);

/// One CSV row per sample, "path,label,predicted,confidence": the sample's
/// identity (a file path, or "FILE#INDEX" for IDX rows), true and predicted
/// class names, and the softmax probability of the prediction. `identities`
/// and the rows of `logits` [N, C] / `labels` [N] correspond.
/// A CSV field as written: quoted (quotes doubled) when it holds a comma,
/// a quote or a line break.
std::string csv_field(const std::string& v);

std::string predictions_csv(const torch::Tensor& logits, const torch::Tensor& labels,
                            const std::vector<std::string>& identities,
                            const std::vector<std::string>& classes);

/// One label of a prediction with its softmax probability.
struct LabelScore {
  std::string label;
  double probability = 0;
};

/// The k most probable of `classes` for one row of logits [C] (softmax over
/// the row, computed in float32), most probable first; k is clamped to C.
std::vector<LabelScore> top_labels(const torch::Tensor& logits,
                                   const std::vector<std::string>& classes, int64_t k);

/// What graft predict reports for one input.
struct InputPrediction {
  std::string input;                ///< the file; text runs: FILE:LINE or stdin:LINE
  std::optional<std::string> text;  ///< text runs: the line as read (a pair keeps its tab)
  std::vector<LabelScore> top;      ///< the best labels, most probable first
  /// The scores are distances (a nearest-centroid face head): nearest first.
  bool distances = false;
  /// Below the confidence threshold (--reject-below, --reject-at-frr): the
  /// answer is "unknown"; `top` still says what the model would have said.
  bool unknown = false;
  /// Not empty when this input could not be read or classified: the message,
  /// naming the input. `top` is then empty.
  std::string error;
  /// Set when the input could not be read as an image (and why).
  std::optional<UnreadableImage> unreadable;
};

/// Called with each prediction as soon as it is made (graft predict prints
/// them as they come).
using PredictionCallback = std::function<void(const InputPrediction&)>;

}  // namespace graft
