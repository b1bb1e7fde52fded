// graft serve on loopback: answers against graft predict's code path (image,
// text, face gallery), batching invisible under 64 concurrent requests, the
// bad requests of the issue (4xx with a JSON error, the server keeps
// serving), a bounded queue, and SIGTERM with requests in flight.

#include "graft/serve/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../../src/serve/models.h"
#include "graft/core/files.h"
#include "graft/eval/image_predictor.h"
#include "graft/eval/run_eval.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/text/text_eval.h"
#include "graft/train/task.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------- client

struct Reply {
  int status = 0;
  std::string headers, body;
  json j() const { return json::parse(body); }
};

int connect_loopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& s) {
  size_t sent = 0;
  while (sent < s.size()) {
    const ssize_t n = send(fd, s.data() + sent, s.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// One HTTP/1.1 request with Connection: close; the reply read to EOF.
Reply http(int port, const std::string& method, const std::string& path, const std::string& body = "",
           const std::string& type = "", const std::vector<std::string>& headers = {}) {
  Reply r;
  const int fd = connect_loopback(port);
  if (fd < 0) return r;
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!type.empty()) req += "Content-Type: " + type + "\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  send_all(fd, req);
  std::string in;
  char buf[65536];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) in.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t end = in.find("\r\n\r\n");
  if (in.size() < 12 || end == std::string::npos) return r;
  r.status = std::stoi(in.substr(9, 3));
  r.headers = in.substr(0, end);
  r.body = in.substr(end + 4);
  return r;
}

std::string multipart(const std::vector<std::pair<std::string, std::string>>& parts, const std::string& boundary) {
  std::string b;
  for (const auto& [name, bytes] : parts)
    b += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"; filename=\"" + name +
         "\"\r\nContent-Type: application/octet-stream\r\n\r\n" + bytes + "\r\n";
  return b + "--" + boundary + "--\r\n";
}

// ---------------------------------------------------------------- runs

// An image run of resnet20's fixture weights, named flowers.
std::string serve_image_run(const test::TempDir& dir) { return test::resnet20_fixture_run(dir.path(), "flowers"); }

std::vector<std::string> serve_images(const test::TempDir& dir) {
  test::write_synthetic_image_folder(dir / "images", 3, 4, 32, 3, 7);
  std::vector<std::string> out;
  for (const auto& f : fs::recursive_directory_iterator(dir / "images"))
    if (f.is_regular_file()) out.push_back(f.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The same answer: labels in order, probabilities within 1e-6.
void expect_same_top(const json& got, const InputPrediction& want) {
  ASSERT_TRUE(want.error.empty()) << want.error;
  ASSERT_EQ(got["top"].size(), want.top.size()) << got.dump();
  EXPECT_EQ(got["unknown"].get<bool>(), want.unknown);
  for (size_t k = 0; k < want.top.size(); ++k) {
    EXPECT_EQ(got["top"][k]["label"], want.top[k].label);
    EXPECT_NEAR(got["top"][k]["probability"].get<double>(), want.top[k].probability, 1e-6);
  }
}

void expect_same_answer(const json& a, const json& b) {
  ASSERT_EQ(a["top"].size(), b["top"].size());
  for (size_t k = 0; k < a["top"].size(); ++k) {
    EXPECT_EQ(a["top"][k]["label"], b["top"][k]["label"]);
    EXPECT_NEAR(a["top"][k]["probability"].get<double>(), b["top"][k]["probability"].get<double>(), 1e-6);
  }
}

// The largest batch the metrics text shows for `model` (0 when none).
int64_t largest_batch_in(const std::string& metrics, const std::string& model) {
  // graft_batch_size_bucket{model="M",le="B"} N: the smallest B holding all.
  const std::regex line("graft_batch_size_bucket\\{model=\"" + model + "\",le=\"([^\"]+)\"\\} ([0-9]+)");
  std::vector<std::pair<std::string, int64_t>> buckets;
  for (std::sregex_iterator it(metrics.begin(), metrics.end(), line), end; it != end; ++it)
    buckets.push_back({(*it)[1], std::stoll((*it)[2])});
  if (buckets.empty()) return 0;
  const int64_t total = buckets.back().second;
  for (size_t i = 0; i < buckets.size(); ++i)
    if (buckets[i].second == total) return i == 0 ? 1 : std::stoll(buckets[i - 1].first) + 1;
  return 0;
}

serve::ServeOptions loopback(std::vector<std::string> runs) {
  serve::ServeOptions o;
  o.runs = std::move(runs);
  o.port = 0;
  o.http_threads = 80;
  return o;
}

class ServeImage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_fixture("resnet20.weights.safetensors"))
      GTEST_SKIP() << "resnet20 fixtures missing: run tests/reference/make_fixtures.py";
    run_ = serve_image_run(dir_);
    images_ = serve_images(dir_);
  }
  // Each image POSTed alone to the served "flowers" run answers as graft
  // predict answered it (`want`, in images_' order).
  void expect_served_like(int port, const std::vector<InputPrediction>& want) {
    ASSERT_EQ(want.size(), images_.size());
    for (size_t i = 0; i < images_.size(); ++i) {
      SCOPED_TRACE(images_[i]);
      const Reply r = http(port, "POST", "/v1/models/flowers/predict", read_file(images_[i]), "image/png");
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_EQ(r.j()["model"], "flowers");
      ASSERT_EQ(r.j()["predictions"].size(), 1u);
      expect_same_top(r.j()["predictions"][0], want[i]);
    }
  }
  test::TempDir dir_;
  std::string run_;
  std::vector<std::string> images_;
};

// The least time over every way to cover n inputs with passes of the
// planner's sizes, by enumerating how many passes of each size (n <= 40).
double least_time_by_enumeration(const std::vector<int64_t>& sizes, const std::vector<double>& t, int64_t n) {
  double best = -1;
  std::vector<int64_t> count(sizes.size(), 0);
  std::function<void(size_t, int64_t, double)> go = [&](size_t i, int64_t covered, double time) {
    if (i == sizes.size()) {
      if (covered >= n && (best < 0 || time < best)) best = time;
      return;
    }
    for (int64_t c = 0; c * sizes[i] <= n + sizes[i] - 1; ++c) go(i + 1, covered + c * sizes[i], time + c * t[i]);
  };
  go(0, 0, 0.0);
  return best;
}

TEST(ServePasses, UntimedSizesPadToTheNextSizeAndTimedOnesTakeTheLeastTime) {
  serve::PassPlanner p(32);
  EXPECT_EQ(p.sizes(), (std::vector<int64_t>{1, 2, 4, 8, 16, 32}));
  EXPECT_EQ(p.plan(5), (std::vector<int64_t>{8}));
  EXPECT_EQ(p.plan(32), (std::vector<int64_t>{32}));
  EXPECT_EQ(p.plan(40), (std::vector<int64_t>{32, 8}));
  EXPECT_EQ(serve::PassPlanner(24).sizes(), (std::vector<int64_t>{1, 2, 4, 8, 16, 24}));

  // Seconds per pass: a fixed cost plus a per-image one that falls with size.
  const std::vector<double> t = {1.0, 1.6, 2.4, 4.0, 7.0, 13.0};
  for (size_t i = 0; i < t.size(); ++i) p.observe(p.sizes()[i], t[i] + 5);  // a slow first pass...
  for (size_t i = 0; i < t.size(); ++i) p.observe(p.sizes()[i], t[i]);      // ...the fastest is kept
  p.observe(32, 20.0);
  EXPECT_EQ(p.plan(17), (std::vector<int64_t>{16, 1}));  // 8 against 13 padded to 32
  EXPECT_EQ(p.plan(31), (std::vector<int64_t>{32}));     // 13 against 14 for 16 + 16
  for (int64_t n = 1; n <= 40; ++n) {
    const std::vector<int64_t> plan = p.plan(n);
    double time = 0;
    int64_t covered = 0;
    for (size_t k = 0; k < plan.size(); ++k) {
      if (k > 0) EXPECT_LE(plan[k], plan[k - 1]) << n;
      EXPECT_LT(covered, n) << n << ": a pass of padding only";
      covered += plan[k];
      time += t[static_cast<size_t>(std::find(p.sizes().begin(), p.sizes().end(), plan[k]) - p.sizes().begin())];
    }
    EXPECT_GE(covered, n);
    EXPECT_NEAR(time, least_time_by_enumeration(p.sizes(), t, n), 1e-9) << n;
  }
}

TEST_F(ServeImage, AnswersEqualGraftPredict) {
  serve::Server server(loopback({run_}));
  const int port = server.start();
  EXPECT_EQ(http(port, "GET", "/readyz").status, 200);
  const Reply models = http(port, "GET", "/v1/models");
  ASSERT_EQ(models.status, 200) << models.body;
  EXPECT_EQ(models.j()["models"][0]["name"], "flowers");
  EXPECT_EQ(models.j()["models"][0]["classes"].size(), 10u);
  EXPECT_EQ(models.j()["models"][0]["input"]["size"], 32);

  // graft predict's code path on the same files.
  RunUseSettings use;
  const auto want = predict_image_run(run_, images_, image_eval_options(use));
  ASSERT_EQ(want.size(), images_.size());
  expect_served_like(port, want);
  // Several images in one multipart request: one answer each, in order.
  const Reply many = http(port, "POST", "/v1/models/flowers/predict",
                          multipart({{"images", read_file(images_[0])}, {"images", read_file(images_[5])},
                                     {"images", read_file(images_[11])}},
                                    "graftboundary"),
                          "multipart/form-data; boundary=graftboundary");
  ASSERT_EQ(many.status, 200) << many.body;
  ASSERT_EQ(many.j()["predictions"].size(), 3u);
  expect_same_top(many.j()["predictions"][0], want[0]);
  expect_same_top(many.j()["predictions"][1], want[5]);
  expect_same_top(many.j()["predictions"][2], want[11]);

  // embed: the features predict's model computes, within 1e-5.
  ImagePredictor predictor(run_, image_eval_options(use));
  const torch::Tensor f = predictor.features({predictor.input(load_image(images_[3]))})[0];
  const Reply e = http(port, "POST", "/v1/models/flowers/embed", read_file(images_[3]), "application/octet-stream");
  ASSERT_EQ(e.status, 200) << e.body;
  const std::vector<float> got = e.j()["embeddings"][0]["embedding"].get<std::vector<float>>();
  ASSERT_EQ(static_cast<int64_t>(got.size()), f.size(0));
  for (int64_t i = 0; i < f.size(0); ++i) EXPECT_NEAR(got[static_cast<size_t>(i)], f[i].item<float>(), 1e-5);
  server.stop();
  EXPECT_EQ(http(port, "GET", "/healthz").status, 0) << "the server stopped listening";
}

// --precision int8 (issue 21): served answers equal graft predict's int8
// answers, calibrated on the same folder (the fixture run has no training
// data of its own), and differ from fp32's only by quantisation.
TEST_F(ServeImage, Int8AnswersEqualGraftPredictInt8) {
  test::write_synthetic_image_folder(dir_ / "calibration", 3, 8, 32, 3, 11);
  serve::ServeOptions o = loopback({run_});
  o.precision = "int8";
  o.calibration = 16;
  o.calibration_data = dir_ / "calibration";
  serve::Server server(o);
  const int port = server.start();
  RunUseSettings use;
  use.precision = "int8";
  use.calibration = 16;
  use.calibration_data = dir_ / "calibration";
  const auto want = predict_image_run(run_, images_, image_eval_options(use));
  ASSERT_EQ(want.size(), images_.size());
  expect_served_like(port, want);
  server.stop();
  // The calibration is kept in the run folder and reused (graft predict's).
  EXPECT_TRUE(fs::exists(run_ + "/int8_calibration.json"));
}

TEST_F(ServeImage, SixtyFourConcurrentRequestsEqualSequentialOnes) {
  serve::ServeOptions o = loopback({run_});
  o.max_wait_ms = 10;  // with requests still being read joining (up to 10 × this more)
  serve::Server server(o);
  const int port = server.start();
  std::vector<std::string> bodies;
  for (const auto& p : images_) bodies.push_back(read_file(p));
  std::vector<json> sequential;
  for (int i = 0; i < 64; ++i) {
    const Reply r = http(port, "POST", "/v1/models/flowers/predict", bodies[i % bodies.size()], "image/png");
    ASSERT_EQ(r.status, 200) << r.body;
    sequential.push_back(r.j()["predictions"][0]);
  }
  std::vector<std::future<Reply>> futures;
  for (int i = 0; i < 64; ++i)
    futures.push_back(std::async(std::launch::async, [&, i] {
      return http(port, "POST", "/v1/models/flowers/predict", bodies[i % bodies.size()], "image/png");
    }));
  for (int i = 0; i < 64; ++i) {
    const Reply r = futures[static_cast<size_t>(i)].get();
    ASSERT_EQ(r.status, 200) << r.body;
    expect_same_answer(r.j()["predictions"][0], sequential[static_cast<size_t>(i)]);
  }
  const Reply m = http(port, "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_TRUE(test::contains(m.headers, "text/plain")) << m.headers;
  EXPECT_TRUE(test::contains(m.body, "graft_requests_total{code=\"200\"} ")) << m.body;
  EXPECT_TRUE(test::contains(m.body, "graft_queue_depth{model=\"flowers\"} 0")) << m.body;
  EXPECT_TRUE(test::contains(m.body, "graft_request_duration_seconds_count ")) << m.body;
  EXPECT_GT(largest_batch_in(m.body, "flowers"), 1) << m.body;
}

// A PNG that claims width x height (no pixel data follows).
std::string png_header(uint32_t width, uint32_t height) {
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  std::string ihdr = "IHDR" + be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : ihdr) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr + be32(~crc) + be32(0) + "IDAT" + be32(0);
}

TEST_F(ServeImage, BadRequestsGetA4xxJsonErrorAndTheServerKeepsServing) {
  if (!test::have_fixture("text_model/run/model.json")) GTEST_SKIP() << "no text fixtures";
  fs::copy(test::fixture("text_model/run"), dir_ / "reviews", fs::copy_options::recursive);
  serve::ServeOptions o = loopback({run_, dir_ / "reviews"});
  o.api_key = "s3cret-key";
  o.max_body_mb = 1;
  serve::Server server(o);
  const int port = server.start();
  const std::vector<std::string> auth = {"Authorization: Bearer s3cret-key"};
  const std::string good = read_file(images_[0]);
  const std::string predict = "/v1/models/flowers/predict";
  auto still_serving = [&] {
    const Reply r = http(port, "POST", predict, good, "image/png", auth);
    EXPECT_EQ(r.status, 200) << r.body;
  };
  struct Bad {
    std::string what, path, body, type;
    int status;
    std::vector<std::string> headers;
  };
  const std::string jpeg_start = std::string("\xff\xd8\xff\xe0\x00\x10JFIF\x00", 11) + std::string(200, 'x');
  const std::vector<Bad> bad = {
      {"corrupt JPEG", predict, jpeg_start, "image/jpeg", 400, auth},
      {"0-byte body", predict, "", "image/png", 400, auth},
      {"50000x50000 PNG header", predict, png_header(50000, 50000), "image/png", 413, auth},
      {"wrong content type", predict, good, "text/plain", 415, auth},
      {"texts to an image run", predict, R"({"texts": ["a"]})", "application/json", 415, auth},
      {"invalid JSON", "/v1/models/reviews/predict", R"({"texts": [)", "application/json", 400, auth},
      {"texts not strings", "/v1/models/reviews/predict", R"({"texts": ["a\tb", 7]})", "application/json", 400,
       auth},
      {"no texts", "/v1/models/reviews/predict", R"({"text": "a"})", "application/json", 400, auth},
      {"unknown model", "/v1/models/nope/predict", good, "image/png", 404, auth},
      {"missing API key", predict, good, "image/png", 401, {}},
      {"wrong API key", predict, good, "image/png", 401, {"Authorization: Bearer s3cret-kez"}},
      {"body over the limit", predict, std::string(1100 * 1024, 'x'), "image/png", 413, auth},
      {"multipart without parts", predict, "--b--\r\n", "multipart/form-data; boundary=b", 400, auth},
      {"unknown endpoint", "/v1/nothing", good, "image/png", 404, auth},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.what);
    const Reply r = http(port, "POST", b.path, b.body, b.type, b.headers);
    EXPECT_EQ(r.status, b.status) << r.body;
    json j;
    ASSERT_NO_THROW(j = r.j()) << r.body;
    ASSERT_TRUE(j.contains("error")) << r.body;
    EXPECT_FALSE(test::contains(r.body, dir_.path())) << "an error names a file: " << r.body;
    if (b.status == 401) {
      EXPECT_TRUE(test::contains(r.headers, "WWW-Authenticate: Bearer")) << r.headers;
    }
    still_serving();
  }
  // A client that disconnects mid-upload.
  {
    const int fd = connect_loopback(port);
    ASSERT_GE(fd, 0);
    send_all(fd, "POST " + predict + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-key\r\n"
                 "Content-Type: image/png\r\nContent-Length: 100000\r\n\r\n" + good.substr(0, 100));
    close(fd);
  }
  still_serving();
  // The text run answers texts (a pair model: TEXT<TAB>TEXT).
  const Reply t = http(port, "POST", "/v1/models/reviews/predict", R"({"texts": ["w7 w8 w9\tw10"]})",
                       "application/json", auth);
  EXPECT_EQ(t.status, 200) << t.body;
  const Reply m = http(port, "GET", "/metrics", "", "", auth);
  EXPECT_TRUE(test::contains(m.body, "graft_requests_total{code=\"401\"} 2")) << m.body;
  EXPECT_TRUE(test::contains(m.body, "graft_requests_total{code=\"413\"} 2")) << m.body;
}

TEST(ServeText, AnswersEqualGraftPredict) {
  if (!test::have_fixture("text_model/run/model.json")) GTEST_SKIP() << "no reference fixtures";
  test::TempDir dir;
  fs::copy(test::fixture("text_model/run"), dir / "reviews", fs::copy_options::recursive);
  const std::vector<std::string> texts = {"w7 w8 w9\tw10", "w11 w12\tw13", "w20\tw21 w22", "w5 w6\tw7"};
  std::string lines;
  for (const auto& t : texts) lines += t + "\n";
  test::write_bytes(dir / "lines.txt", lines);
  const auto want = predict_text_run(dir / "reviews", {dir / "lines.txt"}, 5);
  ASSERT_EQ(want.size(), texts.size());
  serve::Server server(loopback({dir / "reviews"}));
  const int port = server.start();
  json body;
  body["texts"] = texts;
  const Reply r = http(port, "POST", "/v1/models/reviews/predict", body.dump(), "application/json");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.j()["predictions"].size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(r.j()["predictions"][i]["text"], texts[i]);
    expect_same_top(r.j()["predictions"][i], want[i]);
  }
  // One text per request, concurrently: the same answers.
  std::vector<std::future<Reply>> futures;
  for (size_t i = 0; i < texts.size(); ++i)
    futures.push_back(std::async(std::launch::async, [&, i] {
      json one;
      one["texts"] = {texts[i]};
      return http(port, "POST", "/v1/models/reviews/predict", one.dump(), "application/json");
    }));
  for (size_t i = 0; i < texts.size(); ++i) {
    const Reply one = futures[i].get();
    ASSERT_EQ(one.status, 200) << one.body;
    expect_same_top(one.j()["predictions"][0], want[i]);
  }
}

// ---------------------------------------------------------------- queue

// A model that holds its first batch until released.
class HeldModel : public serve::ServedModel {
 public:
  std::string kind() const override { return "image"; }
  nlohmann::ordered_json describe() const override { return {}; }
  std::string refuses(serve::ServeOp) const override { return ""; }
  std::vector<serve::ServeAnswer> run(serve::ServeOp, const std::vector<const serve::ServeInput*>& in) override {
    if (calls++ == 0) {
      running.set_value();
      released.wait();
    }
    return std::vector<serve::ServeAnswer>(in.size());
  }
  serve::ServeInput warm_input() const override { return {}; }
  std::atomic<int> calls{0};
  std::promise<void> running, release;
  std::shared_future<void> released = release.get_future().share();
};

std::shared_ptr<serve::ServeJob> held_job() {
  auto job = std::make_shared<serve::ServeJob>();
  job->inputs.resize(1);
  job->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  return job;
}

TEST(ServeQueue, AFullQueueRefusesAndEveryQueuedJobIsAnswered) {
  HeldModel model;
  serve::ServeMetrics metrics;
  serve::ServeOptions o;
  o.max_batch = 1;
  o.max_wait_ms = 0;
  o.max_queue = 2;
  serve::Batcher b("held", model, o, metrics);
  auto first = held_job();
  ASSERT_TRUE(b.submit(first));
  model.running.get_future().wait();  // the worker holds the first job
  auto second = held_job(), third = held_job(), fourth = held_job();
  EXPECT_TRUE(b.submit(second));
  EXPECT_TRUE(b.submit(third));
  EXPECT_EQ(b.depth(), 2u);
  EXPECT_FALSE(b.submit(fourth)) << "the queue holds max_queue jobs";
  EXPECT_EQ(b.depth(), 2u) << "a refused job takes no room";
  auto f1 = first->done.get_future(), f2 = second->done.get_future(), f3 = third->done.get_future();
  std::thread drainer([&] { b.drain(std::chrono::steady_clock::now() + std::chrono::seconds(30)); });
  EXPECT_FALSE(b.submit(held_job())) << "a draining batcher takes no job";
  model.release.set_value();
  drainer.join();
  for (auto* f : {&f1, &f2, &f3}) EXPECT_EQ(f->wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(third->status, 200);
  EXPECT_EQ(metrics.largest_batch("held"), 1);
}

// A model that records the size of each batch it runs.
class CountingModel : public serve::ServedModel {
 public:
  std::string kind() const override { return "image"; }
  nlohmann::ordered_json describe() const override { return {}; }
  std::string refuses(serve::ServeOp) const override { return ""; }
  std::vector<serve::ServeAnswer> run(serve::ServeOp, const std::vector<const serve::ServeInput*>& in) override {
    std::lock_guard<std::mutex> lock(mutex);
    sizes.push_back(in.size());
    return std::vector<serve::ServeAnswer>(in.size());
  }
  serve::ServeInput warm_input() const override { return {}; }
  std::mutex mutex;
  std::vector<size_t> sizes;
};

TEST(ServeQueue, ARequestStillBeingReadJoinsTheBatchPastMaxWait) {
  CountingModel model;
  serve::ServeMetrics metrics;
  serve::ServeOptions o;
  o.max_batch = 8;
  o.max_wait_ms = 50;  // a batch waits for requests being read 10 × 50 ms more at most
  serve::Batcher b("counting", model, o, metrics);
  auto first = held_job(), second = held_job();
  auto f1 = first->done.get_future(), f2 = second->done.get_future();
  {
    serve::Batcher::Arrival being_read(b);
    ASSERT_TRUE(b.submit(first));
    std::this_thread::sleep_for(std::chrono::milliseconds(150));  // past max_wait
    ASSERT_TRUE(b.submit(second, &being_read));
  }
  f1.wait();
  f2.wait();
  std::lock_guard<std::mutex> lock(model.mutex);
  EXPECT_EQ(model.sizes, (std::vector<size_t>{2})) << "the second request joined the first's batch";
}

TEST(ServeQueue, TheServerAnswers503WithRetryAfterWhenTheQueueIsFull) {
  if (!test::have_fixture("resnet20.weights.safetensors")) GTEST_SKIP() << "no reference fixtures";
  test::TempDir dir;
  const std::string run = serve_image_run(dir);
  const std::string png = read_file(serve_images(dir)[0]);
  serve::ServeOptions o = loopback({run});
  o.max_queue = 1;
  o.max_batch = 1;
  o.max_wait_ms = 0;
  serve::Server server(o);
  const int port = server.start();
  // 48 at once against a queue of one: some are refused, the rest answered.
  std::vector<std::future<Reply>> futures;
  for (int i = 0; i < 48; ++i)
    futures.push_back(std::async(std::launch::async, [&] {
      return http(port, "POST", "/v1/models/flowers/predict", png, "image/png");
    }));
  int ok = 0, refused = 0;
  for (auto& f : futures) {
    const Reply r = f.get();
    if (r.status == 200) ++ok;
    if (r.status == 503) {
      ++refused;
      EXPECT_TRUE(test::contains(r.headers, "Retry-After: 1")) << r.headers;
      EXPECT_EQ(r.j()["error"], "the queue of this model is full");
    }
  }
  EXPECT_EQ(ok + refused, 48);
  EXPECT_GT(ok, 0);
  EXPECT_GT(refused, 0) << "48 concurrent requests never filled a queue of one";
}

// ---------------------------------------------------------------- face

TEST(ServeFace, IdentifyAndVerifyEqualGraftFace) {
  if (const std::string why = test::face_data_missing(); !why.empty()) GTEST_SKIP() << why;
  test::TempDir dir;
  test::copy_att_faces(dir / "in", {1, 3}, {1, 4});
  const test::CliResult e = test::graft_cli(
      {"face", "enroll", "--no-detect", "--threads", "1", "--gallery", dir / "g.json", dir / "in"});
  ASSERT_EQ(e.code, 0) << e.err;
  const std::string att = test::shared_data("att_faces");
  const std::vector<std::string> probes = {att + "/s1/7.pgm", att + "/s2/7.pgm", att + "/s30/1.pgm"};
  std::vector<std::string> args = {"face", "identify", "--no-detect", "--threads", "1", "--json", "--gallery",
                                   dir / "g.json"};
  args.insert(args.end(), probes.begin(), probes.end());
  const test::CliResult id = test::graft_cli(args);
  ASSERT_EQ(id.code, 0) << id.err;
  serve::ServeOptions o;
  o.gallery = dir / "g.json";
  o.port = 0;
  o.top_k = 3;  // graft face identify's default
  serve::Server server(o);
  const int port = server.start();
  std::istringstream lines(id.out);
  std::string line;
  for (const auto& probe : probes) {
    SCOPED_TRACE(probe);
    ASSERT_TRUE(std::getline(lines, line));
    const json want = json::parse(line);
    const Reply r = http(port, "POST", "/v1/face/identify", read_file(probe), "image/x-portable-graymap");
    ASSERT_EQ(r.status, 200) << r.body;
    const json got = r.j()["faces"][0];
    EXPECT_EQ(got["identity"], want["identity"]);
    EXPECT_EQ(got["box"], want["box"]);
    ASSERT_EQ(got["top"].size(), want["top"].size());
    for (size_t k = 0; k < want["top"].size(); ++k) {
      EXPECT_EQ(got["top"][k]["identity"], want["top"][k]["identity"]);
      EXPECT_NEAR(got["top"][k]["distance"].get<double>(), want["top"][k]["distance"].get<double>(), 1e-6);
    }
  }
  const test::CliResult v = test::graft_cli({"face", "verify", "--no-detect", "--threads", "1", "--json",
                                             "--gallery", dir / "g.json", probes[0], att + "/s1/8.pgm"});
  ASSERT_EQ(v.code, 0) << v.err;
  const json want = json::parse(v.out);
  const Reply r = http(port, "POST", "/v1/face/verify",
                       multipart({{"a", read_file(probes[0])}, {"b", read_file(att + "/s1/8.pgm")}}, "fb"),
                       "multipart/form-data; boundary=fb");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j()["same"], want["same"]);
  EXPECT_NEAR(r.j()["distance"].get<double>(), want["distance"].get<double>(), 1e-6);
  const Reply blank = http(port, "POST", "/v1/face/verify", read_file(probes[0]), "image/png");
  EXPECT_EQ(blank.status, 400) << blank.body;
  // --embedder names the gallery's embedder (a face run's, for a gallery
  // enrolled with a fine-tuned one): the same answers with its name; another
  // embedder is refused by the gallery's check; no gallery, no --embedder.
  serve::ServeOptions named = o;
  named.face_embedder = "dlib";
  serve::Server again(named);
  const int port2 = again.start();
  const Reply same = http(port2, "POST", "/v1/face/identify", read_file(probes[0]), "image/x-portable-graymap");
  ASSERT_EQ(same.status, 200) << same.body;
  EXPECT_EQ(same.j()["faces"][0]["top"], http(port, "POST", "/v1/face/identify", read_file(probes[0]),
                                              "image/x-portable-graymap").j()["faces"][0]["top"]);
  const test::CliResult wrong = test::graft_cli({"serve", "--gallery", dir / "g.json", "--embedder", dir / "in",
                                                 "--port", "0"});
  EXPECT_NE(wrong.code, 0);
  EXPECT_TRUE(test::contains(wrong.err, "--embedder")) << wrong.err;
  const test::CliResult alone = test::graft_cli({"serve", "--embedder", "dlib", "--port", "0", dir / "in"});
  EXPECT_EQ(alone.code, 2);
  EXPECT_TRUE(test::contains(alone.err, "--embedder dlib: the embedder of --gallery")) << alone.err;
}

// ---------------------------------------------------------------- SIGTERM

TEST(ServeCli, SigtermWithRequestsInFlightAnswersEveryOneAndExitsZero) {
  if (!test::have_fixture("resnet20.weights.safetensors")) GTEST_SKIP() << "no reference fixtures";
  test::TempDir dir;
  const std::string run = serve_image_run(dir);
  const std::string png = read_file(serve_images(dir)[0]);
  // Requests wait up to 3 s for a batch of 64: they are all queued when the
  // signal comes, and draining runs them at once.
  const int pid = test::spawn_graft({"serve", run, "--port", "0", "--threads", "1", "--max-batch", "64",
                                     "--max-wait-ms", "3000", "--drain-s", "20"},
                                    dir / "out.txt", dir / "err.txt");
  int port = 0;
  for (int i = 0; i < 3000 && port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::ifstream out(dir / "out.txt");
    std::string line;
    if (std::getline(out, line) && test::contains(line, "\"port\"")) port = json::parse(line)["port"].get<int>();
  }
  ASSERT_GT(port, 0) << read_file(dir / "err.txt");
  std::vector<std::future<Reply>> futures;
  for (int i = 0; i < 16; ++i)
    futures.push_back(std::async(std::launch::async, [&] {
      return http(port, "POST", "/v1/models/flowers/predict", png, "image/png");
    }));
  bool queued = false;
  for (int i = 0; i < 500 && !queued; ++i) {
    queued = test::contains(http(port, "GET", "/metrics").body, "graft_queue_depth{model=\"flowers\"} 16");
    if (!queued) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(queued) << "the 16 requests never waited in the queue together";
  kill(pid, SIGTERM);
  for (auto& f : futures) {
    const Reply r = f.get();
    EXPECT_EQ(r.status, 200) << r.body;
  }
  EXPECT_EQ(test::wait_graft(pid, {}, 60), 0) << read_file(dir / "err.txt");
  EXPECT_EQ(http(port, "GET", "/healthz").status, 0) << "still listening after the exit";
}

TEST(ServeCli, BadOptionsAreUsageErrorsAndAFolderThatIsNoRunIsAnError) {
  test::CliResult r = test::graft_cli({"serve"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "error: graft serve: nothing to serve (expected run folders, or --gallery)\n");
  test::TempDir dir;
  r = test::graft_cli({"serve", dir.path(), "--max-batch", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "error: --max-batch: 0 (expected 1 to 1024)\n");
  r = test::graft_cli({"serve", dir.path(), "--max-body-mb", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(test::contains(r.err, "--max-body-mb: 0 (expected more than 0")) << r.err;
  r = test::graft_cli({"serve", dir.path(), "--port", "0"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(test::contains(r.err, dir.path())) << "the server's own log names the folder: " << r.err;
}

TEST(ServeCli, ApiKeysCompareInConstantTimeAndCorrectly) {
  EXPECT_TRUE(serve::equal_constant_time("Bearer k", "Bearer k"));
  EXPECT_FALSE(serve::equal_constant_time("Bearer ", "Bearer k"));
  EXPECT_FALSE(serve::equal_constant_time("Bearer kk", "Bearer k"));
  EXPECT_FALSE(serve::equal_constant_time("", "Bearer k"));
  EXPECT_FALSE(serve::equal_constant_time("Bearer j", "Bearer k"));
}

}  // namespace
}  // namespace graft
