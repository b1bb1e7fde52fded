#pragma once
/// The batch-level prediction code of an image run, shared by graft predict
/// (predict_image_run, eval/run_eval.h) and graft serve (serve/server.h).

#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/types.h>

#include "graft/eval/calibration.h"
#include "graft/eval/metrics.h"
#include "graft/eval/run_eval.h"
#include "graft/models/fast.h"
#include "graft/models/saved_model.h"

namespace graft {

/// An image run loaded for prediction as predict_image_run loads it (BatchNorm
/// folded, channels-last, the run's calibration and reject threshold,
/// options.precision resolved once): the batch-level code that graft predict
/// and graft serve share, so their answers are the same. Not thread-safe: one
/// thread calls predict/features at a time (each sets its own InferenceMode).
class ImagePredictor {
 public:
  /// Throws graft::Error when the run cannot be loaded, UsageError for a bad
  /// reject option (as run_scoring says).
  ImagePredictor(const std::string& run, const ImageEvalOptions& options);
  /// The model's input tensor of one decoded image (eval_transform, or the
  /// test-time views of options.tta: [V, 3, H, W]; without tta [3, H, W]).
  /// Thread-safe: callers may prepare inputs on their own threads.
  torch::Tensor input(const cv::Mat& image) const;
  /// p.top (and p.unknown) for each input made by input(), in one forward
  /// pass (with tta, one pass of all the views of all the inputs).
  std::vector<InputPrediction> predict(const std::vector<torch::Tensor>& inputs);
  /// Pooled features [N, feature_dim] of inputs made by input() (with tta:
  /// the views' mean), fp32 on the CPU.
  torch::Tensor features(const std::vector<torch::Tensor>& inputs);
  const ModelInfo& info() const { return loaded_.info; }
  int64_t feature_dim() const { return loaded_.model->feature_dim(); }
  /// Answers "unknown" below this calibrated probability from now on (0: never).
  void set_reject_threshold(double p) { scoring_.threshold = p; }

 private:
  torch::Tensor batch(const std::vector<torch::Tensor>& inputs) const;
  LoadedModel loaded_;
  RunScoring scoring_;
  Precision precision_;
  ImageEvalOptions options_;
};

}  // namespace graft
