#include "graft/eval/run_eval.h"
#include "graft/eval/int8_run.h"

#include "graft/eval/image_predictor.h"

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/progress.h"
#include "graft/data/image_header.h"
#include "graft/data/image_set.h"
#include "graft/data/transforms.h"
#include "graft/eval/infer.h"
#include "graft/eval/tta.h"
#include "graft/models/head.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/weights/safetensors.h"
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

}  // namespace

void prepare_for_inference(BackboneImpl& model, torch::Device device) {
  model.to(device);
  model.eval();
  to_channels_last(model);
  FoldedBatchNorm fold(model, /*restore=*/false);
}

namespace {

// `set` evaluated by `loaded`, whose classes name the set's labels. A source
// classifier (`outputs` > the set's classes) is cut to the set's classes.
ImageEvaluation evaluate_set(LoadedModel& loaded, const ImageSet& set, const ImageEvalOptions& o,
                             const RunScoring& scoring, const std::string& write_dir) {
  InferOptions io = o;
  io.precision = resolve_precision(o.precision, std::cerr);
  prepare_for_inference(*loaded.model, o.device);
  Outputs out = infer(*loaded.model, set, loaded.info.input, io, /*features=*/false, o.tta);
  if (!out.unreadable.empty())
    log_warn(str_cat("image set '", set.root, "': ",
                     unreadable_summary(out.unreadable, static_cast<int64_t>(set.size()), set.classes, "images")));
  const int64_t classes = static_cast<int64_t>(loaded.info.classes.size());
  torch::Tensor logits = out.values;  // [N, C], or [N, V, C] with a tta
  if (logits.size(-1) > classes) logits = logits.narrow(-1, 0, classes);
  std::vector<std::string> ids;
  for (size_t p : out.positions) ids.push_back(set.identity(p));
  ImageEvaluation e;
  static_cast<ScoredSet&>(e) = o.tta == Tta::None
                                   ? scoring.score(logits, out.labels, loaded.info.classes, ids, write_dir)
                                   : score_views(scoring, logits, out.labels, loaded.info.classes, ids, write_dir);
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
  prepare_int8_run(loaded, run, options);
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
  prepare_int8_source(*loaded.model, backbone, loaded.info.input, options);
  GRAFT_CHECK(static_cast<int64_t>(set.classes.size()) <= spec.source_classes, "--data '", data,
              "' has ", set.classes.size(), " classes, the source classifier has ",
              spec.source_classes);
  loaded.info.classes = set.classes;
  GRAFT_CHECK_USAGE(options.reject.reject_at_frr == 0, "--reject-at-frr: a source model has no validation "
                    "confidences; give --reject-below P instead");
  return evaluate_set(loaded, set, options, RunScoring{RunCalibration{}, reject_threshold(options.reject, {}, weights)},
                      "");
}

ImagePredictor::ImagePredictor(const std::string& run, const ImageEvalOptions& options)
    : loaded_(load_model(run)),
      scoring_(run_scoring(run, options.reject)),
      precision_(resolve_precision(options.precision, std::cerr)),
      options_(options) {
  torch::InferenceMode guard;
  prepare_int8_run(loaded_, run, options_);
  prepare_for_inference(*loaded_.model, options_.device);
}

torch::Tensor ImagePredictor::input(const cv::Mat& image) const {
  return options_.tta == Tta::None ? eval_transform(image, loaded_.info.input)
                                   : eval_views(image, loaded_.info.input, options_.tta);
}

// The inputs as one channels-last batch: [N, 3, H, W] without tta, every
// view of every input (in order) with one.
torch::Tensor ImagePredictor::batch(const std::vector<torch::Tensor>& inputs) const {
  GRAFT_CHECK(!inputs.empty(), "ImagePredictor: an empty batch");
  return channels_last(options_.tta == Tta::None ? torch::stack(inputs) : torch::cat(inputs));
}

std::vector<InputPrediction> ImagePredictor::predict(const std::vector<torch::Tensor>& inputs) {
  torch::InferenceMode guard;
  const torch::Tensor x = batch(inputs);
  torch::Tensor logits;
  {
    Autocast autocast(precision_);
    logits = loaded_.model->forward(x.to(options_.device)).to(torch::kCPU, torch::kFloat32);
  }
  std::vector<InputPrediction> out(inputs.size());
  int64_t row = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (options_.tta == Tta::None) {
      scoring_.predict(out[i], logits[row++], loaded_.info.classes, options_.top_k);
    } else {
      const int64_t views = inputs[i].size(0);
      predict_views(scoring_, out[i], logits.narrow(0, row, views), loaded_.info.classes, options_.top_k);
      row += views;
    }
  }
  return out;
}

torch::Tensor ImagePredictor::features(const std::vector<torch::Tensor>& inputs) {
  torch::InferenceMode guard;
  const torch::Tensor x = batch(inputs);
  torch::Tensor f;
  {
    Autocast autocast(precision_);
    f = loaded_.model->features(x.to(options_.device)).to(torch::kCPU, torch::kFloat32);
  }
  if (options_.tta == Tta::None) return f;
  std::vector<torch::Tensor> means;
  int64_t row = 0;
  for (const auto& in : inputs) {
    means.push_back(f.narrow(0, row, in.size(0)).mean(0));
    row += in.size(0);
  }
  return torch::stack(means);
}

std::vector<InputPrediction> predict_image_run(const std::string& run,
                                               const std::vector<std::string>& inputs,
                                               const ImageEvalOptions& options,
                                               const PredictionCallback& each) {
  ScopedPixelLimit limit(options.max_pixels);
  ImagePredictor predictor(run, options);
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
      InputPrediction scored = std::move(predictor.predict({predictor.input(img)})[0]);
      p.top = std::move(scored.top);
      p.unknown = scored.unknown;
      p.distances = scored.distances;
    }
    if (each) each(p);
    results.push_back(std::move(p));
  }
  return results;
}

void check_class_name(const std::string& name) {
  bool printable = !name.empty();
  for (unsigned char c : name) printable = printable && c >= 0x20 && c != 0x7f;
  GRAFT_CHECK_USAGE(printable, "--class: '", name, "' (expected a non-empty class name without control characters)");
}

void check_centroid_run(const std::string& run, const std::string& head) {
  GRAFT_CHECK_USAGE(head == "centroid", "graft enroll: '", run, "' has a ", head,
                    " head, whose classes are fixed by training (expected a run trained with --head centroid; "
                    "retrain with the new class, or with --head centroid to enroll classes later)");
}

Enrolment enroll_centroid_row(const std::string& run, std::vector<std::string> classes, const std::string& name,
                              const torch::Tensor& row, const std::string& classifier) {
  const std::string path = run + "/model.safetensors";
  SafetensorsFile file = load_safetensors(path);
  const std::string key = classifier + ".weight";
  auto it = std::find_if(file.tensors.begin(), file.tensors.end(), [&](const auto& t) { return t.first == key; });
  GRAFT_CHECK(it != file.tensors.end(), path, " has no tensor '", key, "' (expected the centroid head's rows)");
  torch::Tensor& w = it->second;
  GRAFT_CHECK(w.dim() == 2 && w.size(0) == static_cast<int64_t>(classes.size()) && w.size(1) == row.size(0), path,
              ": '", key, "' is ", w.sizes(), " (expected [", classes.size(), ", ", row.size(0), "], one row per class)");
  Enrolment e;
  e.run = run;
  e.name = name;
  const auto pos = std::find(classes.begin(), classes.end(), name);
  e.replaced = pos != classes.end();
  if (e.replaced) {
    w = w.clone();
    w[pos - classes.begin()].copy_(row.to(w.dtype()));
  } else {
    w = torch::cat({w, row.to(w.dtype()).unsqueeze(0)});
    classes.push_back(name);
  }
  e.classes = classes;
  // The weights name the classes and are written first: they are the commit
  // point (load_model reads the classes from them); model.json follows.
  std::map<std::string, std::string> meta = file.metadata;
  meta[kWeightClassesKey] = nlohmann::json(classes).dump();
  save_safetensors(path, file.tensors, meta);
  return e;
}

Enrolment enroll_image_class(const std::string& run, const std::string& name, const std::string& dir,
                             const ImageEvalOptions& options) {
  check_class_name(name);
  ScopedPixelLimit limit(options.max_pixels);
  LoadedModel loaded = load_model(run);
  check_centroid_run(run, loaded.info.head);
  OpenOptions open;
  open.strict = options.strict;
  open.as_class = name;
  GRAFT_CHECK_USAGE(std::filesystem::is_directory(dir), "graft enroll: '", dir,
                    "' is not a folder (expected a folder of images of class '", name, "')");
  const ImageSet set = open_image_set(dir, open);
  InferOptions io = options;
  io.precision = resolve_precision(options.precision, std::cerr);
  io.label = "enroll " + name;
  const std::string classifier = loaded.model->classifier_name();
  prepare_for_inference(*loaded.model, options.device);
  const Outputs out = infer(*loaded.model, set, loaded.info.input, io, /*features=*/true);
  GRAFT_CHECK(out.values.size(0) > 0, "graft enroll: no image of '", dir, "' could be decoded (",
              unreadable_summary(out.unreadable, static_cast<int64_t>(set.size()), set.classes, "images"), ")");
  if (!out.unreadable.empty())
    log_warn(str_cat("'", dir, "': ", unreadable_summary(out.unreadable, static_cast<int64_t>(set.size()),
                                                          set.classes, "images")));
  Enrolment e = enroll_centroid_row(run, loaded.info.classes, name, class_centroid(out.values), classifier);
  e.examples = out.values.size(0);
  e.skipped = static_cast<int64_t>(set.size()) - e.examples + set.skipped;
  ModelInfo info = loaded.info;
  info.classes = e.classes;
  write_file_atomic(run + "/model.json", to_json(info).dump(2) + "\n");
  return e;
}

nlohmann::ordered_json enrolment_json(const Enrolment& e) {
  nlohmann::ordered_json j;
  j["run"] = e.run;
  j["class"] = e.name;
  j["action"] = e.replaced ? "replaced" : "added";
  j["examples"] = e.examples;
  j["skipped"] = e.skipped;
  j["classes"] = e.classes.size();
  return j;
}

}  // namespace graft
