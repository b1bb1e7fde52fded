#include "test_util.h"

#include <fstream>

#include "graft/cli/cli.h"

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
