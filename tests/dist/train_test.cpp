// Data-parallel training over c10d (TCPStore + ProcessGroupGloo) with the
// built graft binary: two workers over loopback end with the weights of one
// process with the same global batch and seed; a distributed run pauses and
// resumes; a dying worker, a wrong address or port, a disagreeing world size
// and a port in use end every worker with a clear error, never a hang.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/files.h"
#include "graft/dist/launch.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

struct Proc {
  int code = -1;  // exit code, or 128 + signal
  std::string out, err;
};

struct Running {
  pid_t pid = -1;
  std::string out_file, err_file;
};

// Starts the graft binary with extra environment variables; stdout and
// stderr go to files next to `log_prefix`.
Running spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
              const std::string& log_prefix) {
  Running r{-1, log_prefix + ".out", log_prefix + ".err"};
  r.pid = test::spawn_graft(args, r.out_file, r.err_file, env);
  return r;
}

// Waits for the process. A guard far above any --dist-timeout used here
// turns a hang into a failed test instead of a stuck suite.
Proc wait_proc(const Running& r, int guard_s = 300) {
  Proc p;
  p.code = test::wait_graft(r.pid, {}, guard_s);
  p.out = read_file(r.out_file);
  p.err = read_file(r.err_file);
  return p;
}

Proc run(const std::vector<std::string>& args, const std::vector<std::string>& env,
         const std::string& log_prefix) {
  return wait_proc(spawn(args, env, log_prefix));
}

using test::contains;

// The largest rel_error (max |a - b| / (1 + max |b|)) over the tensors of two
// weight files. (A random-init ResNet-20 gives features in the hundreds, so
// the head's weights are large and an absolute tolerance would mean little.)
double max_rel_diff(const std::string& a, const std::string& b) {
  auto ta = test::load_named(a), tb = test::load_named(b);
  EXPECT_EQ(ta.size(), tb.size());
  double worst = 0;
  for (auto& [name, t] : ta) {
    EXPECT_TRUE(tb.count(name)) << name;
    if (!tb.count(name)) continue;
    worst = std::max(worst, test::rel_error(t, tb[name]));
  }
  return worst;
}

class DistTrain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    // 24 training images: a global batch of 8 divides them (no padding), so
    // the padded shards of two workers are exactly the batches of one.
    test::write_synthetic_image_folder(*dir_ / "data", 3, 8, 32);
    test::write_synthetic_image_folder(*dir_ / "val", 3, 3, 32, 3, 42);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  // Linear probe with a linear head (no BatchNorm or dropout in what trains,
  // so one process and two are the same computation); tiny buckets so that
  // the head's two tensors are two all-reduce buckets.
  static std::vector<std::string> args(const std::string& out, const std::string& extra_cache,
                                       const std::string& epochs = "3") {
    std::vector<std::string> a = {"train", "--data", *dir_ / "data", "--val", *dir_ / "val",
                                  "--backbone", "resnet20", "--weights", "none",
                                  "--strategy", "linear", "--head", "linear", "--epochs", epochs,
                                  "--batch-size", "8", "--lr", "0.01", "--seed", "5",
                                  "--bucket-mb", "0.001", "--quiet", "--out", out};
    if (extra_cache.empty()) a.push_back("--no-feature-cache");
    else a.insert(a.end(), {"--cache-dir", extra_cache});
    return a;
  }
  static std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& more) {
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  static test::TempDir* dir_;
};
test::TempDir* DistTrain::dir_ = nullptr;

void expect_same_metrics(const std::string& one, const std::string& two) {
  // metrics.csv: epoch, train_loss, train_acc, val_loss, val_acc, lr, ... (time
  // columns differ): validation reduced over the ranks equals one process.
  auto rows = [](const std::string& run) {
    std::vector<std::vector<std::string>> r;
    std::stringstream ss(read_file(run + "/metrics.csv"));
    std::string line;
    while (std::getline(ss, line)) {
      std::vector<std::string> cells;
      std::stringstream ls(line);
      std::string c;
      while (std::getline(ls, c, ',')) cells.push_back(c);
      r.push_back(cells);
    }
    return r;
  };
  auto a = rows(one), b = rows(two);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GE(a.size(), 2u);
  for (size_t i = 1; i < a.size(); ++i)
    for (size_t c = 1; c <= 5; ++c)
      EXPECT_NEAR(std::stod(a[i][c]), std::stod(b[i][c]), 1e-5 * (1 + std::abs(std::stod(b[i][c]))))
          << a[0][c] << " epoch " << i;
}

TEST_F(DistTrain, TwoProcessesMatchOneProcessWithoutFeatureCache) {
  Proc one = run(args(*dir_ / "one", ""), {}, *dir_ / "one");
  ASSERT_EQ(one.code, 0) << one.err;
  Proc two = run(with(args(*dir_ / "two", ""), {"--nproc", "2", "--dist-timeout", "60"}), {},
                 *dir_ / "two");
  ASSERT_EQ(two.code, 0) << two.err;
  // Only rank 0 prints the summary and writes the run.
  auto s1 = nlohmann::json::parse(one.out), s2 = nlohmann::json::parse(two.out);
  EXPECT_NEAR(s1["val_accuracy"].get<double>(), s2["val_accuracy"].get<double>(), 1e-9);
  double diff = max_rel_diff(*dir_ / "one/model.safetensors", *dir_ / "two/model.safetensors");
  std::cout << "[ dist    ] max rel |w(1 process) - w(2 processes)| = " << diff << "\n";
  EXPECT_LT(diff, 1e-5);
  expect_same_metrics(*dir_ / "one", *dir_ / "two");
  // The cores are split between the two local workers.
  auto config = nlohmann::json::parse(read_file(*dir_ / "two/config.json"));
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  EXPECT_EQ(config["options"]["threads"].get<int>(), std::max(1, cores / 2));
}

TEST_F(DistTrain, TwoProcessesMatchOneProcessWithShardedFeatureCache) {
  // Each worker computes the features of half the images; they are gathered
  // and rank 0 stores them in the cache.
  Proc one = run(args(*dir_ / "c1", *dir_ / "cache1"), {}, *dir_ / "c1");
  ASSERT_EQ(one.code, 0) << one.err;
  Proc two = run(with(args(*dir_ / "c2", *dir_ / "cache2"), {"--nproc", "2"}), {}, *dir_ / "c2");
  ASSERT_EQ(two.code, 0) << two.err;
  double diff = max_rel_diff(*dir_ / "c1/model.safetensors", *dir_ / "c2/model.safetensors");
  std::cout << "[ dist    ] feature cache: max rel |w(1) - w(2)| = " << diff << "\n";
  EXPECT_LT(diff, 1e-5);
  expect_same_metrics(*dir_ / "c1", *dir_ / "c2");
  // The gathered cache holds the same features as one process computed.
  auto files = [](const std::string& d) {
    std::vector<std::string> f;
    for (auto& e : fs::directory_iterator(d)) f.push_back(e.path().string());
    std::sort(f.begin(), f.end());
    return f;
  };
  auto f1 = files(*dir_ / "cache1"), f2 = files(*dir_ / "cache2");
  ASSERT_EQ(f1.size(), 2u);  // train and val
  ASSERT_EQ(f2.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(fs::path(f1[i]).filename(), fs::path(f2[i]).filename());
    auto a = test::load_named(f1[i]), b = test::load_named(f2[i]);
    EXPECT_TRUE(torch::equal(a["positions"], b["positions"]));
    EXPECT_TRUE(torch::equal(a["labels"], b["labels"]));
    EXPECT_LT(test::rel_error(a["features"], b["features"]), 1e-5);
  }
}

TEST_F(DistTrain, PausedDistributedRunResumesToTheSameWeights) {
  auto base = with(args(*dir_ / "full", *dir_ / "cache3"), {"--nproc", "2"});
  Proc full = run(base, {}, *dir_ / "full");
  ASSERT_EQ(full.code, 0) << full.err;
  Proc paused = run(with(args(*dir_ / "part", *dir_ / "cache3"),
                         {"--nproc", "2", "--stop-after-epoch", "1"}), {}, *dir_ / "part");
  ASSERT_EQ(paused.code, 130) << paused.err;
  EXPECT_FALSE(fs::exists(*dir_ / "part/test_metrics.json"));
  Proc resumed = run({"train", "--resume", "--quiet", "--out", *dir_ / "part", "--nproc", "2"}, {},
                     *dir_ / "resumed");
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_LT(max_rel_diff(*dir_ / "full/model.safetensors", *dir_ / "part/model.safetensors"), 1e-6);
  expect_same_metrics(*dir_ / "full", *dir_ / "part");
}

TEST_F(DistTrain, DyingWorkerStopsTheOthersWithAClearErrorAndARerunSucceeds) {
  const std::string port = std::to_string(dist::free_port());
  auto a = args(*dir_ / "dies", "", "50");
  a = with(a, {"--nproc", "2", "--master-port", port, "--dist-timeout", "60"});
  // Rank 1 is killed (SIGKILL, as a crash) after its 5th step.
  Proc p = run(a, {"GRAFT_FAULT_DIST_KILL=1:5"}, *dir_ / "dies");
  EXPECT_NE(p.code, 0);
  EXPECT_TRUE(contains(p.err, "worker rank 1")) << p.err;
  EXPECT_TRUE(contains(p.err, "killed by signal 9")) << p.err;
  // Rank 0 notices the lost peer by itself (not by the launcher's SIGKILL)
  // and says what happened.
  EXPECT_TRUE(contains(p.err, "failed on rank 0 of 2")) << p.err;
  EXPECT_TRUE(contains(p.err, "another worker has probably stopped")) << p.err;
  // The same port works again at once.
  auto b = args(*dir_ / "dies", "");
  b = with(b, {"--nproc", "2", "--master-port", port, "--overwrite"});
  Proc again = run(b, {}, *dir_ / "again");
  EXPECT_EQ(again.code, 0) << again.err;
}

std::vector<std::string> worker_env(int rank, int world, int port,
                                    const std::string& addr = "127.0.0.1") {
  return {"RANK=" + std::to_string(rank), "LOCAL_RANK=" + std::to_string(rank),
          "WORLD_SIZE=" + std::to_string(world), "LOCAL_WORLD_SIZE=" + std::to_string(world),
          "MASTER_ADDR=" + addr, "MASTER_PORT=" + std::to_string(port)};
}

TEST_F(DistTrain, TorchrunStyleEnvironmentWorks) {
  // Two workers started by hand with torchrun's variables, no --nproc.
  int port = dist::free_port();
  auto a = args(*dir_ / "env", "", "1");
  Running r0 = spawn(a, worker_env(0, 2, port), *dir_ / "env0");
  Running r1 = spawn(a, worker_env(1, 2, port), *dir_ / "env1");
  Proc p0 = wait_proc(r0), p1 = wait_proc(r1);
  EXPECT_EQ(p0.code, 0) << p0.err;
  EXPECT_EQ(p1.code, 0) << p1.err;
  EXPECT_TRUE(p1.out.empty()) << p1.out;  // only rank 0 reports
  EXPECT_TRUE(fs::exists(*dir_ / "env/model.safetensors"));
}

TEST_F(DistTrain, TwoNodeLaunchersMatchOneProcess) {
  // The multi-machine flags, with both "machines" on loopback: two launchers
  // of one worker each, node 0 hosting the rendezvous.
  Proc one = run(args(*dir_ / "n1", "", "2"), {}, *dir_ / "n1");
  ASSERT_EQ(one.code, 0) << one.err;
  const std::string port = std::to_string(dist::free_port());
  std::vector<Running> nodes;
  for (int node = 0; node < 2; ++node)
    nodes.push_back(spawn(with(args(*dir_ / "n2", "", "2"),
                               {"--nproc", "1", "--nnodes", "2", "--node-rank", std::to_string(node),
                                "--master-addr", "127.0.0.1", "--master-port", port}),
                          {}, *dir_ / ("node" + std::to_string(node))));
  Proc p0 = wait_proc(nodes[0]), p1 = wait_proc(nodes[1]);
  ASSERT_EQ(p0.code, 0) << p0.err;
  ASSERT_EQ(p1.code, 0) << p1.err;
  EXPECT_LT(max_rel_diff(*dir_ / "n1/model.safetensors", *dir_ / "n2/model.safetensors"), 1e-5);
}

TEST_F(DistTrain, WrongMasterPortOrAddressIsAClearError) {
  int port = dist::free_port(), wrong = dist::free_port();
  auto a = with(args(*dir_ / "wrongport", ""), {"--dist-timeout", "5"});
  Running r0 = spawn(a, worker_env(0, 2, port), *dir_ / "wp0");
  Running r1 = spawn(a, worker_env(1, 2, wrong), *dir_ / "wp1");
  Proc p0 = wait_proc(r0), p1 = wait_proc(r1);
  EXPECT_EQ(p1.code, 1);
  EXPECT_TRUE(contains(p1.err, "cannot reach the rendezvous server at 127.0.0.1:" +
                                   std::to_string(wrong))) << p1.err;
  EXPECT_EQ(p0.code, 1);
  EXPECT_TRUE(contains(p0.err, "rank 1 did not join the rendezvous")) << p0.err;

  Proc bad = run(with(args(*dir_ / "wrongaddr", ""), {"--dist-timeout", "5"}),
                 worker_env(1, 2, port, "no-such-host.invalid"), *dir_ / "wa");
  EXPECT_EQ(bad.code, 1);
  EXPECT_TRUE(contains(bad.err, "cannot reach the rendezvous server at no-such-host.invalid:"))
      << bad.err;
}

TEST_F(DistTrain, WorldSizeDisagreementIsAClearError) {
  int port = dist::free_port();
  auto a = with(args(*dir_ / "ws", ""), {"--dist-timeout", "20"});
  Running r0 = spawn(a, worker_env(0, 2, port), *dir_ / "ws0");
  Running r1 = spawn(a, worker_env(1, 3, port), *dir_ / "ws1");
  Proc p0 = wait_proc(r0), p1 = wait_proc(r1);
  EXPECT_EQ(p0.code, 1);
  EXPECT_TRUE(contains(p0.err, "rank 1 has world size 3 but rank 0 has 2")) << p0.err;
  EXPECT_EQ(p1.code, 1);
  EXPECT_TRUE(contains(p1.err, "this worker has world size 3 but rank 0 has 2")) << p1.err;
}

TEST_F(DistTrain, WorkersWithDifferentOptionsIsAClearError) {
  int port = dist::free_port();
  auto a = with(args(*dir_ / "opts", "", "1"), {"--dist-timeout", "20"});
  auto b = a;
  b[std::find(b.begin(), b.end(), "--lr") - b.begin() + 1] = "0.02";
  Running r0 = spawn(a, worker_env(0, 2, port), *dir_ / "opts0");
  Running r1 = spawn(b, worker_env(1, 2, port), *dir_ / "opts1");
  Proc p0 = wait_proc(r0), p1 = wait_proc(r1);
  EXPECT_EQ(p1.code, 2);
  EXPECT_TRUE(contains(p1.err, "must use the same options: lr is 0.02 here but 0.01 on rank 0"))
      << p1.err;
  EXPECT_NE(p0.code, 0);  // rank 0 loses its peer
}

TEST_F(DistTrain, PortInUseIsAClearError) {
  // Something else listens on the port.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = 0;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  Proc p = run(with(args(*dir_ / "inuse", ""), {"--nproc", "2", "--master-port", port,
                                                "--dist-timeout", "5"}),
               {}, *dir_ / "inuse");
  close(fd);
  EXPECT_NE(p.code, 0);
  EXPECT_TRUE(contains(p.err, "port is already in use")) << p.err;
  EXPECT_TRUE(contains(p.err, "worker rank 0")) << p.err;
}

}  // namespace
}  // namespace graft

namespace graft {
namespace {

// The text task data-parallel: a BERT (the reference fixture) fine-tuned on
// a small CSV, two workers against one. 27 training texts in global batches
// of 8: the last batch has 3 texts, 2 on one rank and 1 on the other, which
// the loss weighting must average exactly as one process does.
class DistText : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_fixture("bert/model.safetensors") || !test::have_fixture("text_model/run/vocab.txt"))
      GTEST_SKIP() << "no reference fixtures";
    std::ofstream f(dir_ / "train.csv");
    f << "text,label\n";
    for (int i = 0; i < 10; ++i)
      for (int k = 0; k < 3; ++k) {
        f << "\"";
        for (int w = 0; w < 2 + (i * 7 + k * 3) % 13; ++w) f << (w ? " w" : "w") << 20 + 100 * k + (i * 11 + w * 5) % 40;
        f << "\"," << (k == 0 ? "a" : k == 1 ? "b" : "c") << "\n";
      }
    f.close();
    fs::create_directories(dir_ / "source");
    fs::copy_file(test::fixture("bert/model.safetensors"), dir_ / "source/model.safetensors");
    fs::copy_file(test::fixture("bert/config.json"), dir_ / "source/config.json");
    fs::copy_file(test::fixture("text_model/run/vocab.txt"), dir_ / "source/vocab.txt");
  }
  std::vector<std::string> args(const std::string& out, std::vector<std::string> more) {
    std::vector<std::string> a = {"train", "--task", "text", "--data", dir_ / "train.csv",
                                  "--weights", dir_ / "source", "--val-split", "0.1",
                                  "--max-length", "32", "--epochs", "2",
                                  "--optimizer", "sgd", "--momentum", "0", "--lr", "0.2",
                                  "--dropout", "0", "--seed", "3", "--bucket-mb", "0.05",
                                  "--quiet", "--out", out};
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  test::TempDir dir_;
};

TEST_F(DistText, TwoProcessesMatchOneProcess) {
  for (const auto& [name, extra] :
       std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"full", {"--batch-size", "8"}},
           {"accum", {"--grad-accum", "2", "--batch-size", "4"}},
           {"linear", {"--batch-size", "8", "--strategy", "linear"}}}) {
    SCOPED_TRACE(name);
    Proc one = run(args(dir_ / (name + "1"), extra), {}, dir_ / (name + "1"));
    ASSERT_EQ(one.code, 0) << one.err;
    auto two_args = args(dir_ / (name + "2"), extra);
    two_args.insert(two_args.end(), {"--nproc", "2", "--dist-timeout", "60"});
    Proc two = run(two_args, {}, dir_ / (name + "2"));
    ASSERT_EQ(two.code, 0) << two.err;
    double diff = max_rel_diff(dir_ / (name + "1/model.safetensors"), dir_ / (name + "2/model.safetensors"));
    std::cout << "[ dist    ] text " << name << ": max rel |w(1) - w(2)| = " << diff << "\n";
    EXPECT_LT(diff, 1e-5);
    auto src = test::load_named(dir_ / "source/model.safetensors");
    auto w = test::load_named(dir_ / (name + "1/model.safetensors"));
    if (name != "linear")  // it trained the encoder
      EXPECT_GT((w["bert.encoder.layer.2.output.dense.weight"] - src["bert.encoder.layer.2.output.dense.weight"])
                    .abs().max().item<double>(), 1e-4);
    expect_same_metrics(dir_ / (name + "1"), dir_ / (name + "2"));
  }
}

}  // namespace
}  // namespace graft

namespace graft {
namespace {

// Masked-LM pretraining data-parallel: a tiny BERT (dropout off, so both
// runs draw nothing at random but the masks, which are per step) on a small
// corpus; 2 workers against 1, and the run folder's report.
class DistMlm : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string corpus;
    for (int i = 0; i < 50; ++i) corpus += "the cat sat on the mat .\na dog ran to the park .\n";
    test::write_mlm_inputs(dir_.path(),
                           test::bert_vocab({"the", "cat", "dog", "sat", "on", "mat", "a", "ran", "to", "park", "."}),
                           R"({"vocab_size": 16, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                               "intermediate_size": 32, "max_position_embeddings": 16, "hidden_dropout_prob": 0,
                               "attention_probs_dropout_prob": 0})",
                           corpus);
  }
  std::vector<std::string> args(const std::string& out) {
    return {"pretrain", "--task", "text", "--corpus", dir_ / "corpus.txt", "--vocab", dir_ / "vocab.txt",
            "--bert-config", dir_ / "bert.json", "--max-length", "16", "--batch-size", "8", "--epochs", "2",
            "--lr", "0.5", "--seed", "5", "--threads", "1", "--quiet", "--out", out,
            // Adam turns float-level differences of near-zero gradients into
            // steps of +-lr; plain SGD keeps them float-level (as DistText).
            "--optimizer", "sgd", "--momentum", "0"};
  }
  test::TempDir dir_;
};

TEST_F(DistMlm, TwoProcessesMatchOneProcessAndTheRunHasAReport) {
  Proc one = run(args(dir_ / "one"), {}, dir_ / "one");
  ASSERT_EQ(one.code, 0) << one.err;
  auto two_args = args(dir_ / "two");
  two_args.insert(two_args.end(), {"--nproc", "2", "--dist-timeout", "60"});
  Proc two = run(two_args, {}, dir_ / "two");
  ASSERT_EQ(two.code, 0) << two.err;
  double diff = max_rel_diff(dir_ / "one/model.safetensors", dir_ / "two/model.safetensors");
  std::cout << "[ dist    ] mlm: max rel |w(1) - w(2)| = " << diff << "\n";
  EXPECT_LT(diff, 1e-5);
  expect_same_metrics(dir_ / "one", dir_ / "two");
  // The report of a pretraining: its epochs and masked-token metrics.
  const std::string html = read_file(dir_ / "one/report.html");
  EXPECT_TRUE(contains(html, "mlm")) << html.substr(0, 400);
  EXPECT_TRUE(contains(html, "val_accuracy") || contains(html, "validation")) << html.substr(0, 400);
}

}  // namespace
}  // namespace graft
