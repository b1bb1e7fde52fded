#pragma once
/// graft serve as a library: trained runs behind HTTP/1.1 (cpp-httplib), with
/// dynamic micro-batching per model. A C++ program embeds it as
///
///   graft::serve::ServeOptions o;
///   o.runs = {"runs/flowers"};
///   graft::serve::Server server(o);
///   int port = server.start();   // binds, loads and warms every model
///   ...                          // POST /v1/models/flowers/predict
///   server.stop();               // stop accepting, drain, join
///
/// Endpoints (JSON out; errors are {"error": "..."} and never name a file):
///   POST /v1/models/{name}/predict  image bytes, multipart images, or
///                                   {"texts": [...]} for a text run
///   POST /v1/models/{name}/embed    the same inputs; the pooled features
///   POST /v1/face/identify, /v1/face/verify  with ServeOptions::gallery
///   GET  /v1/models, /healthz, /readyz, /metrics (Prometheus text)
/// Requests to one model wait in a bounded queue (full: 503 + Retry-After)
/// and run together, up to max_batch inputs or max_wait_ms after the first
/// (or after the worker became free; requests still being read then join,
/// for at most 10 × max_wait_ms more), on the model's worker thread (the HTTP threads decode and tokenise, never
/// run a model). The answers are those of graft predict: the same loading
/// and scoring code (eval/image_predictor.h, text/text_eval's model).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graft/eval/calibration.h"

namespace graft::serve {

struct ServeOptions {
  /// Run folders of graft train (image or text runs); each is served under
  /// its folder name.
  std::vector<std::string> runs;
  /// A face gallery (graft face enroll) for /v1/face/identify and verify.
  std::string gallery;
  /// face-api's models for the gallery ("" = the default folder).
  std::string face_models;
  /// The gallery's embedder as graft face's --embedder takes it: a name
  /// (dlib, mobilefacenet) or a face run folder, whose fine-tuned embedder a
  /// gallery enrolled with `--embedder RUN` needs. "" = the gallery's own
  /// pretrained embedder.
  std::string face_embedder;
  std::string host = "127.0.0.1";
  int port = 8080;  ///< 0: any free port (start() returns it)
  int max_batch = 32;
  int max_wait_ms = 5;
  int max_queue = 256;          ///< requests waiting per model; more: 503
  double max_body_mb = 16;      ///< larger bodies: 413
  double timeout_s = 30;        ///< a request not run by then: 503
  double drain_s = 10;          ///< stop(): time left to queued requests
  int http_threads = 128;       ///< connections served at once (keep-alive holds one)
  std::string precision = "fp32";
  int64_t calibration = 256;     ///< --precision int8: calibration images (graft predict's)
  std::string calibration_data;  ///< --precision int8: their folder ("" = the run's training data)
  int top_k = 5;
  RejectOptions reject;         ///< "unknown" below a confidence, as graft predict
  std::string api_key;          ///< not empty: every /v1 request needs "Authorization: Bearer KEY"
};

class Server {
 public:
  /// Checks the options (UsageError naming the flag); loads nothing yet.
  explicit Server(ServeOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds (graft::Error naming host and port when it cannot), answers
  /// /healthz at once and /readyz with 503 while it loads and warms every
  /// model, then returns the bound port with the server ready. A run that
  /// cannot be loaded stops the server and throws.
  int start();
  /// Stops accepting connections, answers what is queued (within drain_s;
  /// what is left then gets 503) and every request in flight, then joins.
  /// Idempotent; safe from any thread but a request's.
  void stop();
  /// True from the end of start() until stop().
  bool ready() const;
  /// The /metrics text.
  std::string metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// a == b in time that depends only on b's length (API keys).
bool equal_constant_time(const std::string& a, const std::string& b);

}  // namespace graft::serve
