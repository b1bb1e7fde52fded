#pragma once
/// Evaluation and prediction of a trained image run: the library calls
/// behind graft eval and graft predict on image runs (text runs: text_eval.h),
/// and the test of graft search's best trial.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <torch/types.h>

#include "graft/eval/calibration.h"
#include "graft/eval/infer.h"
#include "graft/eval/metrics.h"
#include "graft/models/fast.h"

namespace graft {

/// Settings of an image evaluation or prediction; what is evaluated (the run,
/// the data) is passed beside them.
/// infer()'s settings (prediction runs one image at a time, whatever the
/// batch size), and the precision as asked for: bf16 falls back to fp32, with
/// a warning on stderr, on a CPU without bfloat16 support (resolve_precision).
struct ImageEvalOptions : InferOptions {
  /// The image pixel limit while the call runs (set_max_image_pixels, a
  /// process-wide setting, restored afterwards); 0 keeps the current one.
  int64_t max_pixels = 0;
  /// Keep only these classes of the data, in this order (empty: all).
  std::vector<std::string> classes;
  /// Labels per input (prediction).
  int64_t top_k = 5;
  /// "unknown" below a confidence threshold (eval: the "rejection" block).
  RejectOptions reject;
  /// Test-time augmentation (eval/tta.h): the views' calibrated softmax
  /// probabilities are averaged. Tta::None is the one centre crop.
  Tta tta = Tta::None;
};

/// Scored with the run's calibration (eval/calibration.h).
struct ImageEvaluation : ScoredSet {
  /// Images evaluated (metrics.count).
  int64_t images = 0;
  /// Images left out: files that are not images when the set was opened, and
  /// images that could not be decoded (not with options.strict).
  int64_t skipped = 0;
};

/// Evaluates the image run in `run` (a folder written by graft train) on the
/// labelled images `data` (a folder of class folders or an IDX file). The
/// data's classes must be among the run's (an unknown class is an error
/// naming `option` and `data`). The model is evaluated as graft eval does:
/// BatchNorm folded, channels-last, options.precision. When `write_dir` is
/// not empty, test_metrics.json and test_predictions.csv are written there
/// (atomically). Throws graft::Error / UsageError on bad input.
ImageEvaluation evaluate_image_run(const std::string& run, const std::string& data,
                                   const ImageEvalOptions& options,
                                   const std::string& option = "--data",
                                   const std::string& write_dir = "");

/// Evaluates a source model with its own classifier: registry backbone
/// `backbone` with the weights in `weights` (any format read_weights reads),
/// on `data`, whose class folders must be in the source's label order (class
/// k is output k). Throws graft::Error naming --weights when the weights do
/// not fit the backbone, and naming --data when it has more classes than the
/// source classifier has outputs.
ImageEvaluation evaluate_source_model(const std::string& backbone, const std::string& weights,
                                      const std::string& data, const ImageEvalOptions& options);

/// A loaded model made ready to be only evaluated: on `device`, eval mode,
/// channels-last, BatchNorm folded in place (infer() then finds it folded
/// already) rather than into a second copy of the weights.
void prepare_for_inference(BackboneImpl& model, torch::Device device);

/// Top options.top_k labels of the image run in `run` for each image file in
/// `inputs`, in order, one image at a time. An input that is not a readable
/// image file (a folder, a device, a file over the pixel limit, a corrupt
/// image) gets an InputPrediction with its error and the others are still
/// predicted; `each`, when given, is called with every result as soon as it
/// is known. options.batch_size, workers, strict and classes are not used.
/// Throws graft::Error when the run cannot be loaded.
std::vector<InputPrediction> predict_image_run(const std::string& run,
                                               const std::vector<std::string>& inputs,
                                               const ImageEvalOptions& options,
                                               const PredictionCallback& each = nullptr);

/// What graft enroll did to a centroid run.
struct Enrolment {
  std::string run, name;
  bool replaced = false;              // the class existed: its row was replaced
  int64_t examples = 0;               // inputs whose features make the row
  int64_t skipped = 0;                // inputs left out (unreadable, empty)
  std::vector<std::string> classes;   // the run's classes afterwards
};

/// Throws graft::UsageError naming --class unless `name` is a usable class name.
void check_class_name(const std::string& name);
/// Throws graft::UsageError unless `head` is "centroid" (enrolment needs it).
void check_centroid_run(const std::string& run, const std::string& head);
/// Replaces (or appends) class `name`'s row of the centroid weight
/// `classifier`.weight in run/model.safetensors with `row` (unit length),
/// given the run's `classes`; the file is rewritten atomically and names the
/// new class list in its metadata. The caller rewrites model.json after.
Enrolment enroll_centroid_row(const std::string& run, std::vector<std::string> classes, const std::string& name,
                              const torch::Tensor& row, const std::string& classifier);

/// graft enroll on an image run trained with --head centroid: the images of
/// `dir` (searched recursively) become class `name` (added, or replacing the
/// class of that name): its row is the unit-length mean of their
/// L2-normalised features. No training; model.safetensors, then model.json,
/// each rewritten atomically. Throws graft::UsageError for a run with
/// another head, graft::Error when no image of `dir` can be read.
Enrolment enroll_image_class(const std::string& run, const std::string& name, const std::string& dir,
                             const ImageEvalOptions& options);

nlohmann::ordered_json enrolment_json(const Enrolment& e);

}  // namespace graft
