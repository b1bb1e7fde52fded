// SIGINT to a running `graft train`: the current step finishes, the state is
// checkpointed, the exit code is 130, and --resume continues from there.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "graft/train/checkpoint.h"
#include "graft/weights/safetensors.h"
#include "test_util.h"

namespace graft {
namespace {

// Runs graft with `args`; once `ready()` holds (polled), sends SIGINT.
int run_and_interrupt(const std::vector<std::string>& args, const std::function<bool()>& ready) {
  return test::wait_graft(test::spawn_graft(args), ready);
}

// Optimiser steps recorded in the run's checkpoint (`steps` an epoch).
int64_t progress(const std::string& run, int64_t steps = 8) {
  auto meta = load_safetensors(checkpoint_path(run)).metadata;
  auto j = nlohmann::json::parse(meta.at("graft_trainer_state"));
  return j.at("epochs_done").get<int64_t>() * steps + j.at("step_in_epoch").get<int64_t>();
}

TEST(Signal, InterruptCheckpointsAndResumeContinues) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "data", 2, 16, 32);
  std::vector<std::string> args = {"train", "--data", dir / "data", "--val", dir / "data",
                                   "--backbone", "resnet20", "--strategy", "full", "--epochs",
                                   "400", "--batch-size", "4", "--augment", "none", "--quiet",
                                   "--out", dir / "run"};
  // 400 epochs of 8 steps take minutes. The signal is sent once the run has
  // made progress (its first checkpoint, after epoch 1), not after a fixed
  // time, so the test means the same on a fast or a busy machine.
  const std::string ckpt = checkpoint_path(dir / "run");
  int code = run_and_interrupt(args, [&] { return std::filesystem::exists(ckpt); });
  ASSERT_EQ(code, 130);
  int64_t first = progress(dir / "run");
  EXPECT_GT(first, 0);
  // The resumed run starts from the checkpoint and goes on from there: the
  // signal comes once it has checkpointed an epoch of its own.
  const auto before = std::filesystem::last_write_time(ckpt);
  code = run_and_interrupt({"train", "--resume", "--quiet", "--out", dir / "run"},
                           [&] {
                             std::error_code ec;
                             return std::filesystem::last_write_time(ckpt, ec) != before;
                           });
  EXPECT_EQ(code, 130);
  EXPECT_GT(progress(dir / "run"), first);
}

// The same for masked-LM pretraining, which runs through the same loop.
TEST(Signal, InterruptedPretrainingResumes) {
  test::TempDir dir;
  std::string corpus;
  for (int i = 0; i < 40; ++i) corpus += "the cat sat on the mat .\n";
  test::write_mlm_inputs(dir.path(), test::bert_vocab({"the", "cat", "sat", "on", "mat", "."}),
                         R"({"vocab_size": 11, "hidden_size": 16, "num_hidden_layers": 1,
                             "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 16})",
                         corpus);
  const std::vector<std::string> args = {"pretrain", "--task", "text", "--corpus", dir / "corpus.txt",
                                         "--vocab", dir / "vocab.txt", "--bert-config", dir / "bert.json",
                                         "--max-length", "8", "--batch-size", "4", "--epochs", "2000",
                                         "--quiet", "--threads", "1", "--out", dir / "run"};
  const std::string ckpt = checkpoint_path(dir / "run");
  ASSERT_EQ(run_and_interrupt(args, [&] { return std::filesystem::exists(ckpt); }), 130);
  const int64_t first = progress(dir / "run", 1000);
  EXPECT_GT(first, 0);
  const auto before = std::filesystem::last_write_time(ckpt);
  EXPECT_EQ(run_and_interrupt({"pretrain", "--task", "text", "--resume", "--quiet", "--out", dir / "run"},
                              [&] {
                                std::error_code ec;
                                return std::filesystem::last_write_time(ckpt, ec) != before;
                              }),
            130);
  EXPECT_GT(progress(dir / "run", 1000), first);
}

}  // namespace
}  // namespace graft
