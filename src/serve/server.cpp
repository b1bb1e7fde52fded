// graft serve's HTTP side on cpp-httplib (Debian libcpp-httplib-dev, a shared
// library): routes, input parsing, limits, API key, metrics, shutdown. The
// only file that includes httplib.h.

#include "graft/serve/server.h"

// Debian built libcpp-httplib with these (its pkg-config Cflags, checked by
// CMakeLists.txt); defined here rather than for all of graft_core, whose
// precompiled header would otherwise differ from its users'.
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#ifndef CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT
#endif
#ifndef CPPHTTPLIB_BROTLI_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT
#endif
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <sys/socket.h>

#include "graft/core/error.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/data/image_header.h"
#include "graft/data/image_set.h"
#include "graft/models/fast.h"
#include "metrics.h"
#include "models.h"

namespace graft::serve {

bool equal_constant_time(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < b.size(); ++i)
    diff |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ b[i]);
  return diff == 0;
}

namespace {

using Clock = std::chrono::steady_clock;

// Inputs per request at most (each is decoded and held until answered).
constexpr size_t kMaxInputsPerRequest = 256;

// When the request handled on this thread was routed (for the latency
// histogram; httplib routes, runs and logs a request on one thread).
thread_local Clock::time_point t_request_start{};
// The request on this thread counted by its model's batcher from its headers
// on (before its body is read and decoded) until it is queued or answered.
thread_local std::unique_ptr<Batcher::Arrival> t_arrival;

// A client-facing failure: status and message (never a file path).
struct HttpFailure {
  int status;
  std::string message;
};

// A client-given name or value in a message: at most 100 bytes, control
// characters as '?'.
std::string client_text(const std::string& v) {
  std::string out = v.substr(0, 100);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return v.size() > 100 ? out + "..." : out;
}

void send_json(httplib::Response& res, int status, const nlohmann::ordered_json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, {{"error", message}});
}

std::string media_type(const httplib::Request& req) {
  std::string t = req.get_header_value("Content-Type");
  t = t.substr(0, t.find(';'));
  t.erase(t.find_last_not_of(" \t") + 1);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return t;
}

// The name of a served run: its folder's name.
std::string run_name(const std::string& run) {
  std::filesystem::path p = std::filesystem::path(run).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

cv::Mat decode_body(const std::string& bytes, const std::string& name) {
  if (bytes.empty()) throw HttpFailure{400, name + " is empty (expected the bytes of an image)"};
  try {
    return decode_image(std::vector<uint8_t>(bytes.begin(), bytes.end()), name);
  } catch (const ImageError& e) {
    throw HttpFailure{e.problem() == ImageProblem::kTooLarge ? 413 : 400, e.what()};
  }
}

// A request's inputs, named as its answers name them.
struct ParsedInputs {
  std::vector<std::string> names;
  std::vector<ServeInput> inputs;
};

ServeInput image_input(const ServedModel& model, const cv::Mat& image) {
  try {
    return model.from_image(image);
  } catch (const UsageError& e) {
    throw HttpFailure{415, e.what()};
  } catch (const Error& e) {
    throw HttpFailure{400, e.what()};
  }
}

// Image bytes, multipart images, or {"texts": [...]}, by content type.
ParsedInputs parse_inputs(const httplib::Request& req, const ServedModel& model) {
  ParsedInputs out;
  const std::string type = media_type(req);
  if (type == "multipart/form-data") {
    if (req.files.empty()) throw HttpFailure{400, "multipart body without parts (expected one image per part)"};
    if (req.files.size() > kMaxInputsPerRequest)
      throw HttpFailure{400, str_cat(req.files.size(), " parts (at most ", kMaxInputsPerRequest, " per request)")};
    for (const auto& [field, part] : req.files) {
      const std::string name = part.filename.empty() ? field : part.filename;
      out.names.push_back(name);
      out.inputs.push_back(image_input(model, decode_body(part.content, "part '" + client_text(name) + "'")));
    }
  } else if (type == "application/json") {
    nlohmann::json j;
    try {
      j = parse_json(req.body, "the request body");
    } catch (const Error& e) {
      throw HttpFailure{400, e.what()};
    }
    if (!j.is_object() || !j.contains("texts") || !j["texts"].is_array())
      throw HttpFailure{400, "the request body: expected {\"texts\": [\"...\", ...]}"};
    const nlohmann::json texts = j["texts"];
    if (texts.empty()) throw HttpFailure{400, "\"texts\" is empty"};
    if (texts.size() > kMaxInputsPerRequest)
      throw HttpFailure{400, str_cat(texts.size(), " texts (at most ", kMaxInputsPerRequest, " per request)")};
    for (size_t i = 0; i < texts.size(); ++i) {
      if (!texts[i].is_string())
        throw HttpFailure{400, str_cat("texts[", i, "] is ", texts[i].type_name(), " (expected a string)")};
      try {
        out.inputs.push_back(model.from_text(texts[i].get<std::string>()));
      } catch (const UsageError& e) {
        throw HttpFailure{model.kind() == "text" ? 400 : 415, str_cat("texts[", i, "]: ", e.what())};
      } catch (const Error& e) {
        throw HttpFailure{400, str_cat("texts[", i, "]: ", e.what())};
      }
      out.names.push_back(str_cat("texts[", i, "]"));
    }
  } else if (type == "application/octet-stream" || type.rfind("image/", 0) == 0) {
    out.names.push_back("body");
    out.inputs.push_back(image_input(model, decode_body(req.body, "the request body")));
  } else {
    throw HttpFailure{415, "Content-Type '" + client_text(type) +
                               "' (expected image/*, application/octet-stream, multipart/form-data or "
                               "application/json)"};
  }
  return out;
}

}  // namespace

struct Server::Impl {
  ServeOptions o;
  httplib::Server http;
  ServeMetrics metrics;
  std::vector<std::unique_ptr<ServedModel>> models;                 // runs, then the gallery
  std::vector<std::pair<std::string, std::unique_ptr<Batcher>>> batchers;  // by run name
  ServedModel* gallery = nullptr;
  Batcher* gallery_batcher = nullptr;
  std::atomic<bool> is_ready{false}, stopping{false};
  std::thread listener;
  std::mutex stop_mutex;
  bool stopped = false;

  explicit Impl(ServeOptions options) : o(std::move(options)) {}

  Batcher* find(const std::string& name) {
    for (auto& [n, b] : batchers)
      if (n == name) return b.get();
    return nullptr;
  }

  bool authorised(const httplib::Request& req, httplib::Response& res) {
    if (o.api_key.empty()) return true;
    const std::string want = "Bearer " + o.api_key;
    if (equal_constant_time(req.get_header_value("Authorization"), want)) return true;
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, 401, "missing or wrong API key (expected the header Authorization: Bearer KEY)");
    return false;
  }

  // Ready and not stopping; otherwise answers 503.
  bool serving(httplib::Response& res) {
    if (is_ready && !stopping) return true;
    res.set_header("Retry-After", "1");
    send_error(res, 503, stopping ? "the server is shutting down" : "the models are still loading");
    return false;
  }

  // The batcher that a POST to `path` goes to, or nullptr.
  Batcher* batcher_of(const std::string& path) {
    static const std::string models = "/v1/models/";
    if (path.rfind("/v1/face/", 0) == 0) return gallery_batcher;
    if (path.rfind(models, 0) != 0) return nullptr;
    const size_t slash = path.find('/', models.size());
    return slash == std::string::npos ? nullptr : find(path.substr(models.size(), slash - models.size()));
  }

  // Queues the inputs for `b` and waits for their answers; throws HttpFailure
  // (503 when the queue is full, the request timed out or the server stops).
  std::vector<ServeAnswer> run(Batcher& b, ServeOp op, std::vector<ServeInput> inputs) {
    auto job = std::make_shared<ServeJob>();
    job->op = op;
    job->inputs = std::move(inputs);
    const auto timeout = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout_s));
    job->deadline = Clock::now() + timeout;
    std::future<void> done = job->done.get_future();
    if (!b.submit(job, t_arrival.get()))
      throw HttpFailure{503, stopping ? "the server is shutting down" : "the queue of this model is full"};
    // The worker answers every queued job (a late one with 503); the extra
    // time covers a batch that started just before the deadline.
    if (done.wait_for(timeout + std::chrono::seconds(30)) != std::future_status::ready) {
      job->abandoned = true;
      throw HttpFailure{503, "the request timed out waiting for its model"};
    }
    if (job->status != 200) throw HttpFailure{job->status, job->error};
    return std::move(job->answers);
  }

  void model_endpoint(const httplib::Request& req, httplib::Response& res) {
    if (!authorised(req, res) || !serving(res)) return;
    const std::string name = req.matches[1];
    const ServeOp op = req.matches[2] == "embed" ? ServeOp::kEmbed : ServeOp::kPredict;
    Batcher* b = find(name);
    if (!b) {
      send_error(res, 404, "no model named '" + client_text(name) + "' (GET /v1/models lists them)");
      return;
    }
    const std::string refused = b->model().refuses(op);
    if (!refused.empty()) {
      send_error(res, 400, refused);
      return;
    }
    ParsedInputs parsed = parse_inputs(req, b->model());
    std::vector<ServeAnswer> answers = run(*b, op, std::move(parsed.inputs));
    nlohmann::ordered_json body;
    body["model"] = name;
    const char* key = op == ServeOp::kEmbed ? "embeddings" : "predictions";
    body[key] = nlohmann::ordered_json::array();
    for (size_t i = 0; i < answers.size(); ++i) {
      if (op == ServeOp::kEmbed) {
        body[key].push_back({{"input", parsed.names[i]}, {"embedding", std::move(answers[i].value)}});
      } else {
        nlohmann::ordered_json j;
        j["input"] = parsed.names[i];
        j.update(answers[i].value);
        body[key].push_back(std::move(j));
      }
    }
    send_json(res, 200, body);
  }

  // The embeddings of the gallery model for the request's images.
  std::vector<ServeAnswer> face_embeddings(const httplib::Request& req, ParsedInputs& parsed) {
    parsed = parse_inputs(req, *gallery);
    std::vector<ServeAnswer> answers = run(*gallery_batcher, ServeOp::kEmbed, std::move(parsed.inputs));
    for (size_t i = 0; i < answers.size(); ++i)
      if (!answers[i].error.empty()) throw HttpFailure{422, parsed.names[i] + ": " + answers[i].error};
    return answers;
  }

  bool face_ready(const httplib::Request& req, httplib::Response& res) {
    if (!authorised(req, res) || !serving(res)) return false;
    if (!gallery) {
      send_error(res, 404, "no face gallery is served (start graft serve with --gallery)");
      return false;
    }
    return true;
  }

  void identify(const httplib::Request& req, httplib::Response& res) {
    if (!face_ready(req, res)) return;
    const int top_k = std::max(1, std::min(o.top_k, 100));
    ParsedInputs parsed;
    const std::vector<ServeAnswer> answers = face_embeddings(req, parsed);
    nlohmann::ordered_json body;
    body["faces"] = nlohmann::ordered_json::array();
    for (size_t i = 0; i < answers.size(); ++i) {
      nlohmann::ordered_json j;
      j["input"] = parsed.names[i];
      j["box"] = answers[i].value["box"];
      j.update(identify_json(*gallery, answers[i].tensor, top_k));
      body["faces"].push_back(std::move(j));
    }
    send_json(res, 200, body);
  }

  void verify(const httplib::Request& req, httplib::Response& res) {
    if (!face_ready(req, res)) return;
    if (media_type(req) != "multipart/form-data" || req.files.size() != 2)
      throw HttpFailure{400, "verify: expected multipart/form-data with two images"};
    ParsedInputs parsed;
    const std::vector<ServeAnswer> answers = face_embeddings(req, parsed);
    nlohmann::ordered_json body;
    body["a"] = parsed.names[0];
    body["b"] = parsed.names[1];
    body.update(verify_json(*gallery, answers[0].tensor, answers[1].tensor));
    send_json(res, 200, body);
  }

  nlohmann::ordered_json models_json() {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (auto& [name, b] : batchers) {
      nlohmann::ordered_json j;
      j["name"] = name;
      j.update(b->model().describe());
      list.push_back(std::move(j));
    }
    nlohmann::ordered_json body;
    body["models"] = std::move(list);
    if (gallery) body["face"] = gallery->describe();
    return body;
  }

  std::vector<std::pair<std::string, size_t>> depths() {
    std::vector<std::pair<std::string, size_t>> d;
    if (!is_ready) return d;
    for (auto& [name, b] : batchers) d.push_back({name, b->depth()});
    if (gallery_batcher) d.push_back({"face", gallery_batcher->depth()});
    return d;
  }

  // A handler whose HttpFailure and unexpected exceptions become JSON errors.
  template <typename F>
  httplib::Server::Handler guarded(F f) {
    return [this, f](const httplib::Request& req, httplib::Response& res) {
      try {
        (this->*f)(req, res);
      } catch (const HttpFailure& e) {
        if (e.status == 503) res.set_header("Retry-After", "1");
        send_error(res, e.status, e.message);
      }
    };
  }

  void routes() {
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response&) {
      t_request_start = Clock::now();
      t_arrival.reset();
      if (Batcher* b = is_ready && req.method == "POST" ? batcher_of(req.path) : nullptr)
        t_arrival = std::make_unique<Batcher::Arrival>(*b);
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_logger([this](const httplib::Request&, const httplib::Response& res) {
      const double seconds = t_request_start == Clock::time_point{}
                                 ? -1
                                 : std::chrono::duration<double>(Clock::now() - t_request_start).count();
      t_request_start = {};
      t_arrival.reset();
      metrics.request(res.status, seconds);
    });
    // Statuses httplib sets itself (404 route, 413 body, 400 bad request)
    // get a JSON body too.
    http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string message = str_cat("HTTP status ", res.status);
      if (res.status == 400) message = "a malformed HTTP request";
      if (res.status == 404) message = "no such endpoint";
      if (res.status == 405) message = "method not allowed on this endpoint";
      if (res.status == 413) message = "the request body is over the limit (--max-body-mb)";
      if (res.status == 414) message = "the request line is too long";
      send_error(res, res.status, message);
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        log_warn(str_cat("graft serve: a request failed: ", e.what()));
      } catch (...) {
        log_warn("graft serve: a request failed");
      }
      send_error(res, 500, "internal error");
    });
    http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, {{"status", "ok"}});
    });
    http.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
      if (is_ready && !stopping) send_json(res, 200, {{"status", "ready"}});
      else send_json(res, 503, {{"status", stopping ? "stopping" : "loading"}});
    });
    http.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorised(req, res)) return;
      res.set_content(metrics.text(depths()), "text/plain; version=0.0.4");
    });
    http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorised(req, res) || !serving(res)) return;
      send_json(res, 200, models_json());
    });
    http.Post(R"(/v1/models/([^/]+)/(predict|embed))", guarded(&Impl::model_endpoint));
    http.Post("/v1/face/identify", guarded(&Impl::identify));
    http.Post("/v1/face/verify", guarded(&Impl::verify));
  }

  void load() {
    for (const std::string& run : o.runs) {
      const std::string name = run_name(run);
      GRAFT_CHECK_USAGE(!find(name), "graft serve: two runs named '", name,
                        "' (each run is served under its folder's name)");
      models.push_back(load_served_run(run, o));
      batchers.emplace_back(name, std::make_unique<Batcher>(name, *models.back(), o, metrics));
    }
    if (!o.gallery.empty()) {
      models.push_back(load_served_gallery(o));
      gallery = models.back().get();
      batchers_face = std::make_unique<Batcher>("face", *gallery, o, metrics);
      gallery_batcher = batchers_face.get();
    }
    for (auto& m : models) m->warm_up();
  }
  std::unique_ptr<Batcher> batchers_face;
};

Server::Server(ServeOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  const ServeOptions& o = impl_->o;
  GRAFT_CHECK_USAGE(!o.runs.empty() || !o.gallery.empty(),
                    "graft serve: nothing to serve (expected run folders, or --gallery)");
  GRAFT_CHECK_USAGE(o.face_embedder.empty() || !o.gallery.empty(), "--embedder ", o.face_embedder,
                    ": the embedder of --gallery, and no gallery is served (expected --gallery GALLERY)");
  GRAFT_CHECK_USAGE(o.port >= 0 && o.port <= 65535, "--port: ", o.port, " (expected 0 to 65535)");
  GRAFT_CHECK_USAGE(o.max_batch >= 1 && o.max_batch <= 1024, "--max-batch: ", o.max_batch, " (expected 1 to 1024)");
  GRAFT_CHECK_USAGE(o.max_wait_ms >= 0 && o.max_wait_ms <= 10000, "--max-wait-ms: ", o.max_wait_ms,
                    " (expected 0 to 10000)");
  GRAFT_CHECK_USAGE(o.max_queue >= 1, "--max-queue: ", o.max_queue, " (expected at least 1)");
  GRAFT_CHECK_USAGE(o.max_body_mb > 0 && o.max_body_mb <= 4096, "--max-body-mb: ", o.max_body_mb,
                    " (expected more than 0, at most 4096)");
  GRAFT_CHECK_USAGE(o.timeout_s > 0, "--timeout-s: ", o.timeout_s, " (expected more than 0)");
  GRAFT_CHECK_USAGE(o.drain_s >= 0, "--drain-s: ", o.drain_s, " (expected 0 or more)");
  GRAFT_CHECK_USAGE(o.http_threads >= 1 && o.http_threads <= 4096, "--http-threads: ", o.http_threads,
                    " (expected 1 to 4096)");
  GRAFT_CHECK_USAGE(o.top_k >= 1, "--top-k: ", o.top_k, " (expected at least 1)");
  parse_precision(o.precision);
}

Server::~Server() { stop(); }

int Server::start() {
  Impl& s = *impl_;
  s.routes();
  const size_t threads = static_cast<size_t>(s.o.http_threads);
  // Without TCP_NODELAY an answer's last segment waits for the client's
  // delayed ACK: 40 ms more per request on Linux (bench/RESULTS.md, "Serve").
  s.http.set_tcp_nodelay(true);
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.http.set_payload_max_length(static_cast<size_t>(s.o.max_body_mb * 1024 * 1024));
  // httplib listens with a backlog of 5 (compiled into the library): a burst
  // of connections overflowed it, and the handshakes it dropped ended in
  // resets that clients saw as read errors (bench/RESULTS.md, "Serve", 128
  // clients). The listening socket is caught here and listen() is called
  // again after binding, with the system's limit.
  int listen_fd = -1;
  s.http.set_socket_options([&listen_fd](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd = static_cast<int>(sock);
  });
  s.http.set_keep_alive_timeout(2);
  s.http.set_keep_alive_max_count(100);  // httplib's 5 makes busy clients reconnect every 5 requests
  // A client that stops sending holds an HTTP thread this long at most.
  s.http.set_read_timeout(std::max<time_t>(1, static_cast<time_t>(std::min(s.o.timeout_s, 10.0))), 0);
  const int port = s.o.port == 0 ? s.http.bind_to_any_port(s.o.host) : s.http.bind_to_port(s.o.host, s.o.port)
                                                                            ? s.o.port
                                                                            : -1;
  if (port > 0 && listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);
  GRAFT_CHECK(port > 0, "graft serve: cannot listen on ", s.o.host, ":", s.o.port,
              " (in use, or not an address of this machine)");
  s.listener = std::thread([&s] { s.http.listen_after_bind(); });
  while (!s.http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  try {
    s.load();
  } catch (...) {
    stop();
    throw;
  }
  s.is_ready = true;
  return port;
}

void Server::stop() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.stop_mutex);
  if (s.stopped) return;
  s.stopped = true;
  s.stopping = true;
  s.is_ready = false;
  // No new connections; requests already read are answered: the batchers
  // run their queues (until drain_s), the HTTP threads finish, then join.
  s.http.stop();
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(s.o.drain_s));
  for (auto& [name, b] : s.batchers) b->drain(deadline);
  if (s.gallery_batcher) s.gallery_batcher->drain(deadline);
  if (s.listener.joinable()) s.listener.join();
}

bool Server::ready() const { return impl_->is_ready && !impl_->stopping; }

std::string Server::metrics() const { return impl_->metrics.text(impl_->depths()); }

}  // namespace graft::serve
