#pragma once
// What graft serve runs: a served model per run (image or text, loaded
// through the same code as graft predict) or the face gallery, and the
// per-model queue that batches requests onto one worker thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <torch/types.h>

#include "graft/serve/server.h"
#include "graft/text/text_model.h"
#include "metrics.h"

namespace graft::serve {

enum class ServeOp { kPredict, kEmbed };

/// One input, prepared on the HTTP thread: an image run's input tensor, a
/// text run's tokens, or the face gallery's decoded image.
struct ServeInput {
  torch::Tensor image;
  EncodedText text;
  std::string text_line;  // the text as sent (answers echo it)
  cv::Mat face;
};

/// The answer for one input: `error` (a message for the client, naming no
/// file), or `value` (JSON) and, for embeddings, `tensor`.
struct ServeAnswer {
  std::string error;
  nlohmann::ordered_json value;
  torch::Tensor tensor;
};

class ServedModel {
 public:
  virtual ~ServedModel() = default;
  /// "image", "text" or "face".
  virtual std::string kind() const = 0;
  /// GET /v1/models' entry (without the name).
  virtual nlohmann::ordered_json describe() const = 0;
  /// Inputs for this model from a decoded image / a text; graft::UsageError
  /// (a 4xx) when the model takes the other kind or the input is unusable.
  virtual ServeInput from_image(const cv::Mat& image) const;
  virtual ServeInput from_text(const std::string& text) const;
  /// "" when `op` is served, else why not (a 4xx).
  virtual std::string refuses(ServeOp op) const = 0;
  /// One answer per input, in one batch where the model allows.
  virtual std::vector<ServeAnswer> run(ServeOp op, const std::vector<const ServeInput*>& inputs) = 0;
  /// An input to warm the model up with (one forward pass before ready).
  virtual ServeInput warm_input() const = 0;
  /// Runs the model before ready (allocations, kernels, bf16 paths): one
  /// pass of warm_input(); an image run warms and times each pass size.
  virtual void warm_up();
};

/// How an image run splits a batch of n inputs into forward passes of a few
/// fixed sizes (the powers of two below max_batch, and max_batch), the last
/// pass of each size padded with zero images. The network then sees a
/// handful of shapes (oneDNN keeps state per input shape: bench/RESULTS.md,
/// "Serve soak"), and no more padding is computed than pays: the plan is the
/// one whose passes take the least time by the fastest time seen for each
/// size. Before every size is timed, the batch is padded to the next size.
/// Used by one thread.
class PassPlanner {
 public:
  explicit PassPlanner(int64_t max_batch);
  const std::vector<int64_t>& sizes() const { return sizes_; }
  /// A pass of `size` (one of sizes()) took `seconds`.
  void observe(int64_t size, double seconds);
  /// The pass sizes for n inputs, largest first.
  std::vector<int64_t> plan(int64_t n) const;

 private:
  std::vector<int64_t> sizes_;
  std::vector<double> seconds_;  // per size, the fastest seen; < 0 untimed
};

/// An image or text run of graft train, as graft predict loads it
/// (task_of_run's row: graft::Error for a run of a task not served).
std::unique_ptr<ServedModel> load_served_run(const std::string& run, const ServeOptions& o);

/// The face gallery of ServeOptions::gallery with face-api's pipeline; its
/// op kEmbed answers {"box": [x, y, w, h]} with the largest face's
/// embedding [128] as `tensor`, or "no face found".
class ServedGallery;
std::unique_ptr<ServedModel> load_served_gallery(const ServeOptions& o);
/// The gallery's identities nearest to a face embedding, as graft face
/// identify --json prints them (without input and face), and verify's answer.
nlohmann::ordered_json identify_json(const ServedModel& gallery, const torch::Tensor& embedding, int top_k);
nlohmann::ordered_json verify_json(const ServedModel& gallery, const torch::Tensor& a, const torch::Tensor& b);

/// A request waiting for its model.
struct ServeJob {
  ServeOp op = ServeOp::kPredict;
  std::vector<ServeInput> inputs;
  std::chrono::steady_clock::time_point enqueued, deadline;
  std::promise<void> done;
  std::atomic<bool> abandoned{false};  // the HTTP thread gave up waiting
  // Set before `done`:
  int status = 200;  // 200, or 503 (timed out, shutting down), or 500
  std::string error;
  std::vector<ServeAnswer> answers;
};

/// One model's bounded queue and its worker thread. Jobs with the same op are
/// run together: up to max_batch inputs, once that many wait or max_wait_ms
/// after the oldest arrived or the worker became free, whichever is later,
/// and requests still being decoded then join (Arrival). A single job over
/// max_batch runs alone.
class Batcher {
 public:
  Batcher(std::string name, ServedModel& model, const ServeOptions& o, ServeMetrics& metrics);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;
  /// A request an HTTP thread is preparing for this model (reading and
  /// decoding its inputs), from construction to submit() or destruction. A
  /// batch due to close waits for such requests, at most 10 × max_wait_ms
  /// more: they would otherwise wait for the whole next batch.
  class Arrival {
   public:
    explicit Arrival(Batcher& b);
    ~Arrival();
    Arrival(const Arrival&) = delete;
    Arrival& operator=(const Arrival&) = delete;

   private:
    friend class Batcher;
    Batcher* batcher_;
  };
  /// Queues the job (and ends its arrival); false when the queue holds
  /// max_queue jobs or the batcher is draining (answer 503).
  bool submit(const std::shared_ptr<ServeJob>& job, Arrival* arrival = nullptr);
  size_t depth() const;
  /// Takes no more jobs, runs what is queued until `deadline`, answers the
  /// rest 503, and joins the worker.
  void drain(std::chrono::steady_clock::time_point deadline);
  const std::string& name() const { return name_; }
  ServedModel& model() { return model_; }

 private:
  void work();
  void finish(ServeJob& job);
  std::string name_;
  ServedModel& model_;
  int64_t max_batch_;
  std::chrono::milliseconds max_wait_;
  size_t max_queue_;
  ServeMetrics& metrics_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<ServeJob>> queue_;
  int64_t preparing_ = 0;  // live Arrivals
  bool draining_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;
  std::thread worker_;
};

}  // namespace graft::serve
