// graft serve: image and text runs (and a face gallery) behind HTTP, with
// micro-batching; the server itself is graft::serve::Server (serve/server.h).

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>

#include "graft/core/error.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/serve/server.h"
#include "verbs.h"

namespace graft::cli {

namespace {

struct ServeVerbOptions {
  serve::ServeOptions server;
  int threads = 0;
};

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

int run_serve(ServeVerbOptions o) {
  set_threads(o.threads);
  if (o.server.api_key.empty())
    if (const char* key = std::getenv("GRAFT_API_KEY")) o.server.api_key = key;
  if (!is_loopback(o.server.host))
    log_warn(str_cat("graft serve: listening on ", o.server.host, ", reachable from other machines",
                     o.server.api_key.empty() ? ", without an API key (--api-key or GRAFT_API_KEY)" : ""));
  serve::Server server(o.server);  // checks the options first (exit 2)
  install_stop_handlers();
  const int port = server.start();
  std::cout << nlohmann::ordered_json{{"listening", str_cat("http://", o.server.host, ":", port)},
                                      {"port", port}}
                   .dump()
            << std::endl;
  while (!stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  log_info(str_cat("graft serve: stopping (draining for at most ", o.server.drain_s, " s)"));
  server.stop();
  log_info("graft serve: stopped");
  clear_stop_request();
  return 0;
}

}  // namespace

void add_serve(CLI::App& app, Action& run) {
  auto o = std::make_shared<ServeVerbOptions>();
  serve::ServeOptions& s = o->server;
  CLI::App* sub = add_command(app, run, "serve",
                              "Serve runs over HTTP (JSON) with dynamic micro-batching: predict, embed, face "
                              "identify/verify, /metrics",
                              o, [](const ServeVerbOptions& v) { return run_serve(v); });
  sub->add_option("runs", s.runs, "Run folders of graft train (image or text), each served under its folder name");
  sub->add_option("--host", s.host, "Address to listen on (anything but loopback is warned about)")
      ->capture_default_str();
  sub->add_option("--port", s.port, "Port (0: any free port, printed)")->capture_default_str();
  sub->add_option("--gallery", s.gallery, "A face gallery (graft face enroll) for /v1/face/identify and verify");
  sub->add_option("--face-models", s.face_models, "face-api's model folder for --gallery (default: the usual one)");
  sub->add_option("--embedder", s.face_embedder,
                  "--gallery's embedder, as graft face takes it: dlib, mobilefacenet, or a face run folder (a "
                  "gallery enrolled with a fine-tuned run's embedder needs that run; default: the gallery's own)");
  sub->add_option("--max-batch", s.max_batch, "Inputs per forward pass at most")->capture_default_str();
  sub->add_option("--max-wait-ms", s.max_wait_ms, "Wait this long after a request (or after the model's worker is free) for others to batch with it")
      ->capture_default_str();
  sub->add_option("--max-queue", s.max_queue, "Requests waiting per model; more get 503 with Retry-After")
      ->capture_default_str();
  sub->add_option("--max-body-mb", s.max_body_mb, "Largest request body (MiB); larger: 413")->capture_default_str();
  sub->add_option("--timeout-s", s.timeout_s, "A request not run within this many seconds gets 503")
      ->capture_default_str();
  sub->add_option("--drain-s", s.drain_s, "On SIGTERM/SIGINT: time left to queued requests")->capture_default_str();
  sub->add_option("--http-threads", s.http_threads,
                  "Connections served at once (a keep-alive connection holds one)")
      ->capture_default_str();
  sub->add_option("--top-k", s.top_k, "Labels per input")->capture_default_str();
  sub->add_option("--api-key", s.api_key,
                  "Require Authorization: Bearer KEY on /v1 and /metrics (or set GRAFT_API_KEY)");
  add_threads(*sub, o->threads);
  add_max_pixels(*sub);
  add_precision(*sub, s.precision);
  add_int8_calibration(*sub, s.calibration, s.calibration_data);
  add_reject(*sub, s.reject);
}

}  // namespace graft::cli
