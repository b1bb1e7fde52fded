// graft train --task face through the one training loop: the run folder
// (config.json, metrics.csv, checkpoint/, report.html), --stop-after-epoch and
// --resume, SIGINT, and --nproc 2 against one process. Four AT&T people x four
// already-cropped photos (--no-detect), a few steps each.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/files.h"
#include "graft/face/nets.h"
#include "graft/train/checkpoint.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

// Runs the graft binary with `args` (stdout and stderr to files beside
// `log`); once `ready()` holds, sends SIGINT (never, with no ready). Returns
// the exit code, or 128 + the signal.
int face_task_run(const std::vector<std::string>& args, const std::string& log,
                  const std::function<bool()>& ready = {}) {
  return test::wait_graft(test::spawn_graft(args, log + ".out", log + ".err"), ready);
}

// The largest |a - b| over the tensors of two weight files.
double face_task_max_diff(const std::string& a, const std::string& b) {
  auto ta = test::load_named(a), tb = test::load_named(b);
  EXPECT_EQ(ta.size(), tb.size()) << a << " " << b;
  double worst = 0;
  for (auto& [name, t] : ta) {
    EXPECT_TRUE(tb.count(name)) << name;
    if (tb.count(name)) worst = std::max(worst, (t - tb[name]).abs().max().item<double>());
  }
  return worst;
}

class FaceTask : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = test::face_data_missing(); !why.empty()) GTEST_SKIP() << why;
    test::copy_att_faces(dir_ / "faces", {1, 4}, {1, 4});
  }
  // An arcface fine-tune of `epochs` epochs, two steps of 8 chips each.
  std::vector<std::string> args(const std::string& out, const std::string& epochs,
                                const std::string& augment = "none") const {
    return {"train", "--task", "face", "--no-detect", "--threads", "1", "--quiet", "--finetune", "arcface",
            "--finetune-epochs", epochs, "--batch-size", "8", "--augment", augment, "--data", dir_ / "faces",
            "--out", dir_ / out};
  }
  static std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& more) {
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  void expect_same_model(const std::string& a, const std::string& b, double tolerance) {
    for (const char* f : {"embedder.safetensors", "head.safetensors"})
      EXPECT_LE(face_task_max_diff(dir_ / (a + "/" + f), dir_ / (b + "/" + f)), tolerance) << f;
  }
  test::TempDir dir_;
};

TEST_F(FaceTask, RunFolderAndResumeAfterEpochOneGiveTheSameModel) {
  test::CliResult whole = test::graft_cli(args("whole", "2"));
  ASSERT_EQ(whole.code, 0) << whole.err;
  const auto j = nlohmann::json::parse(whole.out);
  EXPECT_EQ(j["epochs"], 2);
  EXPECT_EQ(j["finetune_epoch_loss"].size(), 2u);
  for (const char* f : {"config.json", "metrics.csv", "report.html", "face_model.json", "head.safetensors",
                        "embedder.safetensors"})
    EXPECT_TRUE(fs::exists(dir_ / ("whole/" + std::string(f)))) << f;
  EXPECT_TRUE(fs::exists(checkpoint_path(dir_ / "whole")));
  const auto cfg = nlohmann::json::parse(read_file(dir_ / "whole/config.json"));
  EXPECT_EQ(cfg["options"]["task"], "face");
  EXPECT_EQ(cfg["options"]["finetune"], "arcface");
  EXPECT_EQ(cfg["options"]["detect"], false);
  EXPECT_EQ(cfg["loop_epochs"], 2);
  // report.html: the loss and accuracy curves of both epochs, the epochs the
  // fine-tune ran of those it planned (not the linear head's --epochs).
  const std::string report = read_file(dir_ / "whole/report.html");
  for (const char* m : {"plot-loss", "plot-accuracy", "train, epoch 2: ", "2 / 2"})
    EXPECT_TRUE(test::contains(report, m)) << m;
  const std::string csv = read_file(dir_ / "whole/metrics.csv");
  EXPECT_EQ(csv.rfind("epoch,train_loss,train_accuracy,", 0), 0u) << csv;

  // Paused after epoch 1: checkpointed, no model yet; --resume (the plain
  // train verb, the task from config.json) ends with the same weights.
  test::CliResult part = test::graft_cli(with(args("part", "2"), {"--stop-after-epoch", "1"}));
  EXPECT_EQ(part.code, 130) << part.err;
  EXPECT_TRUE(fs::exists(checkpoint_path(dir_ / "part")));
  EXPECT_FALSE(fs::exists(dir_ / "part/face_model.json"));
  test::CliResult resumed = test::graft_cli({"train", "--resume", "--quiet", "--threads", "1", "--out", dir_ / "part"});
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  expect_same_model("whole", "part", 0.0);
  // The same metrics rows (timing columns aside), the first from before the pause.
  auto rows = [&](const std::string& run) {
    std::vector<std::string> out;
    std::istringstream in(read_file(dir_ / (run + "/metrics.csv")));
    for (std::string line; std::getline(in, line);) {
      size_t cut = 0;
      for (int comma = 0; comma < 6 && cut != std::string::npos; ++comma) cut = line.find(',', cut + 1);
      out.push_back(line.substr(0, cut));
    }
    return out;
  };
  EXPECT_EQ(rows("whole"), rows("part"));
  EXPECT_EQ(rows("part").size(), 3u);
}

TEST_F(FaceTask, SigintCheckpointsAndResumeCompletes) {
  // With augmentation every step runs the trunk: slow enough that the
  // signal, sent once epoch 1 is checkpointed, lands mid-run.
  const std::string ckpt = checkpoint_path(dir_ / "run");
  int code = face_task_run(args("run", "6", "face"), dir_ / "sig1", [&] { return fs::exists(ckpt); });
  ASSERT_EQ(code, 130) << read_file(dir_ / "sig1.err");
  EXPECT_TRUE(test::contains(read_file(dir_ / "sig1.err"), "--resume")) << read_file(dir_ / "sig1.err");
  EXPECT_FALSE(fs::exists(dir_ / "run/face_model.json"));
  code = face_task_run({"train", "--task", "face", "--resume", "--quiet", "--threads", "1", "--out", dir_ / "run"},
                       dir_ / "sig2");
  ASSERT_EQ(code, 0) << read_file(dir_ / "sig2.err");
  EXPECT_TRUE(fs::exists(dir_ / "run/face_model.json"));
  const auto model = nlohmann::json::parse(read_file(dir_ / "run/face_model.json"));
  EXPECT_EQ(model["finetune"]["epoch_loss"].size(), 6u);
}

TEST_F(FaceTask, TwoProcessesGiveTheWeightsOfOne) {
  test::CliResult one = test::graft_cli(args("one", "2"));
  ASSERT_EQ(one.code, 0) << one.err;
  int code = face_task_run(with(args("two", "2"), {"--nproc", "2", "--dist-timeout", "60"}), dir_ / "two");
  ASSERT_EQ(code, 0) << read_file(dir_ / "two.err");
  expect_same_model("one", "two", 1e-5);
  EXPECT_TRUE(fs::exists(dir_ / "two/report.html"));
}

}  // namespace
}  // namespace graft
