#pragma once
/// Shared test helpers: temporary folders, reference fixtures, small images.

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <torch/torch.h>

#include "graft/core/error.h"
#include "graft/train/trainer.h"

namespace graft::test {

/// A fresh empty folder under the system temp dir, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Path of a fixture made by tests/reference/make_fixtures.py.
std::string fixture(const std::string& name);
/// True when the fixture exists; otherwise the caller should GTEST_SKIP.
bool have_fixture(const std::string& name);

/// ../shared/data/<rel> next to the checkout, or "" if absent.
std::string shared_data(const std::string& rel);

/// Writes a folder of class folders with `per_class` synthetic PNG images of
/// size x size each; class k has a distinct, learnable pattern.
void write_synthetic_image_folder(const std::string& root, int classes, int per_class,
                                  int size, int channels = 3, uint64_t seed = 0);

/// A GIF89a of an 8-bit grey or RGB (R first) image of at most 256 colours,
/// written here so that tests need no GIF encoder: one global colour table,
/// LZW with a clear code before every pixel (valid, uncompressed). With
/// `transparent` >= 0 a graphic control extension marks that index
/// transparent. Decoding it gives the image back exactly.
std::string gif_bytes(const cv::Mat& image, int transparent = -1);

/// An ICO file holding one PNG-compressed icon of `image` (a format graft
/// does not read).
std::string ico_bytes(const cv::Mat& image);

/// The message of the graft::Error that f() throws, or "(no error)".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const graft::Error& e) {
    return e.what();
  }
  return "(no error)";
}

/// True when `s` contains `part`.
inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

/// Writes `bytes` to `path` as they are (no atomic rename: test inputs).
void write_bytes(const std::string& path, const std::string& bytes);

/// What graft's command line returned, run in-process.
struct CliResult {
  int code;
  std::string out, err;
};
/// Runs graft's command line (cli::run) in this process with stdout and
/// stderr captured.
CliResult graft_cli(const std::vector<std::string>& args);

/// max |a - b| / (1 + max |b|).
double rel_error(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace graft::test

namespace graft::test {
/// Starts the graft binary (GRAFT_BINARY) with `args` in a child process:
/// stdout and stderr to the files given (empty: inherited), the rank
/// variables of the test's own environment removed, then `env` ("K=V") set.
/// Returns the child's pid.
int spawn_graft(const std::vector<std::string>& args, const std::string& out_file = "",
                const std::string& err_file = "", const std::vector<std::string>& env = {});
/// Waits for a child started by spawn_graft; once `ready()` holds (polled,
/// when given) sends it SIGINT. After `guard_s` seconds it is killed and the
/// test fails (a hang must not stall the suite). Its exit code, or 128 + the
/// signal.
int wait_graft(int pid, const std::function<bool()>& ready = {}, int guard_s = 300);

/// Why the face tests cannot run here ("" when they can): AT&T faces in
/// ../shared/data and face-api's models (scripts/face_models.sh).
std::string face_data_missing();

/// The tensors of a safetensors file by name.
std::map<std::string, torch::Tensor> load_named(const std::string& path);
}  // namespace graft::test

namespace graft::test {
/// A test fixture over reference cases made by tests/reference: the tensors
/// of the safetensors fixture `tensors_file` and the JSON fixture
/// `json_file`. Every test skips, saying `why_absent`, when the JSON
/// fixture was not made.
class ReferenceTest : public ::testing::Test {
 protected:
  ReferenceTest(std::string tensors_file, std::string json_file, std::string why_absent);
  void SetUp() override;
  /// The tensor `name`; a test failure (and an undefined tensor) when the
  /// fixture has none.
  torch::Tensor at(const std::string& name) const;
  nlohmann::json json_;

 private:
  std::string tensors_file_, json_file_, why_absent_;
  std::map<std::string, torch::Tensor> tensors_;
};

/// The parity fixture `name`.json that tests/reference/`script` writes, or
/// nullopt when it was not made (the test should skip: no node or npm). The
/// `name`.error the script leaves when it failed fails the test.
std::optional<nlohmann::json> parity_fixture(const std::string& name, const std::string& script);

/// Copies AT&T faces (../shared/data/att_faces) into `dest`: the images
/// `images.first`..`images.second` of the people `people.first`..
/// `people.second`, as dest/s<person>/<image>.pgm.
void copy_att_faces(const std::string& dest, std::pair<int, int> people, std::pair<int, int> images);

/// BERT's five special tokens ([PAD] [UNK] [CLS] [SEP] [MASK]), then `words`.
std::vector<std::string> bert_vocab(const std::vector<std::string>& words);
/// The inputs of a masked-LM pretraining run in `dir`: vocab.txt (`vocab`,
/// a token a line), bert.json (`bert_config`) and corpus.txt (`corpus`).
void write_mlm_inputs(const std::string& dir, const std::vector<std::string>& vocab,
                      const std::string& bert_config, const std::string& corpus);
/// A run folder `dir`/`name` as graft train writes it, holding PyTorch's
/// resnet20 fixture weights (resnet20.weights.safetensors) with a linear head
/// over class0..class9. Returns its path.
std::string resnet20_fixture_run(const std::string& dir, const std::string& name = "run");
/// resnet20 with the fixture weights in plain evaluation mode (no folded
/// BatchNorm, no channels-last, fp32, one batch) on 32x32 image files decoded
/// by cv::imread and normalised here: pooled features, or logits.
torch::Tensor resnet20_reference(const std::vector<std::string>& images, bool features);

/// Expects graft score's JSON row `s` to hold domain_shift()'s figures of
/// these feature rows (fewer than --max-similarity-samples, so all of them),
/// recomputed here by each function of select/transferability.h; the
/// permutation test's with `permutations` and the score's `seed`.
void expect_domain_shift(const nlohmann::json& s, const torch::Tensor& source, const torch::Tensor& target,
                         int64_t permutations, uint64_t seed = 0);

/// graft train of `o` stopped where `stop` says (twice), then resumed from
/// o.out until it stops again and once more to the end (the resumed calls
/// keep o's threads and quiet): the three summaries. Expects the first two
/// interrupted and the last not.
std::vector<TrainSummary> train_stopped_twice(TrainOptions o, std::function<bool(int64_t)> stop);
/// Expects the last states of two runs (checkpoint/last.safetensors) to hold
/// the same tensors under the same names, the optimizer's state aside, and
/// returns the names.
std::vector<std::string> expect_same_last_state(const std::string& run_a, const std::string& run_b);

}  // namespace graft::test
