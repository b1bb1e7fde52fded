// The C++ API (include/graft/graft.h): a thin layer over the code behind the
// command line, so that a program gets the answers `graft predict`, `graft
// eval`, `graft train` and `graft face` give. libgraft.so exports this file's
// functions only (cmake/libgraft.map).

#include "graft/graft.h"

#include <atomic>
#include <limits>
#include <optional>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "graft/core/files.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/data/image_set.h"
#include "graft/data/transforms.h"
#include "graft/eval/calibration.h"
#include "graft/eval/image_predictor.h"
#include "graft/eval/run_eval.h"
#include "graft/face/gallery.h"
#include "graft/face/pipeline.h"
#include "graft/models/fast.h"
#include "graft/models/saved_model.h"
#include "graft/text/text_model.h"
#include "graft/train/task.h"
#include "graft/train/trainer.h"

namespace graft {

std::string version() { return GRAFT_VERSION; }

int version_major() { return std::stoi(GRAFT_VERSION); }

std::string Prediction::answer() const {
  if (!error.empty() || top.empty()) return "";
  return unknown ? "unknown" : top.front().label;
}

namespace {

Prediction api_prediction(const InputPrediction& p) {
  Prediction out;
  out.input = p.input;
  out.unknown = p.unknown;
  out.error = p.error;
  for (const LabelScore& s : p.top) out.top.push_back({s.label, s.probability});
  return out;
}

std::vector<float> row_vector(const torch::Tensor& row) {
  const torch::Tensor c = row.to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::vector<std::vector<float>> row_vectors(const torch::Tensor& rows) {
  std::vector<std::vector<float>> out;
  for (int64_t i = 0; i < rows.size(0); ++i) out.push_back(row_vector(rows[i]));
  return out;
}

// The thread count, LibTorch's global random state and log_info's silence
// of the caller, put back when a call that sets them returns (or throws).
class ProcessStateGuard {
 public:
  ProcessStateGuard()
      : threads_(torch::get_num_threads()),
        quiet_(is_quiet()),
        rng_(at::detail::getDefaultCPUGenerator().get_state()) {}
  ~ProcessStateGuard() {
    torch::set_num_threads(threads_);
    set_quiet(quiet_);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(rng_);
  }
  ProcessStateGuard(const ProcessStateGuard&) = delete;
  ProcessStateGuard& operator=(const ProcessStateGuard&) = delete;

 private:
  int threads_;
  bool quiet_;
  at::Tensor rng_;
};

std::string nth_input(size_t i) { return str_cat("#", i); }

}  // namespace

// ------------------------------------------------------------------ Model

struct Model::Impl {
  std::string run, task;
  std::vector<std::string> classes;
  std::unique_ptr<ImagePredictor> image;  // image runs: graft predict's own code
  std::optional<TextModel> text;          // text runs
  RunScoring scoring;                     // text runs

  void check_task(const char* want, const char* call) const {
    GRAFT_CHECK_USAGE(task == want, "graft::Model::", call, ": '", run, "' is a", task == "image" ? "n " : " ",
                      task, " run (expected a", std::string(want) == "image" ? "n " : " ", want, " run)");
  }

  // One image (8-bit grey or RGB) as graft predict answers it; the
  // predictor ranks every class, the call keeps its top_k.
  void answer_image(const cv::Mat& rgb, int top_k, InputPrediction& p) const {
    InputPrediction scored = std::move(image->predict({image->input(rgb)})[0]);
    scored.top.resize(std::min<size_t>(scored.top.size(), static_cast<size_t>(std::max(top_k, 0))));
    p.top = std::move(scored.top);
    p.unknown = scored.unknown;
  }

  std::vector<EncodedText> encode(const std::vector<std::string>& texts, std::vector<std::string>* errors) const {
    std::vector<EncodedText> encoded;
    for (size_t i = 0; i < texts.size(); ++i) {
      std::string a, b;
      if (!split_text_line(texts[i], text->info.pairs, a, b)) {
        const std::string e = str_cat(nth_input(i), ": no tab (the model reads text pairs: TEXT<TAB>TEXT)");
        GRAFT_CHECK(errors, e);
        errors->push_back(e);
        continue;
      }
      if (errors) errors->push_back("");
      encoded.push_back(text->encode(a, b));
    }
    return encoded;
  }
};

Model::Model(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Model Model::load(const std::string& run) {
  check_version();
  auto impl = std::make_shared<Impl>();
  impl->run = run;
  impl->task = task_of_run(run).name;
  GRAFT_CHECK_USAGE(impl->task == "image" || impl->task == "text", "graft::Model::load: '", run, "' is a ",
                    impl->task, " run (expected an image or text run; face runs: graft::FaceRecognizer)");
  torch::InferenceMode guard;
  if (impl->task == "image") {
    ImageEvalOptions o;
    o.device = torch::kCPU;
    o.top_k = std::numeric_limits<int32_t>::max();
    impl->image = std::make_unique<ImagePredictor>(run, o);
    impl->classes = impl->image->info().classes;
  } else {
    impl->text = load_text_model(run);
    impl->text->module().eval();
    impl->classes = impl->text->info.classes;
    impl->scoring = run_scoring(run, RejectOptions{});
  }
  return Model(std::move(impl));
}

const std::string& Model::task() const { return impl_->task; }
const std::vector<std::string>& Model::classes() const { return impl_->classes; }
int Model::input_size() const { return impl_->task == "image" ? impl_->image->info().input.size : 0; }
int Model::input_channels() const { return impl_->task == "image" ? impl_->image->info().input.channels : 0; }

std::vector<float> Model::mean() const {
  if (impl_->task != "image") return {};
  const InputSpec& s = impl_->image->info().input;
  return std::vector<float>(s.mean.begin(), s.mean.begin() + s.channels);
}

std::vector<float> Model::stddev() const {
  if (impl_->task != "image") return {};
  const InputSpec& s = impl_->image->info().input;
  return std::vector<float>(s.std.begin(), s.std.begin() + s.channels);
}

int64_t Model::embedding_size() const {
  if (impl_->task == "image") return impl_->image->feature_dim();
  return impl_->text->info.architecture == "bert" ? impl_->text->info.bert.hidden_size : 0;
}

void Model::set_reject_below(double p) {
  GRAFT_CHECK_USAGE(p >= 0 && p < 1, "graft::Model::set_reject_below: ", p,
                    " (expected a probability, 0 <= p < 1; 0: never unknown)");
  if (impl_->image) impl_->image->set_reject_threshold(p);
  impl_->scoring.threshold = p;
}

std::vector<Prediction> Model::predict_files(const std::vector<std::string>& paths, int top_k) const {
  impl_->check_task("image", "predict_files");
  torch::InferenceMode guard;
  std::vector<Prediction> out;
  for (const std::string& path : paths) {
    InputPrediction p;
    p.input = path;
    try {
      check_input_file(path);
      impl_->answer_image(load_image(path), top_k, p);
    } catch (const Error& e) {
      p.top.clear();
      p.error = e.what();
    }
    out.push_back(api_prediction(p));
  }
  return out;
}

std::vector<Prediction> Model::predict(const std::vector<cv::Mat>& images, int top_k) const {
  impl_->check_task("image", "predict");
  torch::InferenceMode guard;
  std::vector<Prediction> out;
  for (size_t i = 0; i < images.size(); ++i) {
    InputPrediction p;
    p.input = nth_input(i);
    try {
      impl_->answer_image(grey_or_rgb_from_bgr(images[i], p.input), top_k, p);
    } catch (const Error& e) {
      p.top.clear();
      p.error = e.what();
    }
    out.push_back(api_prediction(p));
  }
  return out;
}

std::vector<Prediction> Model::predict_texts(const std::vector<std::string>& texts, int top_k) const {
  impl_->check_task("text", "predict_texts");
  torch::InferenceMode guard;
  std::vector<std::string> errors;
  const std::vector<EncodedText> encoded = impl_->encode(texts, &errors);
  const torch::Tensor logits =
      encoded.empty() ? torch::Tensor() : impl_->text->logits(encoded).to(torch::kCPU, torch::kFloat32);
  std::vector<Prediction> out;
  int64_t row = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    InputPrediction p;
    p.input = nth_input(i);
    p.error = errors[i];
    if (p.error.empty()) impl_->scoring.predict(p, logits[row++], impl_->classes, top_k);
    out.push_back(api_prediction(p));
  }
  return out;
}

std::vector<std::vector<float>> Model::embed(const std::vector<cv::Mat>& images) const {
  impl_->check_task("image", "embed");
  std::vector<torch::Tensor> inputs;
  for (size_t i = 0; i < images.size(); ++i)
    inputs.push_back(impl_->image->input(grey_or_rgb_from_bgr(images[i], nth_input(i))));
  if (inputs.empty()) return {};
  return row_vectors(impl_->image->features(inputs));
}

std::vector<std::vector<float>> Model::embed_texts(const std::vector<std::string>& texts) const {
  impl_->check_task("text", "embed_texts");
  GRAFT_CHECK_USAGE(impl_->text->info.architecture == "bert", "graft::Model::embed_texts: '", impl_->run,
                    "' is a ", impl_->text->info.architecture, " run (expected a BERT run: only BERT has features)");
  torch::InferenceMode guard;
  const std::vector<EncodedText> encoded = impl_->encode(texts, nullptr);
  if (encoded.empty()) return {};
  return row_vectors(impl_->text->features(encoded));
}

// ------------------------------------------------------------------ fit

StopToken::StopToken() : flag_(std::make_shared<std::atomic<bool>>(false)) {}

void StopToken::request_stop() const { static_cast<std::atomic<bool>*>(flag_.get())->store(true); }

bool StopToken::stop_requested() const { return static_cast<std::atomic<bool>*>(flag_.get())->load(); }

FitResult fit(const FitOptions& f, const std::function<void(const EpochProgress&)>& on_epoch, const StopToken& stop) {
  check_version();
  nlohmann::json j = {{"task", f.task},         {"data", f.data},       {"backbone", f.backbone},
                      {"weights", f.weights},   {"strategy", f.strategy}, {"epochs", f.epochs},
                      {"batch_size", f.batch_size}, {"lr", f.lr},     {"val_split", f.val_split},
                      {"test", f.test},         {"seed", f.seed}};
  for (const auto& [key, value] : f.options) {
    GRAFT_CHECK_USAGE(!j.contains(key), "graft::FitOptions::options: '", key,
                      "' is a field of FitOptions (expected it set there, not in options)");
    try {
      j[key] = nlohmann::json::parse(value);
    } catch (const nlohmann::json::exception&) {
      throw UsageError(str_cat("graft::FitOptions::options: the value of '", key, "' is not JSON: ", value,
                               " (expected e.g. 3, 0.1, true or \"light\": a string needs its quotes)"));
    }
  }
  const TrainOptions base = default_train_options(f.task, f.backbone);
  TrainOptions o = train_options_from_json(j, "graft::FitOptions", &base);
  GRAFT_CHECK_USAGE(f.threads >= -1, "graft::FitOptions::threads: ", f.threads,
                    " (expected -1: keep the process's count, 0: every core, or a count)");
  ProcessStateGuard restore;
  o.threads = f.threads < 0 ? torch::get_num_threads() : f.threads;
  o.out = f.out;
  o.overwrite = f.overwrite;
  o.resume = f.resume;
  o.quiet = f.quiet;
  if (f.quiet) set_quiet(true);
  o.should_stop = [stop](int64_t) { return stop.stop_requested(); };
  if (on_epoch) {
    o.on_epoch = [&on_epoch, epochs = o.epochs](const EpochRow& r) {
      on_epoch(EpochProgress{r.epoch, epochs, r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy, r.lr,
                             r.seconds, r.items_per_second});
    };
  }
  const TrainSummary s = train(o);
  FitResult r;
  r.out = s.out;
  r.epochs_run = s.epochs_run;
  r.best_epoch = s.best_epoch;
  r.best_val_accuracy = s.best_val_accuracy;
  r.has_test = s.has_test;
  r.test_accuracy = s.has_test ? s.test.accuracy : 0;
  r.interrupted = s.interrupted;
  r.seconds = s.seconds;
  return r;
}

Evaluation evaluate(const std::string& run, const std::string& data) {
  check_version();
  const TaskRow& row = task_of_run(run);
  GRAFT_CHECK_USAGE(row.evaluate, "graft::evaluate: '", run, "' is a ", row.name,
                    " run (expected an image or text run; faces: graft face evaluate)");
  RunUseSettings settings;
  settings.device = "cpu";
  const nlohmann::ordered_json j = row.evaluate(run, data, settings);
  Evaluation e;
  e.count = j.at("count").get<int64_t>();
  e.accuracy = j.at("accuracy").get<double>();
  e.loss = j.at("loss").get<double>();
  e.classes = j.at("classes").get<std::vector<std::string>>();
  e.confusion = j.at("confusion").get<std::vector<std::vector<int64_t>>>();
  return e;
}

// ------------------------------------------------------------------ faces

struct FaceRecognizer::Impl {
  explicit Impl(FaceOptions o) : pipeline(std::move(o)) {}
  FacePipeline pipeline;

  torch::Tensor embed(const cv::Mat& bgr, const std::string& name) {
    const std::vector<Face> faces = pipeline.faces(grey_or_rgb_from_bgr(bgr, name), name);
    GRAFT_CHECK(!faces.empty(), name, ": no face found");
    return pipeline.embed({faces.front().chip})[0];
  }
};

namespace {
FaceOptions recognizer_options(const FaceSettings& s) {
  FaceOptions o;
  o.models_dir = s.models_dir;
  o.detect = s.detect;
  o.embedder_run = s.embedder_run;
  return o;
}
}  // namespace

FaceRecognizer::FaceRecognizer(const FaceSettings& settings)
    : impl_(std::make_unique<Impl>(recognizer_options(settings))) {
  check_version();
}
FaceRecognizer::~FaceRecognizer() = default;
FaceRecognizer::FaceRecognizer(FaceRecognizer&&) noexcept = default;
FaceRecognizer& FaceRecognizer::operator=(FaceRecognizer&&) noexcept = default;

std::vector<float> FaceRecognizer::embed(const cv::Mat& image) const {
  torch::InferenceMode guard;
  return row_vector(impl_->embed(image, "image"));
}

int FaceRecognizer::enroll(const std::string& gallery, const std::string& folder) const {
  torch::InferenceMode guard;
  return enroll_gallery(impl_->pipeline, gallery, folder).enrolled;
}

FaceMatch FaceRecognizer::identify(const std::string& gallery_file, const cv::Mat& image, int top_k,
                                   double threshold) const {
  GRAFT_CHECK_USAGE(top_k >= 1, "graft::FaceRecognizer::identify: top_k ", top_k, " (expected at least 1)");
  torch::InferenceMode guard;
  const Gallery gallery = read_gallery(gallery_file);
  check_gallery_embedder(gallery, gallery_file, impl_->pipeline.embedder_name(), impl_->pipeline.embedder_sha256());
  GRAFT_CHECK(!gallery.identities.empty(), "gallery ", gallery_file, " has no identities");
  FaceMatch m;
  m.nearest = rank_identities(gallery, impl_->embed(image, "image"), top_k);
  m.distance = m.nearest.front().second;
  m.identity = m.distance < (threshold >= 0 ? threshold : gallery.threshold) ? m.nearest.front().first : "unknown";
  return m;
}

FaceVerification FaceRecognizer::verify(const cv::Mat& a, const cv::Mat& b, double threshold) const {
  torch::InferenceMode guard;
  FaceVerification v;
  v.threshold = threshold >= 0 ? threshold : kDefaultFaceThreshold;
  v.distance = (impl_->embed(a, "image a") - impl_->embed(b, "image b")).norm().item<double>();
  v.same = v.distance < v.threshold;
  return v;
}

}  // namespace graft
