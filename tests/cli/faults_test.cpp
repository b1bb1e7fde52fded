// Runs that survive faults: kill -9 at many moments (writes slowed down so
// that kills land while checkpoints are written), a full disk, an
// unwritable output folder. The run directory must always hold a loadable
// model and a consistent checkpoint, never a truncated file.

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/face/face_train.h"
#include "graft/face/gallery.h"
#include "graft/face/nets.h"
#include "graft/face/pipeline.h"
#include "graft/models/saved_model.h"
#include "graft/text/text_model.h"
#include "graft/train/checkpoint.h"
#include "graft/weights/safetensors.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace graft {
namespace {

struct Child {
  pid_t pid = -1;
};

// The program start() runs (a copy of graft where another user must run it).
std::string g_binary = GRAFT_BINARY;

// Starts graft with `args`; `file_limit` > 0 caps the size of any file it
// writes (RLIMIT_FSIZE: writes past it fail with EFBIG, as on a full disk).
Child start(const std::vector<std::string>& args, const std::string& log,
            const std::vector<std::string>& env = {}, rlim_t file_limit = 0,
            bool as_nobody = false) {
  Child c;
  c.pid = fork();
  if (c.pid == 0) {
    std::vector<char*> argv;
    std::string bin = g_binary;
    argv.push_back(bin.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    if (file_limit > 0) {
      signal(SIGXFSZ, SIG_IGN);
      rlimit rl{file_limit, file_limit};
      setrlimit(RLIMIT_FSIZE, &rl);
    }
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    // Root ignores file permissions: drop to nobody so that they count.
    if (as_nobody && getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(126);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return c;
}

int wait_for(Child c) {
  int status = 0;
  waitpid(c.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int temporaries(const std::string& dir) {
  int n = 0;
  for (const std::string d : {dir, dir + "/checkpoint"}) {
    if (!fs::is_directory(d)) continue;
    for (const auto& e : fs::directory_iterator(d))
      if (e.path().filename().string().find(".tmp") != std::string::npos) ++n;
  }
  return n;
}

// Every file graft keeps in the run parses; returns the epochs checkpointed.
int64_t check_consistent(const std::string& run) {
  if (fs::exists(run + "/model.safetensors")) {
    LoadedModel m = load_model(run);  // throws on a truncated or mismatched file
    EXPECT_TRUE(m.model);
  }
  if (!fs::exists(checkpoint_path(run))) return 0;
  SafetensorsFile f = load_safetensors(checkpoint_path(run));
  auto state = nlohmann::json::parse(f.metadata.at("graft_trainer_state"));
  int64_t done = state.at("epochs_done").get<int64_t>();
  if (fs::exists(run + "/metrics.csv")) {
    std::string csv = read_file(run + "/metrics.csv");
    int64_t rows = std::count(csv.begin(), csv.end(), '\n') - 1;
    // metrics.csv is written just before the checkpoint of the same epoch.
    EXPECT_TRUE(rows == done || rows == done + 1) << rows << " rows, checkpoint after " << done;
  }
  return done;
}

// The temporaries of `file` (".file.tmpNNN") now in `run` or its checkpoint
// folder.
std::set<std::string> temporaries_of(const std::string& run, const std::string& file) {
  std::set<std::string> found;
  for (const std::string d : {run, run + "/checkpoint"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(d, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("." + file + ".tmp", 0) == 0) found.insert(name);
    }
  }
  return found;
}

// Kills `c` with SIGKILL while its `nth` write of `file` is under way (the
// temporary exists; GRAFT_FAULT_WRITE_DELAY_MS holds it there). Driven by the
// run's own progress, not by the clock, so it means the same on a fast or a
// busy machine. Returns false when the process ended before that write.
bool kill_during_write(Child c, const std::string& run, const std::string& file, int nth) {
  std::set<std::string> seen;
  for (;;) {
    for (const auto& t : temporaries_of(run, file)) seen.insert(t);
    if (static_cast<int>(seen.size()) >= nth) {
      kill(c.pid, SIGKILL);
      return wait_for(c) == 128 + SIGKILL;
    }
    int status = 0;
    if (waitpid(c.pid, &status, WNOHANG) == c.pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// A kill at every kind of write of a run, the first save of the model
// included: after each one the run folder holds either a loadable model or
// none (never weights without their description), a consistent checkpoint,
// and --resume (or a fresh start when not even config.json was written)
// carries it on. The run then ends bit-identical to one never interrupted.
// The checkpoint, if any, parses and holds a trainer state.
void check_consistent_checkpoint(const std::string& run) {
  if (!fs::exists(checkpoint_path(run))) return;
  SafetensorsFile f = load_safetensors(checkpoint_path(run));
  EXPECT_TRUE(f.metadata.count("graft_trainer_state"));
}

TEST(Faults, KillNineDuringEveryWriteLeavesALoadableRunThatResumes) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "data", 2, 12, 32);
  test::write_synthetic_image_folder(dir / "test", 2, 4, 32, 3, 7);
  auto fresh = [&](const std::string& run) -> std::vector<std::string> {
    return {"train", "--data", dir / "data", "--val", dir / "data", "--test", dir / "test",
            "--backbone", "resnet20", "--strategy", "full", "--epochs", "3", "--batch-size", "8",
            "--augment", "none", "--threads", "1", "--workers", "1", "--quiet", "--overwrite",
            "--out", run};
  };
  const std::string run = dir / "run";
  const std::vector<std::string> resume = {"train", "--resume", "--threads", "1", "--workers",
                                           "1", "--quiet", "--out", run};
  // Every write is held 250 ms between writing and renaming.
  const std::vector<std::string> slow = {"GRAFT_FAULT_WRITE_DELAY_MS=250"};
  // Each kill lands in the n-th write of that file of one process (a resumed
  // process counts from 1 again).
  const std::vector<std::pair<std::string, int>> plan = {
      {"config.json", 1},     {"model.json", 1},        {"model.safetensors", 1},
      {"metrics.csv", 1},     {"last.safetensors", 1},  {"last.safetensors", 2},
      {"metrics.csv", 2},     {"test_metrics.json", 1}, {"test_predictions.csv", 1},
      {"report.html", 1}};
  int64_t last = 0;
  for (const auto& [file, nth] : plan) {
    SCOPED_TRACE("kill during write " + std::to_string(nth) + " of " + file);
    const bool started = fs::exists(run + "/config.json");
    Child c = start(started ? resume : fresh(run), dir / "log.txt", slow);
    ASSERT_TRUE(kill_during_write(c, run, file, nth))
        << "the run ended before that write: " << read_file(dir / "log.txt");
    EXPECT_FALSE(fs::exists(run + "/model.safetensors") && !fs::exists(run + "/model.json"))
        << "weights without their description";
    int64_t done = check_consistent(run);  // a model, if any, loads
    EXPECT_GE(done, last) << "a checkpoint went backwards";
    last = done;
  }
  std::cout << "[ faults ] image train: " << plan.size() << " kills, each during a write\n";
  // The run then resumes to its end (leftover temporaries are cleared).
  ASSERT_EQ(wait_for(start(resume, dir / "log.txt")), 0) << read_file(dir / "log.txt");
  EXPECT_EQ(check_consistent(run), 3);
  EXPECT_EQ(temporaries(run), 0);
  EXPECT_TRUE(fs::exists(run + "/report.html"));
  // The same run without a kill.
  ASSERT_EQ(wait_for(start(fresh(dir / "straight"), dir / "log2.txt")), 0)
      << read_file(dir / "log2.txt");
  auto got = test::load_named(run + "/model.safetensors");
  auto want = test::load_named(dir / "straight/model.safetensors");
  ASSERT_EQ(got.size(), want.size());
  for (auto& [name, t] : want) EXPECT_TRUE(torch::equal(got.at(name), t)) << name;
  EXPECT_EQ(read_file(run + "/test_predictions.csv"),
            read_file(dir / "straight/test_predictions.csv"));
}

// Kills a run at each write of `plan` in turn: each time the process is
// started with `first` while the run has no config.json yet, else with
// `again` (a resume); `check` then looks at what the kill left.
void kill_at_each_write(const std::vector<std::string>& first,
                        const std::vector<std::string>& again, const std::string& run,
                        const std::vector<std::pair<std::string, int>>& plan,
                        const std::string& log, const std::function<void()>& check) {
  const std::vector<std::string> slow = {"GRAFT_FAULT_WRITE_DELAY_MS=250"};
  for (const auto& [file, nth] : plan) {
    SCOPED_TRACE("kill during write " + std::to_string(nth) + " of " + file);
    Child c = start(fs::exists(run + "/config.json") ? again : first, log, slow);
    ASSERT_TRUE(kill_during_write(c, run, file, nth))
        << "the run ended before that write: " << read_file(log);
    EXPECT_FALSE(fs::exists(run + "/model.safetensors") && !fs::exists(run + "/model.json"))
        << "weights without their description";
    check();
  }
  std::cout << "[ faults ] " << first.at(0) << " " << first.at(2) << ": " << plan.size()
            << " kills, each during a write\n";
}

double max_abs_difference(const std::string& a, const std::string& b) {
  auto x = test::load_named(a), y = test::load_named(b);
  EXPECT_EQ(x.size(), y.size());
  double d = 0;
  for (auto& [name, t] : y)
    if (x.count(name)) d = std::max(d, (x.at(name) - t).abs().max().item<double>());
    else d = INFINITY;
  return d;
}

// The text task's first save had the same window as the image task's.
TEST(Faults, KillNineDuringTextTrainingWritesLeavesALoadableRunThatResumes) {
  if (!test::have_fixture("bert/model.safetensors") || !test::have_fixture("text_model/run/vocab.txt"))
    GTEST_SKIP() << "no reference fixtures";
  test::TempDir dir;
  fs::create_directories(dir / "source");
  fs::copy_file(test::fixture("bert/model.safetensors"), dir / "source/model.safetensors");
  fs::copy_file(test::fixture("bert/config.json"), dir / "source/config.json");
  fs::copy_file(test::fixture("text_model/run/vocab.txt"), dir / "source/vocab.txt");
  std::string csv = "text,label\n";
  for (int i = 0; i < 24; ++i)
    csv += str_cat("w", 20 + i % 7, " w", 30 + i % 5, ",", i % 2 ? "yes" : "no", "\n") +
           str_cat("w", 120 + i % 7, " w", 130 + i % 3, ",", i % 2 ? "no" : "yes", "\n");
  write_file_atomic(dir / "train.csv", csv);
  auto fresh = [&](const std::string& run) -> std::vector<std::string> {
    return {"train", "--task", "text", "--data", dir / "train.csv", "--weights", dir / "source",
            "--epochs", "3", "--batch-size", "16", "--max-length", "16", "--val-split", "0.25",
            "--threads", "1", "--quiet", "--overwrite", "--out", run};
  };
  const std::string run = dir / "run";
  kill_at_each_write(fresh(run), {"train", "--resume", "--threads", "1", "--quiet", "--out", run},
                     run,
                     {{"model.json", 1}, {"model.safetensors", 1}, {"last.safetensors", 1},
                      {"last.safetensors", 2}},
                     dir / "log.txt", [&] {
                       if (fs::exists(run + "/model.safetensors"))
                         EXPECT_NO_THROW(load_text_model(run));
                       check_consistent_checkpoint(run);
                     });
  ASSERT_EQ(wait_for(start({"train", "--resume", "--threads", "1", "--quiet", "--out", run},
                           dir / "log.txt")),
            0)
      << read_file(dir / "log.txt");
  ASSERT_EQ(wait_for(start(fresh(dir / "straight"), dir / "log2.txt")), 0) << read_file(dir / "log2.txt");
  EXPECT_EQ(max_abs_difference(run + "/model.safetensors", dir / "straight/model.safetensors"), 0);
}

// Masked-LM pretraining writes model.json, the weights, metrics.csv and the
// checkpoint at the end of each epoch.
TEST(Faults, KillNineDuringPretrainingWritesLeavesARunThatResumes) {
  test::TempDir dir;
  std::string corpus;
  for (int i = 0; i < 120; ++i) corpus += i % 2 ? "the cat sat on the mat .\n" : "a dog ran to the park .\n";
  test::write_mlm_inputs(dir.path(),
                         test::bert_vocab({"the", "cat", "dog", "sat", "on", "mat", "a", "ran", "to", "park", "."}),
                         R"({"vocab_size": 16, "hidden_size": 16, "num_hidden_layers": 1,
                             "num_attention_heads": 2, "intermediate_size": 32,
                             "max_position_embeddings": 16})",
                         corpus);
  auto fresh = [&](const std::string& run) -> std::vector<std::string> {
    return {"pretrain", "--task", "text", "--corpus", dir / "corpus.txt", "--vocab", dir / "vocab.txt",
            "--bert-config", dir / "bert.json", "--max-length", "16", "--batch-size", "16",
            "--epochs", "3", "--lr", "0.003", "--threads", "1", "--quiet", "--overwrite", "--out", run};
  };
  const std::string run = dir / "run";
  kill_at_each_write(fresh(run), {"pretrain", "--task", "text", "--resume", "--threads", "1", "--quiet",
                                  "--out", run},
                     run,
                     {{"config.json", 1}, {"model.json", 1}, {"model.safetensors", 1},
                      {"metrics.csv", 1}, {"last.safetensors", 1}, {"last.safetensors", 2}},
                     dir / "log.txt", [&] { check_consistent_checkpoint(run); });
  ASSERT_EQ(wait_for(start({"pretrain", "--task", "text", "--resume", "--threads", "1", "--quiet",
                            "--out", run},
                           dir / "log.txt")),
            0)
      << read_file(dir / "log.txt");
  ASSERT_EQ(wait_for(start(fresh(dir / "straight"), dir / "log2.txt")), 0) << read_file(dir / "log2.txt");
  EXPECT_EQ(max_abs_difference(run + "/model.safetensors", dir / "straight/model.safetensors"), 0);
}

// Face training writes the embedder, the head and last face_model.json (which
// names the embedder's hash): a kill anywhere leaves either no face model or
// one that loads. A kill while a gallery is rewritten keeps the old gallery.
TEST(Faults, KillNineDuringFaceTrainingAndEnrolmentKeepsWhatWasThere) {
  const std::string att = test::shared_data("att_faces");
  if (att.empty() || !fs::exists(default_face_models_dir() + "/face_recognition_model-weights_manifest.json"))
    GTEST_SKIP() << "att_faces or the face-api models are absent";
  test::TempDir dir;
  test::copy_att_faces(dir / "a", {1, 2}, {1, 4});
  test::copy_att_faces(dir / "b", {3, 4}, {1, 4});
  const std::string run = dir / "run";
  // A finished run first: each kill is of an --overwrite run replacing it.
  ASSERT_EQ(wait_for(start({"train", "--task", "face", "--no-detect", "--finetune", "arcface",
                            "--finetune-epochs", "1", "--threads", "1", "--quiet",
                            "--data", dir / "a", "--out", run},
                           dir / "log.txt")),
            0)
      << read_file(dir / "log.txt");
  for (const char* file : {"embedder.safetensors", "head.safetensors", "face_model.json"}) {
    SCOPED_TRACE(file);
    Child c = start({"train", "--task", "face", "--no-detect", "--finetune", "cosface",
                     "--finetune-epochs", "1", "--threads", "1", "--quiet", "--overwrite",
                     "--data", dir / "a", "--out", run},
                    dir / "log.txt", {"GRAFT_FAULT_WRITE_DELAY_MS=250"});
    ASSERT_TRUE(kill_during_write(c, run, file, 1)) << read_file(dir / "log.txt");
    if (fs::exists(run + "/face_model.json")) {
      EXPECT_NO_THROW(load_face_classifier(run));
      EXPECT_NO_THROW(FacePipeline pipeline(face_run_options(run)));  // checks the embedder's hash
    }
  }
  // The gallery: enrol a, then b into the same file, killed mid-write.
  const std::string g = dir / "g.json";
  ASSERT_EQ(wait_for(start({"face", "enroll", "--no-detect", "--threads", "1", "--gallery", g, dir / "a"},
                           dir / "log.txt")),
            0)
      << read_file(dir / "log.txt");
  const std::string before = read_file(g);
  Child c = start({"face", "enroll", "--no-detect", "--threads", "1", "--gallery", g, dir / "b"},
                  dir / "log.txt", {"GRAFT_FAULT_WRITE_DELAY_MS=250"});
  ASSERT_TRUE(kill_during_write(c, dir.path(), "g.json", 1)) << read_file(dir / "log.txt");
  EXPECT_EQ(read_file(g), before);
  EXPECT_EQ(read_gallery(g).identities.size(), 2u);
  std::cout << "[ faults ] face train and enroll: 4 kills, each during a write\n";
}

// A search's own files: search.json (its settings, written first) and
// results.json (written last). A kill during either leaves a folder that
// --resume (or, before search.json, a fresh start) carries to the same end.
TEST(Faults, KillNineDuringSearchWritesResumes) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "data", 2, 8, 32);
  write_file_atomic(dir / "space.json", R"({"lr": [0.01, 0.1]})");
  const std::string out = dir / "search";
  const std::vector<std::string> fresh = {
      "search", "--space", dir / "space.json", "--method", "grid", "--data", dir / "data",
      "--val", dir / "data", "--backbone", "resnet20", "--strategy", "full", "--epochs", "1",
      "--batch-size", "8", "--augment", "none", "--threads", "1", "--workers", "1", "--quiet",
      "--overwrite", "--out", out};
  const std::vector<std::string> resume = {"search", "--resume", "--threads", "1", "--workers",
                                           "1", "--quiet", "--out", out};
  for (const char* file : {"search.json", "results.json"}) {
    SCOPED_TRACE(file);
    Child c = start(fs::exists(out + "/search.json") ? resume : fresh, dir / "log.txt",
                    {"GRAFT_FAULT_WRITE_DELAY_MS=250"});
    ASSERT_TRUE(kill_during_write(c, out, file, 1)) << read_file(dir / "log.txt");
    if (fs::exists(out + "/results.json")) EXPECT_NO_THROW(read_json_file(out + "/results.json"));
  }
  ASSERT_EQ(wait_for(start(resume, dir / "log.txt")), 0) << read_file(dir / "log.txt");
  const auto results = read_json_file(out + "/results.json");
  EXPECT_EQ(results.at("trials").size(), 2u);
  EXPECT_EQ(temporaries(out), 0);
  std::cout << "[ faults ] search: 2 kills, each during a write\n";
}

TEST(Faults, FullDiskIsAClearErrorAndKeepsThePreviousCheckpoint) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "data", 2, 8, 32);
  const std::string run = dir / "run";
  std::vector<std::string> args = {"train", "--data", dir / "data", "--val", dir / "data",
                                   "--backbone", "resnet20", "--strategy", "full", "--epochs",
                                   "3", "--batch-size", "8", "--augment", "none", "--quiet",
                                   "--stop-after-epoch", "1", "--out", run};
  ASSERT_EQ(wait_for(start(args, dir / "log1.txt")), 130) << read_file(dir / "log1.txt");
  const std::string before = read_file(checkpoint_path(run));
  // The model file (about 1 MB) no longer fits.
  int code = wait_for(start({"train", "--resume", "--quiet", "--out", run}, dir / "log2.txt", {},
                            200 * 1024));
  std::string log = read_file(dir / "log2.txt");
  EXPECT_EQ(code, 1) << log;
  EXPECT_NE(log.find("error: cannot write '" + run), std::string::npos) << log;
  EXPECT_NE(log.find("File too large"), std::string::npos) << log;
  EXPECT_EQ(read_file(checkpoint_path(run)), before);
  EXPECT_EQ(check_consistent(run), 1);
  EXPECT_EQ(temporaries(run), 0);
  // With room again it resumes and finishes.
  EXPECT_EQ(wait_for(start({"train", "--resume", "--quiet", "--out", run}, dir / "log3.txt")), 0)
      << read_file(dir / "log3.txt");
  EXPECT_EQ(check_consistent(run), 3);
}

TEST(Faults, AReadOnlyRunFolderIsAClearErrorAndKeepsTheCheckpoint) {
  test::TempDir dir;
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  test::write_synthetic_image_folder(dir / "data", 2, 8, 32);
  const std::string run = dir / "run";
  ASSERT_EQ(wait_for(start({"train", "--data", dir / "data", "--val", dir / "data", "--backbone",
                            "resnet20", "--strategy", "full", "--epochs", "3", "--batch-size", "8",
                            "--augment", "none", "--quiet", "--stop-after-epoch", "1", "--out", run},
                           dir / "log1.txt")),
            130);
  const std::string before = read_file(checkpoint_path(run));
  // Everything readable, nothing writable.
  for (const auto& e : fs::recursive_directory_iterator(dir.path()))
    fs::permissions(e.path(), e.is_directory() ? fs::perms::owner_read | fs::perms::owner_exec |
                                                     fs::perms::group_read | fs::perms::group_exec |
                                                     fs::perms::others_read | fs::perms::others_exec
                                               : fs::perms::owner_read | fs::perms::group_read |
                                                     fs::perms::others_read);
  fs::permissions(dir / "log1.txt", fs::perms::all);
  // nobody may not be able to reach the build folder: run a copy from here.
  fs::create_directory(dir / "bin");
  fs::copy_file(GRAFT_BINARY, dir / "bin/graft");
  fs::permissions(dir / "bin", fs::perms::all);
  fs::permissions(dir / "bin/graft", fs::perms::all);
  g_binary = dir / "bin/graft";
  int code = wait_for(start({"train", "--resume", "--quiet", "--threads", "1", "--out", run},
                            dir / "log1.txt", {"HOME=/tmp"}, 0, /*as_nobody=*/true));
  g_binary = GRAFT_BINARY;
  std::string log = read_file(dir / "log1.txt");
  for (const auto& e : fs::recursive_directory_iterator(dir.path()))
    fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add);
  EXPECT_EQ(code, 1) << log;
  EXPECT_NE(log.find("error: cannot write '" + run), std::string::npos) << log;
  EXPECT_NE(log.find("Permission denied"), std::string::npos) << log;
  EXPECT_EQ(read_file(checkpoint_path(run)), before);
  EXPECT_EQ(check_consistent(run), 1);
}

TEST(Faults, AnUnwritableOutputFolderFailsBeforeTraining) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "data", 2, 4, 32);
  write_file_atomic(dir / "file", "x");
  int code = wait_for(start({"train", "--data", dir / "data", "--backbone", "resnet20", "--epochs",
                             "50", "--out", dir / "file/run"},
                            dir / "log.txt"));
  std::string log = read_file(dir / "log.txt");
  EXPECT_EQ(code, 1) << log;
  EXPECT_NE(log.find(dir / "file/run"), std::string::npos) << log;
  // Before any training: no epoch was logged (checked by what the run did,
  // not by the clock, so that it holds on a slow machine too).
  EXPECT_EQ(log.find("epoch 1/"), std::string::npos) << log;
}

}  // namespace
}  // namespace graft
