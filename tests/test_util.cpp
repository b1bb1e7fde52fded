#include "test_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <fstream>
#include <thread>

#include "graft/cli/cli.h"
#include "graft/face/nets.h"

#include <random>

#include <opencv2/imgcodecs.hpp>

namespace fs = std::filesystem;

namespace graft::test {

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "graft-test-XXXXXX").string();
  char* made = mkdtemp(tmpl.data());
  if (made == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string fixture(const std::string& name) { return std::string(GRAFT_FIXTURE_DIR) + "/" + name; }

bool have_fixture(const std::string& name) { return fs::exists(fixture(name)); }

std::string shared_data(const std::string& rel) {
  fs::path p = fs::path(GRAFT_SOURCE_DIR) / ".." / "shared" / "data" / rel;
  return fs::exists(p) ? fs::canonical(p).string() : std::string();
}

void write_synthetic_image_folder(const std::string& root, int classes, int per_class,
                                  int size, int channels, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.f, 12.f);
  for (int c = 0; c < classes; ++c) {
    std::string dir = root + "/class" + std::to_string(c);
    fs::create_directories(dir);
    for (int i = 0; i < per_class; ++i) {
      cv::Mat img(size, size, channels == 3 ? CV_8UC3 : CV_8UC1);
      for (int y = 0; y < size; ++y) {
        for (int x = 0; x < size; ++x) {
          // Class c: stripes of period (c + 2) in a direction that depends on c.
          int coord = (c % 2 == 0) ? x : y;
          float base = ((coord / (c / 2 + 2)) % 2) ? 200.f : 50.f;
          for (int ch = 0; ch < channels; ++ch) {
            float v = base + noise(rng) + (ch == c % 3 ? 30.f : 0.f);
            v = std::min(255.f, std::max(0.f, v));
            img.ptr<uint8_t>(y)[x * channels + ch] = static_cast<uint8_t>(v);
          }
        }
      }
      cv::imwrite(dir + "/img" + std::to_string(i) + ".png", img);
    }
  }
}

std::string gif_bytes(const cv::Mat& image, int transparent) {
  GRAFT_CHECK(image.depth() == CV_8U && (image.channels() == 1 || image.channels() == 3),
              "gif_bytes: expected an 8-bit grey or RGB image");
  std::map<uint32_t, int> index_of;
  std::string palette, indices;
  for (int y = 0; y < image.rows; ++y) {
    for (int x = 0; x < image.cols; ++x) {
      const uint8_t* p = image.ptr<uint8_t>(y) + x * image.channels();
      const uint8_t r = p[0], g = image.channels() == 3 ? p[1] : p[0], b = image.channels() == 3 ? p[2] : p[0];
      const uint32_t key = uint32_t(r) << 16 | uint32_t(g) << 8 | b;
      auto it = index_of.find(key);
      if (it == index_of.end()) {
        GRAFT_CHECK(index_of.size() < 256, "gif_bytes: more than 256 colours");
        it = index_of.emplace(key, static_cast<int>(index_of.size())).first;
        palette += {static_cast<char>(r), static_cast<char>(g), static_cast<char>(b)};
      }
      indices.push_back(static_cast<char>(it->second));
    }
  }
  palette.resize(768, '\0');
  auto le16 = [](int v) { return std::string{static_cast<char>(v & 0xff), static_cast<char>(v >> 8)}; };
  std::string out = "GIF89a" + le16(image.cols) + le16(image.rows) + std::string("\xf7\0\0", 3) + palette;
  if (transparent >= 0)
    out += std::string("\x21\xf9\x04\x01\0\0", 6) + static_cast<char>(transparent) + std::string(1, '\0');
  out += "," + le16(0) + le16(0) + le16(image.cols) + le16(image.rows) + std::string(1, '\0');
  out += '\x08';  // LZW minimum code size: 9-bit codes, clear 256, end 257
  std::string data;
  uint32_t bits = 0;
  int nbits = 0;
  auto code = [&](uint32_t c) {
    bits |= c << nbits;
    nbits += 9;
    while (nbits >= 8) {
      data.push_back(static_cast<char>(bits & 0xff));
      bits >>= 8;
      nbits -= 8;
    }
  };
  for (char i : indices) {
    code(256);
    code(static_cast<uint8_t>(i));
  }
  code(257);
  if (nbits > 0) data.push_back(static_cast<char>(bits & 0xff));
  for (size_t at = 0; at < data.size(); at += 255) {
    const size_t n = std::min<size_t>(255, data.size() - at);
    out += static_cast<char>(n);
    out += data.substr(at, n);
  }
  out += std::string(1, '\0') + ";";
  return out;
}

std::string ico_bytes(const cv::Mat& image) {
  std::vector<uint8_t> png;
  cv::imencode(".png", image, png);
  auto le = [](uint32_t v, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return s;
  };
  return le(0, 2) + le(1, 2) + le(1, 2) + std::string(1, static_cast<char>(image.cols & 0xff)) +
         std::string(1, static_cast<char>(image.rows & 0xff)) + le(0, 2) + le(1, 2) + le(32, 2) +
         le(static_cast<uint32_t>(png.size()), 4) + le(22, 4) + std::string(png.begin(), png.end());
}

double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  auto diff = (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
  return diff / (1.0 + b.to(torch::kDouble).abs().max().item<double>());
}

}  // namespace graft::test

#include "graft/weights/safetensors.h"

namespace graft::test {
std::map<std::string, torch::Tensor> load_named(const std::string& path) {
  auto f = load_safetensors(path);
  return {f.tensors.begin(), f.tensors.end()};
}
}  // namespace graft::test

namespace graft::test {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

CliResult graft_cli(const std::vector<std::string>& args) {
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  const int code = cli::run(args);
  CliResult r{code, testing::internal::GetCapturedStdout(), testing::internal::GetCapturedStderr()};
  return r;
}

}  // namespace graft::test

namespace graft::test {

int spawn_graft(const std::vector<std::string>& args, const std::string& out_file, const std::string& err_file,
                const std::vector<std::string>& env) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  if (!out_file.empty()) dup2(open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 1);
  if (!err_file.empty()) dup2(open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 2);
  // No rank variables of the test's own environment leak into a worker.
  for (const char* k : {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                        "GRAFT_DIST_WORKER", "GRAFT_FAULT_DIST_KILL"})
    unsetenv(k);
  for (const auto& kv : env) putenv(const_cast<char*>(kv.c_str()));
  std::vector<char*> argv;
  std::string bin = GRAFT_BINARY;
  argv.push_back(bin.data());
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(bin.c_str(), argv.data());
  _exit(127);
}

std::string face_data_missing() {
  if (shared_data("att_faces").empty()) return "../shared/data/att_faces is absent";
  if (!std::filesystem::exists(default_face_models_dir() + "/face_recognition_model-weights_manifest.json"))
    return "face-api models absent (scripts/face_models.sh)";
  return "";
}

int wait_graft(int pid, const std::function<bool()>& ready, int guard_s) {
  int status = 0;
  const auto start = std::chrono::steady_clock::now();
  bool sent = !ready;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (!sent && ready()) {
      kill(pid, SIGINT);
      sent = true;
    }
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(guard_s)) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "graft hung (killed after " << guard_s << " s)";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace graft::test

#include "graft/core/files.h"

namespace graft::test {

ReferenceTest::ReferenceTest(std::string tensors_file, std::string json_file, std::string why_absent)
    : tensors_file_(std::move(tensors_file)), json_file_(std::move(json_file)), why_absent_(std::move(why_absent)) {}

void ReferenceTest::SetUp() {
  if (!have_fixture(json_file_)) GTEST_SKIP() << why_absent_;
  tensors_ = load_named(fixture(tensors_file_));
  json_ = nlohmann::json::parse(read_file(fixture(json_file_)));
}

torch::Tensor ReferenceTest::at(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) ADD_FAILURE() << tensors_file_ << " has no " << name;
  return it == tensors_.end() ? torch::Tensor() : it->second;
}

std::optional<nlohmann::json> parity_fixture(const std::string& name, const std::string& script) {
  if (have_fixture(name + ".error")) {
    ADD_FAILURE() << "tests/reference/" << script << " failed: " << read_file(fixture(name + ".error"));
    return std::nullopt;
  }
  if (!have_fixture(name + ".json")) return std::nullopt;
  return nlohmann::json::parse(read_file(fixture(name + ".json")));
}

void copy_att_faces(const std::string& dest, std::pair<int, int> people, std::pair<int, int> images) {
  const std::string att = shared_data("att_faces");
  for (int s = people.first; s <= people.second; ++s) {
    const std::string id = "/s" + std::to_string(s);
    fs::create_directories(dest + id);
    for (int i = images.first; i <= images.second; ++i) {
      const std::string file = id + "/" + std::to_string(i) + ".pgm";
      fs::copy_file(att + file, dest + file);
    }
  }
}

std::vector<std::string> bert_vocab(const std::vector<std::string>& words) {
  std::vector<std::string> v = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  v.insert(v.end(), words.begin(), words.end());
  return v;
}

void write_mlm_inputs(const std::string& dir, const std::vector<std::string>& vocab,
                      const std::string& bert_config, const std::string& corpus) {
  std::string text;
  for (const auto& t : vocab) text += t + "\n";
  write_file_atomic(dir + "/vocab.txt", text);
  write_file_atomic(dir + "/bert.json", bert_config);
  write_file_atomic(dir + "/corpus.txt", corpus);
}

}  // namespace graft::test

#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/weights/state_dict.h"

namespace graft::test {

std::string resnet20_fixture_run(const std::string& dir, const std::string& name) {
  ModelInfo info;
  info.backbone = "resnet20";
  for (int c = 0; c < 10; ++c) info.classes.push_back("class" + std::to_string(c));
  info.input = find_backbone("resnet20").input;
  info.source_weights = "fixture";
  const std::string run = dir + "/" + name;
  make_dirs(run);
  write_file_atomic(run + "/model.json", to_json(info).dump(2) + "\n");
  std::filesystem::copy_file(fixture("resnet20.weights.safetensors"), run + "/model.safetensors");
  return run;
}

torch::Tensor resnet20_reference(const std::vector<std::string>& images, bool features) {
  torch::NoGradGuard no_grad;
  const BackboneSpec& spec = find_backbone("resnet20");
  Backbone ref = spec.make(10);
  const LoadReport r = load_state_dict(*ref, read_weights(fixture("resnet20.weights.safetensors")));
  EXPECT_TRUE(r.clean()) << r.summary();
  ref->eval();
  std::vector<torch::Tensor> xs;
  for (const auto& path : images) {
    cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
    EXPECT_EQ(bgr.rows, 32) << path;
    EXPECT_EQ(bgr.cols, 32) << path;
    torch::Tensor x = torch::from_blob(bgr.data, {32, 32, 3}, torch::kUInt8).flip({2}).to(torch::kFloat32) / 255;
    x = x.permute({2, 0, 1}).contiguous();
    for (int c = 0; c < 3; ++c) x[c] = (x[c] - spec.input.mean[c]) / spec.input.std[c];
    xs.push_back(x);
  }
  const torch::Tensor batch = torch::stack(xs);
  return features ? ref->features(batch) : ref->forward(batch);
}

}  // namespace graft::test

#include "graft/core/runtime.h"
#include "graft/select/transferability.h"

namespace graft::test {

void expect_domain_shift(const nlohmann::json& s, const torch::Tensor& source, const torch::Tensor& target,
                         int64_t permutations, uint64_t seed) {
  const double sigma = median_sigma(source, target);
  EXPECT_NEAR(s.at("mmd_sigma").get<double>(), sigma, 1e-9);
  EXPECT_NEAR(s.at("mmd").get<double>(), mmd_rbf(source, target, sigma), 1e-12);
  EXPECT_NEAR(s.at("domain_cka").get<double>(), domain_cka(source, target), 1e-12);
  const ProxyADistance pad = proxy_a_distance(source, target);
  EXPECT_DOUBLE_EQ(s.at("pad").get<double>(), pad.pad);
  EXPECT_DOUBLE_EQ(s.at("pad_error").get<double>(), pad.error);
  EXPECT_DOUBLE_EQ(s.at("mmd_p").get<double>(),
                   mmd_permutation_p(source, target, sigma, permutations, mix_seed(seed, 503)));
}

}  // namespace graft::test

#include "graft/weights/safetensors.h"

namespace graft::test {

std::vector<TrainSummary> train_stopped_twice(TrainOptions o, std::function<bool(int64_t)> stop) {
  std::vector<TrainSummary> out;
  o.should_stop = stop;
  out.push_back(train(o));
  TrainOptions r;
  r.out = o.out;
  r.resume = true;
  r.threads = o.threads;
  r.quiet = o.quiet;
  r.should_stop = stop;
  out.push_back(train(r));
  r.should_stop = nullptr;
  out.push_back(train(r));
  EXPECT_TRUE(out[0].interrupted);
  EXPECT_TRUE(out[1].interrupted);
  EXPECT_FALSE(out[2].interrupted);
  return out;
}

std::vector<std::string> expect_same_last_state(const std::string& run_a, const std::string& run_b) {
  auto a = load_safetensors(run_a + "/checkpoint/last.safetensors").tensors;
  auto b = load_safetensors(run_b + "/checkpoint/last.safetensors").tensors;
  std::vector<std::string> names;
  EXPECT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    names.push_back(a[i].first);
    EXPECT_EQ(a[i].first, b[i].first);
    if (a[i].first != "optimizer") EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
  return names;
}

}  // namespace graft::test
