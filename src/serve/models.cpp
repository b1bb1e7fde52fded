#include "models.h"

#include <algorithm>
#include <filesystem>
#include <iostream>

#include <malloc.h>

#include "graft/core/error.h"
#include "graft/core/progress.h"
#include "graft/eval/image_predictor.h"
#include "graft/face/face_train.h"
#include "graft/face/gallery.h"
#include "graft/face/mobilefacenet.h"
#include "graft/face/pipeline.h"
#include "graft/train/task.h"

namespace graft::serve {

namespace {

nlohmann::ordered_json prediction_json(const InputPrediction& p) {
  nlohmann::ordered_json j;
  j["label"] = p.unknown || p.top.empty() ? "unknown" : p.top.front().label;
  j["unknown"] = p.unknown;
  nlohmann::ordered_json top = nlohmann::ordered_json::array();
  for (const auto& t : p.top) top.push_back({{"label", t.label}, {"probability", t.probability}});
  j["top"] = std::move(top);
  return j;
}

std::vector<ServeAnswer> embedding_answers(const torch::Tensor& features) {
  const torch::Tensor f = features.to(torch::kCPU, torch::kFloat32).contiguous();
  std::vector<ServeAnswer> out(static_cast<size_t>(f.size(0)));
  for (int64_t i = 0; i < f.size(0); ++i) {
    const float* row = f[i].data_ptr<float>();
    out[static_cast<size_t>(i)].value = nlohmann::ordered_json(std::vector<float>(row, row + f.size(1)));
    out[static_cast<size_t>(i)].tensor = f[i];
  }
  return out;
}

// An image run: ImagePredictor, the code of graft predict (predict_image_run).
class ServedImageRun : public ServedModel {
 public:
  ServedImageRun(const std::string& run, const ServeOptions& o)
      : predictor_(run, options(o)), planner_(o.max_batch) {}

  std::string kind() const override { return "image"; }
  nlohmann::ordered_json describe() const override {
    const ModelInfo& info = predictor_.info();
    return {{"task", "image"},
            {"backbone", info.backbone},
            {"head", info.head},
            {"classes", info.classes},
            {"input",
             {{"size", info.input.size},
              {"resize", info.input.resize},
              {"channels", info.input.channels},
              {"mean", info.input.mean},
              {"std", info.input.std}}},
            {"accepts", {"image/*", "application/octet-stream", "multipart/form-data"}}};
  }
  ServeInput from_image(const cv::Mat& image) const override {
    ServeInput in;
    in.image = predictor_.input(image);
    return in;
  }
  std::string refuses(ServeOp) const override { return ""; }
  // The batch runs in the passes PassPlanner chooses (zero images pad the
  // last of a size; their answers are dropped), each pass timed for it.
  std::vector<ServeAnswer> run(ServeOp op, const std::vector<const ServeInput*>& inputs) override {
    const int64_t n = static_cast<int64_t>(inputs.size());
    std::vector<ServeAnswer> out;
    out.reserve(inputs.size());
    int64_t next = 0;
    for (const int64_t size : planner_.plan(n)) {
      const int64_t real = std::min(size, n - next);
      if (real <= 0) break;  // (a least-time plan has no pass of padding only)
      std::vector<torch::Tensor> xs;
      for (int64_t i = 0; i < real; ++i) xs.push_back(inputs[static_cast<size_t>(next + i)]->image);
      for (auto& a : run_pass(op, std::move(xs), size)) out.push_back(std::move(a));
      next += real;
    }
    return out;
  }
  // Each pass size twice: the first builds its kernels, the second is timed.
  void warm_up() override {
    const ServeInput in = warm_input();
    for (int round = 0; round < 2; ++round)
      for (const int64_t size : planner_.sizes()) run_pass(ServeOp::kPredict, {in.image}, size);
  }
  ServeInput warm_input() const override {
    const InputSpec& s = predictor_.info().input;
    cv::Mat grey(s.resize, s.resize, s.channels == 1 ? CV_8UC1 : CV_8UC3, cv::Scalar::all(128));
    return from_image(grey);
  }

 private:
  // graft predict's settings (image_eval_options of its RunUseSettings).
  static ImageEvalOptions options(const ServeOptions& o) {
    RunUseSettings use;
    use.precision = o.precision;
    use.calibration = o.calibration;
    use.calibration_data = o.calibration_data;
    use.top_k = o.top_k;
    use.reject = o.reject;
    return image_eval_options(use);
  }
  // One forward pass of `xs` padded to `size` images: xs.size() answers.
  std::vector<ServeAnswer> run_pass(ServeOp op, std::vector<torch::Tensor> xs, int64_t size) {
    const int64_t real = static_cast<int64_t>(xs.size());
    while (static_cast<int64_t>(xs.size()) < size) xs.push_back(torch::zeros_like(xs.front()));
    const auto start = std::chrono::steady_clock::now();
    std::vector<ServeAnswer> out;
    if (op == ServeOp::kEmbed) {
      out = embedding_answers(predictor_.features(xs).narrow(0, 0, real));
    } else {
      for (const InputPrediction& p : predictor_.predict(xs)) {
        if (static_cast<int64_t>(out.size()) == real) break;
        out.push_back({"", prediction_json(p), {}});
      }
    }
    planner_.observe(size, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return out;
  }
  ImagePredictor predictor_;
  PassPlanner planner_;
};

// A text run: load_text_model and run_scoring, as predict_text_run.
class ServedTextRun : public ServedModel {
 public:
  ServedTextRun(const std::string& run, const ServeOptions& o)
      : model_(load_text_model(run)), scoring_(run_scoring(run, o.reject)), top_k_(o.top_k), batch_(o.max_batch) {
    use_text_precision(model_, parse_precision(o.precision), std::filesystem::path(run).filename().string(),
                       "served");
  }

  std::string kind() const override { return "text"; }
  nlohmann::ordered_json describe() const override {
    return {{"task", "text"},
            {"backbone", model_.info.backbone},
            {"head", model_.info.head},
            {"classes", model_.info.classes},
            {"input", {{"max_length", model_.info.max_length}, {"pairs", model_.info.pairs}}},
            {"accepts", {"application/json {\"texts\": [...]}"}}};
  }
  // A text as graft predict reads a line: a pair model takes TEXT<TAB>TEXT.
  ServeInput from_text(const std::string& line) const override {
    std::string a = line, b;
    if (model_.info.pairs) {
      const size_t tab = line.find('\t');
      GRAFT_CHECK_USAGE(tab != std::string::npos, "no tab (the model reads text pairs: TEXT<TAB>TEXT)");
      a = line.substr(0, tab);
      b = line.substr(tab + 1);
    }
    GRAFT_CHECK_USAGE(a.find_first_not_of(" \t") != std::string::npos, "a blank text");
    ServeInput in;
    in.text = model_.encode(a, b);
    in.text_line = line;
    return in;
  }
  std::string refuses(ServeOp op) const override {
    if (op == ServeOp::kEmbed && model_.info.architecture != "bert")
      return "embed: a " + model_.info.architecture + " text run has no features (BERT runs have)";
    return "";
  }
  std::vector<ServeAnswer> run(ServeOp op, const std::vector<const ServeInput*>& inputs) override {
    std::vector<EncodedText> encoded;
    for (const ServeInput* in : inputs) encoded.push_back(in->text);
    if (op == ServeOp::kEmbed) return embedding_answers(model_.features(encoded, batch_));
    const torch::Tensor logits = model_.logits(encoded, batch_);
    std::vector<ServeAnswer> out;
    for (size_t i = 0; i < inputs.size(); ++i) {
      InputPrediction p;
      scoring_.predict(p, logits[static_cast<int64_t>(i)], model_.info.classes, top_k_);
      nlohmann::ordered_json j;
      j["text"] = inputs[i]->text_line;
      j.update(prediction_json(p));
      out.push_back({"", std::move(j), {}});
    }
    return out;
  }
  ServeInput warm_input() const override { return from_text(model_.info.pairs ? "warm\tup" : "warm up"); }

 private:
  TextModel model_;
  RunScoring scoring_;
  int64_t top_k_;
  int64_t batch_;
};

}  // namespace

void ServedModel::warm_up() {
  const ServeInput in = warm_input();
  run(refuses(ServeOp::kPredict).empty() ? ServeOp::kPredict : ServeOp::kEmbed, {&in});
}

// ------------------------------------------------------------ pass planner

PassPlanner::PassPlanner(int64_t max_batch) {
  GRAFT_CHECK(max_batch >= 1, "PassPlanner: max_batch ", max_batch);
  for (int64_t s = 1; s < max_batch; s *= 2) sizes_.push_back(s);
  sizes_.push_back(max_batch);
  seconds_.assign(sizes_.size(), -1.0);
}

void PassPlanner::observe(int64_t size, double seconds) {
  for (size_t i = 0; i < sizes_.size(); ++i)
    if (sizes_[i] == size && (seconds_[i] < 0 || seconds < seconds_[i])) seconds_[i] = seconds;
}

std::vector<int64_t> PassPlanner::plan(int64_t n) const {
  std::vector<int64_t> out;
  const bool timed = std::all_of(seconds_.begin(), seconds_.end(), [](double t) { return t >= 0; });
  if (!timed) {  // the next size up, max_batch passes past it
    for (; n > sizes_.back(); n -= sizes_.back()) out.push_back(sizes_.back());
    if (n > 0) out.push_back(*std::lower_bound(sizes_.begin(), sizes_.end(), n));
    return out;
  }
  // best[r]: the least time for r inputs; first[r]: the size of its largest pass.
  std::vector<double> best(static_cast<size_t>(n) + 1, 0.0);
  std::vector<int64_t> first(static_cast<size_t>(n) + 1, 0);
  for (int64_t r = 1; r <= n; ++r) {
    best[static_cast<size_t>(r)] = -1;
    for (size_t i = sizes_.size(); i-- > 0;) {  // larger first: ties take fewer passes
      const double t = seconds_[i] + best[static_cast<size_t>(std::max<int64_t>(0, r - sizes_[i]))];
      if (best[static_cast<size_t>(r)] < 0 || t < best[static_cast<size_t>(r)]) {
        best[static_cast<size_t>(r)] = t;
        first[static_cast<size_t>(r)] = sizes_[i];
      }
    }
  }
  for (int64_t r = n; r > 0; r -= first[static_cast<size_t>(r)]) out.push_back(first[static_cast<size_t>(r)]);
  std::sort(out.rbegin(), out.rend());
  return out;
}

ServeInput ServedModel::from_image(const cv::Mat&) const {
  throw UsageError("this model reads texts: send application/json {\"texts\": [\"...\"]}");
}

ServeInput ServedModel::from_text(const std::string&) const {
  throw UsageError("this model reads images: send the image bytes (image/*) or multipart/form-data");
}

// The served tasks; a run of another task (face, mlm) is refused by name.
std::unique_ptr<ServedModel> load_served_run(const std::string& run, const ServeOptions& o) {
  const TaskRow& task = task_of_run(run);
  if (task.name == "image") return std::make_unique<ServedImageRun>(run, o);
  if (task.name == "text") return std::make_unique<ServedTextRun>(run, o);
  throw UsageError(str_cat("graft serve: '", run, "' is a ", task.name,
                           " run; graft serve serves image and text runs (faces: --gallery)"));
}

// ------------------------------------------------------------------ gallery

class ServedGallery : public ServedModel {
 public:
  explicit ServedGallery(const ServeOptions& o) : gallery_(read_gallery(o.gallery)), pipeline_(options(o, gallery_)) {
    check_gallery_embedder(gallery_, o.gallery, pipeline_.embedder_name(), pipeline_.embedder_sha256());
    GRAFT_CHECK(!gallery_.identities.empty(), "gallery ", o.gallery, " has no identities");
  }
  std::string kind() const override { return "face"; }
  nlohmann::ordered_json describe() const override {
    std::vector<std::string> names;
    for (const auto& id : gallery_.identities) names.push_back(id.name);
    return {{"task", "face"},
            {"embedder", gallery_.embedder},
            {"detect", gallery_.detect},
            {"threshold", gallery_.threshold},
            {"identities", names}};
  }
  ServeInput from_image(const cv::Mat& image) const override {
    ServeInput in;
    in.face = image;
    return in;
  }
  std::string refuses(ServeOp op) const override { return op == ServeOp::kEmbed ? "" : "face: embed only"; }
  // graft face identify's steps: the faces, the largest one's chip, embedded.
  std::vector<ServeAnswer> run(ServeOp, const std::vector<const ServeInput*>& inputs) override {
    torch::NoGradGuard no_grad;
    std::vector<ServeAnswer> out;
    for (const ServeInput* in : inputs) {
      ServeAnswer a;
      try {
        const std::vector<Face> faces = pipeline_.faces(in->face, "image");
        if (faces.empty()) {
          a.error = "no face found";
        } else {
          const Face& f = faces.front();
          a.tensor = pipeline_.embed({f.chip})[0];
          a.value = {{"box", {f.box.x, f.box.y, f.box.width, f.box.height}}};
        }
      } catch (const Error& e) {
        a.error = e.what();
      }
      out.push_back(std::move(a));
    }
    return out;
  }
  ServeInput warm_input() const override {
    return from_image(cv::Mat(160, 160, CV_8UC3, cv::Scalar::all(128)));
  }
  const Gallery& gallery() const { return gallery_; }

 private:
  static FaceOptions options(const ServeOptions& o, const Gallery& g) {
    FaceOptions f = face_pipeline_options(face_defaults(""));
    if (!o.face_models.empty()) f.models_dir = o.face_models;
    f.detect = g.detect;
    // issue 18: a MobileFaceNet gallery is served with MobileFaceNet; a
    // fine-tuned embedder's gallery with the run named by --embedder (the
    // gallery's embedder and weights hash are checked against it).
    if (g.embedder == kMobileFaceNetName) f.embedder_name = kMobileFaceNetName;
    if (!o.face_embedder.empty()) set_face_embedder(f, o.face_embedder);
    return f;
  }
  Gallery gallery_;
  FacePipeline pipeline_;
};

std::unique_ptr<ServedModel> load_served_gallery(const ServeOptions& o) {
  return std::make_unique<ServedGallery>(o);
}

nlohmann::ordered_json identify_json(const ServedModel& model, const torch::Tensor& embedding, int top_k) {
  const Gallery& g = dynamic_cast<const ServedGallery&>(model).gallery();
  const auto ranked = rank_identities(g, embedding, top_k);
  nlohmann::ordered_json j;
  j["identity"] = ranked.front().second < g.threshold ? ranked.front().first : "unknown";
  j["threshold"] = g.threshold;
  j["top"] = nlohmann::ordered_json::array();
  for (const auto& [name, d] : ranked) j["top"].push_back({{"identity", name}, {"distance", d}});
  return j;
}

nlohmann::ordered_json verify_json(const ServedModel& model, const torch::Tensor& a, const torch::Tensor& b) {
  const Gallery& g = dynamic_cast<const ServedGallery&>(model).gallery();
  const double d = (a - b).norm().item<double>();
  return {{"same", d < g.threshold}, {"distance", d}, {"threshold", g.threshold}};
}

// ------------------------------------------------------------------ batcher

Batcher::Batcher(std::string name, ServedModel& model, const ServeOptions& o, ServeMetrics& metrics)
    : name_(std::move(name)),
      model_(model),
      max_batch_(o.max_batch),
      max_wait_(o.max_wait_ms),
      max_queue_(static_cast<size_t>(o.max_queue)),
      metrics_(metrics) {
  worker_ = std::thread([this] { work(); });
}

Batcher::~Batcher() { drain(std::chrono::steady_clock::now()); }

Batcher::Arrival::Arrival(Batcher& b) : batcher_(&b) {
  std::lock_guard<std::mutex> lock(b.mutex_);
  ++b.preparing_;
}

Batcher::Arrival::~Arrival() {
  if (batcher_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(batcher_->mutex_);
    --batcher_->preparing_;
  }
  batcher_->wake_.notify_all();
}

bool Batcher::submit(const std::shared_ptr<ServeJob>& job, Arrival* arrival) {
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (arrival != nullptr && arrival->batcher_ == this) {
      --preparing_;
      arrival->batcher_ = nullptr;
    }
    if (!draining_ && queue_.size() < max_queue_) {
      job->enqueued = std::chrono::steady_clock::now();
      queue_.push_back(job);
      queued = true;
    }
  }
  wake_.notify_all();
  return queued;
}

size_t Batcher::depth() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void Batcher::drain(std::chrono::steady_clock::time_point deadline) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!draining_) {
      draining_ = true;
      drain_deadline_ = deadline;
    }
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void Batcher::finish(ServeJob& job) {
  try {
    job.done.set_value();
  } catch (const std::future_error&) {
  }
}

// graft keeps freed memory in the heap (core/runtime.cpp: mallopt's trim and
// mmap thresholds at 1 GiB, for training speed); a server that runs for days
// on many threads (one malloc arena each, up to 8 per core) then grows with
// the fragments. At most every 10 s, after a batch, the free pages go back.
void release_free_memory() {
  static std::atomic<int64_t> last{0};
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now().time_since_epoch()).count();
  int64_t before = last.load();
  if (now - before >= 10 && last.compare_exchange_strong(before, now)) malloc_trim(0);
}

void Batcher::work() {
  using clock = std::chrono::steady_clock;
  for (;;) {
    const auto free_since = clock::now();
    std::vector<std::shared_ptr<ServeJob>> batch, expired;
    bool draining = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return !queue_.empty() || draining_; });
      if (queue_.empty()) return;  // draining, nothing left
      if (draining_ && clock::now() >= drain_deadline_) {
        // Out of drain time: what is left is answered 503.
        draining = true;
        for (auto& job : queue_) expired.push_back(job);
        queue_.clear();
      } else {
        // Wait for a full batch, or max_wait after the oldest job came in or
        // after this worker became free, whichever is later: clients whose
        // answers the last batch just sent can join the next one.
        auto inputs_waiting = [&] {
          int64_t n = 0;
          for (const auto& job : queue_) n += static_cast<int64_t>(job->inputs.size());
          return n;
        };
        const auto until = std::max(queue_.front()->enqueued, free_since) + max_wait_;
        wake_.wait_until(lock, until, [&] { return draining_ || inputs_waiting() >= max_batch_; });
        // Requests whose bodies are still being read and decoded (Arrival)
        // would otherwise wait for the whole next batch.
        wake_.wait_until(lock, until + 10 * max_wait_,
                         [&] { return draining_ || preparing_ == 0 || inputs_waiting() >= max_batch_; });
        draining = draining_;
        const ServeOp op = queue_.front()->op;
        int64_t taken = 0;
        for (auto it = queue_.begin(); it != queue_.end();) {
          const int64_t n = static_cast<int64_t>((*it)->inputs.size());
          if ((*it)->op != op || (taken > 0 && taken + n > max_batch_)) {
            ++it;
            continue;
          }
          taken += n;
          batch.push_back(*it);
          it = queue_.erase(it);
          if (taken >= max_batch_) break;
        }
      }
    }
    const auto now = clock::now();
    std::vector<std::shared_ptr<ServeJob>> runnable;
    for (auto& job : batch) {
      if (job->abandoned || now > job->deadline) expired.push_back(job);
      else runnable.push_back(job);
    }
    for (auto& job : expired) {
      job->status = 503;
      job->error = draining ? "the server is shutting down" : "the request timed out waiting for its model";
      finish(*job);
    }
    if (runnable.empty()) continue;
    std::vector<const ServeInput*> inputs;
    for (auto& job : runnable)
      for (const auto& in : job->inputs) inputs.push_back(&in);
    try {
      std::vector<ServeAnswer> answers = model_.run(runnable.front()->op, inputs);
      GRAFT_CHECK(answers.size() == inputs.size(), "graft serve: ", answers.size(), " answers for ",
                  inputs.size(), " inputs");
      metrics_.batch(name_, static_cast<int64_t>(inputs.size()));
      release_free_memory();
      size_t next = 0;
      for (auto& job : runnable) {
        for (size_t i = 0; i < job->inputs.size(); ++i) job->answers.push_back(std::move(answers[next++]));
        finish(*job);
      }
    } catch (const std::exception& e) {
      // The message stays in the server's log: it may name files.
      log_warn(str_cat("graft serve: model ", name_, ": a batch of ", inputs.size(), " failed: ", e.what()));
      for (auto& job : runnable) {
        job->status = 500;
        job->error = "internal error while running the model";
        finish(*job);
      }
    }
  }
}

}  // namespace graft::serve

