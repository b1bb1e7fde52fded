// SIGINT to a running `graft train`: the current step finishes, the state is
// checkpointed, the exit code is 130, and --resume continues from there.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "graft/train/checkpoint.h"
#include "graft/weights/safetensors.h"
#include "test_util.h"

namespace graft {
namespace {

int run_and_wait(const std::vector<std::string>& args, int signal_after_ms) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    std::string bin = GRAFT_BINARY;
    argv.push_back(bin.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  if (signal_after_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(signal_after_ms));
    kill(pid, SIGINT);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Optimiser steps recorded in the run's checkpoint (8 steps an epoch).
int64_t progress(const std::string& run) {
  auto meta = load_safetensors(checkpoint_path(run)).metadata;
  auto j = nlohmann::json::parse(meta.at("graft_trainer_state"));
  return j.at("epochs_done").get<int64_t>() * 8 + j.at("step_in_epoch").get<int64_t>();
}

TEST(Signal, InterruptCheckpointsAndResumeContinues) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "data", 2, 16, 32);
  std::vector<std::string> args = {"train", "--data", dir / "data", "--val", dir / "data",
                                   "--backbone", "resnet20", "--strategy", "full", "--epochs",
                                   "400", "--batch-size", "4", "--augment", "none", "--quiet",
                                   "--out", dir / "run"};
  // 400 epochs of 8 steps take minutes: the signal always lands mid-run,
  // after start-up (which takes under a second).
  int code = run_and_wait(args, 3000);
  ASSERT_EQ(code, 130);
  int64_t first = progress(dir / "run");
  EXPECT_GT(first, 0);
  // The resumed run starts from the checkpoint and goes on from there.
  code = run_and_wait({"train", "--resume", "--quiet", "--out", dir / "run"}, 3000);
  EXPECT_EQ(code, 130);
  EXPECT_GT(progress(dir / "run"), first);
}

}  // namespace
}  // namespace graft
