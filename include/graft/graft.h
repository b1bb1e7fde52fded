#pragma once
/// graft's C++ API: everything a program needs to use a run that graft
/// trained, or to train one, in one header. It is the only header that
/// `cmake --install` installs; the rest of include/graft/ is graft's own
/// (graft::detail in spirit) and may change in any release.
///
///   #include <graft/graft.h>
///
///   graft::Model model = graft::Model::load("runs/flowers");
///   for (const graft::Prediction& p : model.predict_files({"rose.jpg"}))
///     std::cout << p.top[0].label << " " << p.top[0].probability << "\n";
///
/// In CMake: find_package(graft 0.1 REQUIRED) and
/// target_link_libraries(app PRIVATE graft::graft). The header needs
/// OpenCV's core module (cv::Mat) and nothing else: LibTorch stays inside
/// libgraft.so.
///
/// Errors are exceptions derived from std::runtime_error (graft::Error, and
/// graft::UsageError for a bad setting), whose message names the file or
/// setting, the value seen and what was expected.
///
/// The library changes no process-wide state unless asked: the thread
/// count, the allocator tuning and the SIGINT/SIGTERM handlers of the
/// command line are the explicit calls set_threads(), tune_allocator() and
/// install_stop_handlers(). Model and the free functions may be used from
/// several threads, one call per Model at a time.

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "graft/core/error.h"

/// The version of this header; graft::version() is the library's.
#define GRAFT_API_VERSION_MAJOR 0
#define GRAFT_API_VERSION_MINOR 1
#define GRAFT_API_VERSION_PATCH 0

namespace graft {

/// The library's version, "MAJOR.MINOR.PATCH".
std::string version();
/// The library's major version. A program built against another major
/// version's header is refused by check_version(): the API may change
/// between major versions.
int version_major();
/// Throws graft::Error when the linked library's major version differs from
/// the header's (called by Model::load and fit()).
inline void check_version() {
  if (version_major() != GRAFT_API_VERSION_MAJOR)
    throw Error("graft: this program was built with graft " + std::to_string(GRAFT_API_VERSION_MAJOR) +
                ".x headers but runs with libgraft " + version() + " (expected the same major version)");
}

/// Sets LibTorch's intra-op thread count for the whole process; n <= 0 means
/// every core (LibTorch would otherwise start with half of them). Returns the
/// count set.
int set_threads(int n);
/// Raises glibc's mmap and trim thresholds so that large activations are
/// reused rather than mapped and faulted in on every operation (4-7x faster
/// CNN inference measured here). Process-wide; call it once at start-up.
void tune_allocator();
/// SIGINT and SIGTERM then only request a stop: fit() checkpoints at the end
/// of its step and returns (FitResult::interrupted). Process-wide.
void install_stop_handlers();

/// One label and its probability (the run's calibrated softmax).
struct Label {
  std::string label;
  double probability = 0;
};

/// The answer for one input.
struct Prediction {
  /// The file, or "#N" for the N-th image or text of a call (0-based).
  std::string input;
  /// The best labels, most probable first.
  std::vector<Label> top;
  /// Below the run's reject threshold (`graft train --reject-below` or
  /// `--reject-at-frr`, or Model::set_reject_below): the answer is
  /// "unknown"; `top` still says what the model would have said.
  bool unknown = false;
  /// Not empty when the input could not be read: the reason, naming it
  /// (then `top` is empty). The other inputs of the call are answered.
  std::string error;
  /// top[0].label, or "unknown", or "" after an error.
  std::string answer() const;
};

/// A trained run (a folder written by `graft train` or fit()): an image
/// classifier (any backbone) or a text classifier (BERT or TF-IDF), loaded
/// once and ready to answer. Copies share the loaded network.
class Model {
 public:
  /// Reads the run folder. Throws graft::Error naming the file when it is
  /// not a run graft can load (a face run: use FaceRecognizer).
  static Model load(const std::string& run);

  /// "image" or "text".
  const std::string& task() const;
  /// The class names, in the order of the model's outputs.
  const std::vector<std::string>& classes() const;
  /// Image runs: the square input side in pixels, the channels, and the
  /// normalisation (mean, std per channel) the model was trained with.
  int input_size() const;
  int input_channels() const;
  std::vector<float> mean() const;
  std::vector<float> stddev() const;
  /// The length of embed()'s rows.
  int64_t embedding_size() const;

  /// Answers "unknown" below this calibrated probability (0 <= p < 1; 0:
  /// never), in place of the run's own threshold.
  void set_reject_below(double p);

  /// Image runs: the `top_k` best labels of each image file, in order. An
  /// unreadable file gets its Prediction::error; the others are answered.
  std::vector<Prediction> predict_files(const std::vector<std::string>& paths, int top_k = 5) const;
  /// Image runs: the same for decoded images, 8-bit BGR (as cv::imread
  /// gives them), BGRA or grey. An empty or non-8-bit image is an error of
  /// its Prediction.
  std::vector<Prediction> predict(const std::vector<cv::Mat>& images, int top_k = 5) const;
  /// Text runs: the same for texts (a model of text pairs reads "A\tB").
  std::vector<Prediction> predict_texts(const std::vector<std::string>& texts, int top_k = 5) const;

  /// What the head reads: the pooled features of each image (image runs)
  /// or BERT's pooled output of each text (BERT text runs), one row each.
  /// Throws graft::Error naming the image that cannot be used.
  std::vector<std::vector<float>> embed(const std::vector<cv::Mat>& images) const;
  std::vector<std::vector<float>> embed_texts(const std::vector<std::string>& texts) const;

  struct Impl;

 private:
  explicit Model(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

/// One epoch of fit(), as metrics.csv records it (NaN: not measured).
struct EpochProgress {
  int64_t epoch = 0, epochs = 0;  // 1-based epoch of `epochs`
  double train_loss = 0, train_accuracy = 0, val_loss = 0, val_accuracy = 0;
  double learning_rate = 0, seconds = 0, items_per_second = 0;
};

/// Lets another thread stop fit() at its next optimiser step. The run is
/// checkpointed there; fit() again with `resume` goes on from it.
class StopToken {
 public:
  StopToken();
  void request_stop() const;
  bool stop_requested() const;

 private:
  std::shared_ptr<void> flag_;
};

/// What fit() trains. The common settings are fields; any other option of
/// `graft train` is set by its config.json key in `options` (`graft train
/// --help`, and config.json of any run, list them), e.g.
/// {"augment", "\"light\""} or {"epochs", "3"}: the value is JSON.
struct FitOptions {
  std::string task = "image";     // image | text | face
  std::string data;               // training data (a folder of class folders, an IDX file, a text table)
  std::string out;                // the run folder to write
  std::string backbone = "resnet18";
  std::string weights = "none";   // source weights: a file, a run folder, or none
  std::string strategy = "linear";  // linear | partial:N | full
  int64_t epochs = 10;
  int64_t batch_size = 32;
  double lr = 0.01;
  double val_split = 0.1;
  std::string test;               // test data, evaluated at the end
  uint64_t seed = 0;
  bool overwrite = false;         // replace graft's files in an existing `out`
  bool resume = false;            // go on from `out`'s checkpoint
  /// Threads while fit() runs: -1 keeps the process's current count, 0
  /// means every core; the count is restored afterwards either way.
  int threads = -1;
  bool quiet = true;              // no progress lines on stderr
  std::vector<std::pair<std::string, std::string>> options;  // key, JSON value
};

struct FitResult {
  std::string out;
  int64_t epochs_run = 0, best_epoch = 0;
  double best_val_accuracy = 0;
  bool has_test = false;
  double test_accuracy = 0;
  bool interrupted = false;  // stopped by a StopToken or a signal
  double seconds = 0;
};

/// Trains a run as `graft train` would and writes its folder. `on_epoch` is
/// called after every epoch, on the calling thread. The process's thread
/// count and LibTorch's global random state are restored on return.
/// Throws graft::UsageError naming the option on a bad setting, before any
/// long work where possible.
FitResult fit(const FitOptions& options, const std::function<void(const EpochProgress&)>& on_epoch = {},
              const StopToken& stop = StopToken());

/// A run evaluated on labelled data (image: a folder of class folders or an
/// IDX file; text: a table in the run's format).
struct Evaluation {
  int64_t count = 0;      // inputs evaluated
  double accuracy = 0;    // top-1
  double loss = 0;        // calibrated negative log-likelihood
  std::vector<std::string> classes;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};
Evaluation evaluate(const std::string& run, const std::string& data);

/// Face recognition with face-api's networks (the folder of its TF.js
/// models: scripts/face_models.sh fetches them): find the largest face,
/// align it, embed it (128-d, L2-normalised) and compare by Euclidean
/// distance, as `graft face` does.
struct FaceMatch {
  std::string identity;   // "unknown" past the threshold
  double distance = 0;    // to the nearest identity's mean embedding
  std::vector<std::pair<std::string, double>> nearest;  // identity, distance; nearest first
};
struct FaceVerification {
  bool same = false;
  double distance = 0, threshold = 0;
};

struct FaceSettings {
  /// face-api's models ("" = graft's default folder, where
  /// scripts/face_models.sh puts them).
  std::string models_dir;
  /// false: every image is one face, already cropped (as `graft face
  /// --no-detect`); true: the largest face that the detector finds.
  bool detect = true;
  /// A `graft train --task face` run whose embedder to use ("" = face-api's).
  std::string embedder_run;
};

class FaceRecognizer {
 public:
  /// Loads the networks. Throws graft::Error naming what is missing.
  explicit FaceRecognizer(const FaceSettings& settings = FaceSettings());
  ~FaceRecognizer();
  FaceRecognizer(FaceRecognizer&&) noexcept;
  FaceRecognizer& operator=(FaceRecognizer&&) noexcept;

  /// The embedding of the largest face in an 8-bit BGR image. Throws
  /// graft::Error when no face is found.
  std::vector<float> embed(const cv::Mat& image) const;
  /// Adds (or replaces) identities from `folder` (one sub-folder of images
  /// per identity) in the gallery file `gallery` (created, or rewritten
  /// atomically), as `graft face enroll` does. Returns the identities enrolled.
  int enroll(const std::string& gallery, const std::string& folder) const;
  /// The nearest identities of `gallery` to the largest face in `image`;
  /// threshold < 0: the gallery's own.
  FaceMatch identify(const std::string& gallery, const cv::Mat& image, int top_k = 3,
                     double threshold = -1) const;
  /// Whether two images show the same person; threshold < 0: graft's
  /// default (0.38, graft face verify's).
  FaceVerification verify(const cv::Mat& a, const cv::Mat& b, double threshold = -1) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace graft
