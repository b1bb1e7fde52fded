#include "graft/eval/run_eval.h"

#include <iostream>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/progress.h"
#include "graft/data/image_header.h"
#include "graft/data/image_set.h"
#include "graft/data/transforms.h"
#include "graft/eval/infer.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/weights/state_dict.h"

namespace graft {

namespace {

// options.max_pixels for the length of a call: the limit is process-wide, and
// the caller's limit comes back afterwards.
class ScopedPixelLimit {
 public:
  explicit ScopedPixelLimit(int64_t pixels) : before_(max_image_pixels()) {
    if (pixels > 0) set_max_image_pixels(pixels);
  }
  ~ScopedPixelLimit() { set_max_image_pixels(before_); }
  ScopedPixelLimit(const ScopedPixelLimit&) = delete;
  ScopedPixelLimit& operator=(const ScopedPixelLimit&) = delete;

 private:
  int64_t before_;
};

// The model is only evaluated here and dropped afterwards: BatchNorm is
// folded in place (infer() then finds it folded already) rather than into a
// second copy of the weights.
void prepare_for_inference(BackboneImpl& model, torch::Device device) {
  model.to(device);
  model.eval();
  to_channels_last(model);
  FoldedBatchNorm fold(model, /*restore=*/false);
}

// `set` evaluated by `loaded`, whose classes name the set's labels. A source
// classifier (`outputs` > the set's classes) is cut to the set's classes.
ImageEvaluation evaluate_set(LoadedModel& loaded, const ImageSet& set, const ImageEvalOptions& o,
                             const RunScoring& scoring, const std::string& write_dir) {
  InferOptions io = o;
  io.precision = resolve_precision(o.precision, std::cerr);
  prepare_for_inference(*loaded.model, o.device);
  Outputs out = infer(*loaded.model, set, loaded.info.input, io, /*features=*/false);
  if (!out.unreadable.empty())
    log_warn(str_cat("image set '", set.root, "': ",
                     unreadable_summary(out.unreadable, static_cast<int64_t>(set.size()), set.classes, "images")));
  const int64_t classes = static_cast<int64_t>(loaded.info.classes.size());
  torch::Tensor logits = out.values;
  if (logits.size(1) > classes) logits = logits.narrow(1, 0, classes);
  std::vector<std::string> ids;
  for (size_t p : out.positions) ids.push_back(set.identity(p));
  ImageEvaluation e;
  static_cast<ScoredSet&>(e) =
      scoring.score(logits, out.labels, loaded.info.classes, ids, write_dir);
  e.images = e.metrics.count;
  e.skipped = static_cast<int64_t>(set.size() - out.positions.size()) + set.skipped;
  return e;
}

ImageSet open_selected(const std::string& data, const ImageEvalOptions& o) {
  OpenOptions open;
  open.strict = o.strict;
  ImageSet set = open_image_set(data, open);
  if (!o.classes.empty()) set = select_classes(set, o.classes);
  return set;
}

}  // namespace

ImageEvaluation evaluate_image_run(const std::string& run, const std::string& data,
                                   const ImageEvalOptions& options, const std::string& option,
                                   const std::string& write_dir) {
  ScopedPixelLimit limit(options.max_pixels);
  LoadedModel loaded = load_model(run);
  const RunScoring scoring = run_scoring(run, options.reject);
  ImageSet set = align_classes(open_selected(data, options), loaded.info.classes, option);
  return evaluate_set(loaded, set, options, scoring, write_dir);
}

ImageEvaluation evaluate_source_model(const std::string& backbone, const std::string& weights,
                                      const std::string& data, const ImageEvalOptions& options) {
  ScopedPixelLimit limit(options.max_pixels);
  const BackboneSpec& spec = find_backbone(backbone);
  LoadedModel loaded;
  loaded.info.backbone = backbone;
  loaded.info.input = spec.input;
  loaded.info.transform_input = spec.transform_input;
  loaded.model = spec.make(spec.source_classes);
  LoadReport r = load_state_dict(*loaded.model, read_weights(weights));
  GRAFT_CHECK(r.missing.empty() && r.mismatched.empty(), "--weights '", weights,
              "' does not fit ", backbone, ": ", r.summary());
  ImageSet set = open_selected(data, options);
  GRAFT_CHECK(static_cast<int64_t>(set.classes.size()) <= spec.source_classes, "--data '", data,
              "' has ", set.classes.size(), " classes, the source classifier has ",
              spec.source_classes);
  loaded.info.classes = set.classes;
  GRAFT_CHECK_USAGE(options.reject.reject_at_frr == 0, "--reject-at-frr: a source model has no validation "
                    "confidences; give --reject-below P instead");
  return evaluate_set(loaded, set, options, RunScoring{RunCalibration{}, reject_threshold(options.reject, {}, weights)},
                      "");
}

std::vector<InputPrediction> predict_image_run(const std::string& run,
                                               const std::vector<std::string>& inputs,
                                               const ImageEvalOptions& options,
                                               const PredictionCallback& each) {
  ScopedPixelLimit limit(options.max_pixels);
  LoadedModel loaded = load_model(run);
  const RunScoring scoring = run_scoring(run, options.reject);
  const Precision precision = resolve_precision(options.precision, std::cerr);
  torch::InferenceMode guard;
  prepare_for_inference(*loaded.model, options.device);
  std::vector<InputPrediction> results;
  for (const auto& path : inputs) {
    InputPrediction p;
    p.input = path;
    cv::Mat img;
    try {
      check_input_file(path);
    } catch (const Error& e) {
      p.error = e.what();
      p.unreadable = UnreadableImage{path, -1, ImageProblem::kCannotOpen, "", e.what()};
    }
    if (p.error.empty()) {
      try {
        img = load_image(path);
      } catch (const Error& e) {
        p.error = e.what();
        p.unreadable = unreadable_image(e, path, -1);
      }
    }
    if (p.error.empty()) {
      torch::Tensor x = channels_last(eval_transform(img, loaded.info.input).unsqueeze(0));
      torch::Tensor logits;
      {
        Autocast autocast(precision);
        logits = loaded.model->forward(x.to(options.device))[0].to(torch::kCPU, torch::kFloat32);
      }
      scoring.predict(p, logits, loaded.info.classes, options.top_k);
    }
    if (each) each(p);
    results.push_back(std::move(p));
  }
  return results;
}

}  // namespace graft
