// graft search: spaces, grid/random/halving, best model, resume, refit.

#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "graft/core/progress.h"
#include "graft/data/image_set.h"
#include "graft/eval/infer.h"
#include "graft/eval/metrics.h"
#include "graft/models/saved_model.h"
#include "graft/select/search.h"
#include "graft/text/text_model.h"
#include "graft/train/trainer.h"
#include "test_util.h"

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace graft {
namespace {

SearchSpace space_of(const std::string& text) {
  return parse_search_space(Json::parse(text), "space.json");
}

TEST(SearchSpace, BadSpacesAreClearErrors) {
  auto err = [](const std::string& text) {
    return test::error_of([&] { space_of(text); });
  };
  EXPECT_NE(err(R"({"learning_rate": [0.1]})").find("'learning_rate' is not a graft train option"),
            std::string::npos);
  EXPECT_NE(err(R"({"lr": []})").find("empty list"), std::string::npos);
  EXPECT_NE(err(R"({"lr": {"uniform": [0.5, 0.1]}})").find("empty range"), std::string::npos);
  EXPECT_NE(err(R"({"lr": {"log_uniform": [0, 0.1]}})").find("positive bounds"), std::string::npos);
  EXPECT_NE(err(R"({"data": ["a", "b"]})").find("cannot be searched"), std::string::npos);
  EXPECT_NE(err(R"({"lr": {"uniform": [0.1, 0.2], "steps": 3}})").find("unknown key 'steps'"),
            std::string::npos);
  EXPECT_NE(err(R"([1, 2])").find("JSON object"), std::string::npos);
  EXPECT_NE(err(R"({"epochs": {"int": [1.5, 3]}})").find("integer bounds"), std::string::npos);
  // Continuous ranges need "num" on a grid.
  auto s = space_of(R"({"lr": {"uniform": [0.1, 0.2]}})");
  EXPECT_NE(test::error_of([&] { grid_points(s, "space.json"); }).find("\"num\""),
            std::string::npos);
}

TEST(SearchSpace, GridIsExactlyTheProduct) {
  auto s = space_of(R"({"lr": {"log_uniform": [0.001, 0.1], "num": 3},
                        "--weight-decay": [0, 0.0001],
                        "epochs": {"int": [2, 6], "step": 2},
                        "source": [{"backbone": "resnet20", "weights": "none"},
                                   {"backbone": "resnet32", "strategy": "full"}]})");
  auto points = grid_points(s, "space.json");
  const std::vector<double> lrs = {0.001, 0.01, 0.1};
  const std::vector<double> wds = {0, 0.0001};
  const std::vector<int64_t> epochs = {2, 4, 6};
  ASSERT_EQ(points.size(), lrs.size() * wds.size() * epochs.size() * 2);
  size_t i = 0;
  std::set<std::string> seen;
  // Dimensions in the order of their keys ("--weight-decay" < "epochs" <
  // "lr" < "source"), the last varying fastest.
  for (double wd : wds)
    for (int64_t e : epochs)
      for (double lr : lrs)
        for (int src = 0; src < 2; ++src) {
          const Json& p = points[i++];
          EXPECT_NEAR(p["lr"].get<double>(), lr, 1e-12);
          EXPECT_EQ(p["weight_decay"].get<double>(), wd);
          EXPECT_EQ(p["epochs"].get<int64_t>(), e);
          EXPECT_EQ(p["backbone"], src == 0 ? "resnet20" : "resnet32");
          EXPECT_EQ(p.contains("strategy"), src == 1);
          seen.insert(p.dump());
        }
  EXPECT_EQ(seen.size(), points.size());
}

TEST(SearchSpace, RandomPointsAreSeededAndInRange) {
  auto s = space_of(R"({"lr": {"log_uniform": [0.0001, 0.1]}, "label_smoothing": {"uniform": [0, 0.2]},
                        "batch_size": {"int": [8, 64], "step": 8}, "augment": ["none", "strong"]})");
  auto a = random_points(s, 50, 7), b = random_points(s, 50, 7), c = random_points(s, 50, 8);
  EXPECT_EQ(Json(a), Json(b));
  EXPECT_NE(Json(a), Json(c));
  int low_lr = 0;
  for (const auto& p : a) {
    double lr = p["lr"].get<double>();
    EXPECT_TRUE(lr >= 0.0001 && lr <= 0.1) << lr;
    low_lr += lr < 0.001;  // a third of the log range
    EXPECT_GE(p["label_smoothing"].get<double>(), 0);
    EXPECT_LE(p["label_smoothing"].get<double>(), 0.2);
    EXPECT_EQ(p["batch_size"].get<int64_t>() % 8, 0);
    EXPECT_TRUE(p["augment"] == "none" || p["augment"] == "strong");
  }
  EXPECT_GT(low_lr, 5);  // log-uniform, not uniform (which would give ~0.5 of 50)
}

TEST(SearchSpace, HalvingRungsAndKeep) {
  EXPECT_EQ(halving_rungs(1, 3, 9), (std::vector<int64_t>{1, 3, 9}));
  EXPECT_EQ(halving_rungs(1, 3, 10), (std::vector<int64_t>{1, 3, 9, 10}));
  EXPECT_EQ(halving_rungs(2, 2, 8), (std::vector<int64_t>{2, 4, 8}));
  EXPECT_EQ(halving_rungs(5, 3, 5), (std::vector<int64_t>{5}));
  EXPECT_EQ(halving_keep(9, 3), 3);
  EXPECT_EQ(halving_keep(10, 3), 3);
  EXPECT_EQ(halving_keep(2, 3), 1);
}

// A small search setting: `trials` random linear probes of `epochs` epochs
// on cached features of a tiny set.
SearchOptions small_search(const test::TempDir& dir, const std::string& out, int64_t epochs = 9,
                           int64_t trials = 6) {
  if (!fs::exists(dir / "train")) {
    test::write_synthetic_image_folder(dir / "train", 3, 12, 32, 3, 1);
    test::write_synthetic_image_folder(dir / "val", 3, 6, 32, 3, 2);
  }
  SearchOptions so;
  so.base.data = dir / "train";
  so.base.val = dir / "val";
  so.base.backbone = "resnet20";
  so.base.epochs = epochs;
  so.base.batch_size = 8;
  so.base.cache_dir = dir / "cache";
  so.base.threads = 2;
  so.base.workers = 1;
  so.base.out = out;
  so.space = Json::parse(R"({"lr": {"log_uniform": [0.0001, 1.0]}, "momentum": [0, 0.9]})");
  so.method = "random";
  so.trials = trials;
  return so;
}

std::vector<double> val_accuracy(const std::string& run) {
  std::vector<double> out;
  std::istringstream in(read_file(run + "/metrics.csv"));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<std::string> c;
    std::stringstream ls(line);
    for (std::string f; std::getline(ls, f, ',');) c.push_back(f);
    out.push_back(std::stod(c[4]));
  }
  return out;
}

double best_up_to(const std::vector<double>& v, size_t epochs) {
  double b = -1;
  for (size_t i = 0; i < std::min(epochs, v.size()); ++i) b = std::max(b, v[i]);
  return b;
}

TEST(Search, HalvingKeepsTheTopThirdAtEachRung) {
  set_quiet(true);
  test::TempDir dir;
  SearchOptions so = small_search(dir, dir / "s");
  so.method = "halving";
  so.trials = 9;
  so.eta = 3;
  so.keep_all = true;
  SearchResult r = run_search(so);
  ASSERT_EQ(r.trials.size(), 9u);
  // Rung 1 (epoch 1): 9 -> 3 go on; rung 2 (epoch 3): 3 -> 1 goes to epoch 9.
  std::vector<std::pair<double, int64_t>> at1, at3;
  int past1 = 0, past3 = 0;
  for (const auto& t : r.trials) {
    auto v = val_accuracy(t.dir);
    at1.push_back({best_up_to(v, 1), t.id});
    past1 += v.size() > 1;
    past3 += v.size() > 3;
    if (v.size() > 3) EXPECT_EQ(v.size(), 9u);
    if (v.size() > 1) at3.push_back({best_up_to(v, 3), t.id});
  }
  EXPECT_EQ(past1, 3);
  EXPECT_EQ(past3, 1);
  // Those that went on are the best at the rung (ties to the lower id).
  auto rank = [](std::vector<std::pair<double, int64_t>> v) {
    std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    return v;
  };
  auto r1 = rank(at1);
  for (size_t i = 0; i < r1.size(); ++i) {
    auto t = std::find_if(r.trials.begin(), r.trials.end(), [&](auto& x) { return x.id == r1[i].second; });
    EXPECT_EQ(t->epochs > 1, i < 3) << "trial " << t->id;
  }
  auto r3 = rank(at3);
  auto top = std::find_if(r.trials.begin(), r.trials.end(), [&](auto& x) { return x.id == r3[0].second; });
  EXPECT_EQ(top->epochs, 9);
  EXPECT_EQ(top->status, "done");
}

TEST(Search, BestModelReproducesItsScoreAndOthersArePruned) {
  set_quiet(true);
  test::TempDir dir;
  SearchOptions so = small_search(dir, dir / "s", 3);
  so.base.test = dir / "val";
  SearchResult r = run_search(so);
  ASSERT_EQ(r.trials.size(), 6u);
  for (size_t i = 1; i < r.trials.size(); ++i) EXPECT_GE(r.trials[i - 1].score, r.trials[i].score);
  EXPECT_EQ(r.best_dir, r.trials[0].dir);
  // The best trial's saved model gives its recorded validation score.
  LoadedModel m = load_model(r.best_dir);
  ImageSet val = align_classes(open_image_set(dir / "val"), m.info.classes, "val");
  Outputs out = infer(*m.model, val, m.info.input, InferOptions{}, false);
  EXPECT_NEAR(compute_metrics(out.values, out.labels, m.info.classes).accuracy, r.trials[0].score,
              1e-12);
  // The test set is the validation set here: the same accuracy again.
  auto tm = Json::parse(read_file(r.best_dir + "/test_metrics.json"));
  EXPECT_NEAR(tm["accuracy"].get<double>(), r.trials[0].score, 1e-12);
  EXPECT_NE(read_file(r.best_dir + "/test_predictions.csv").find("path,label,predicted,confidence\n"),
            std::string::npos);
  for (size_t i = 1; i < r.trials.size(); ++i) {
    EXPECT_TRUE(fs::exists(r.trials[i].dir + "/metrics.csv"));
    EXPECT_FALSE(fs::exists(r.trials[i].dir + "/model.safetensors"));
    EXPECT_FALSE(fs::exists(r.trials[i].dir + "/checkpoint"));
  }
  auto res = Json::parse(read_file(dir / "s/results.json"));
  EXPECT_EQ(res["best"]["trial"].get<int64_t>(), r.trials[0].id);
  EXPECT_EQ(res["trials"].size(), 6u);
  EXPECT_NE(read_file(dir / "s/results.csv").find("rank,trial,score"), std::string::npos);
  // The same seed draws the same trials.
  SearchOptions again = small_search(dir, dir / "s2", 3);
  SearchResult r2 = run_search(again);
  for (size_t i = 0; i < r.trials.size(); ++i) {
    EXPECT_EQ(r2.trials[i].params, r.trials[i].params);
    EXPECT_EQ(r2.trials[i].score, r.trials[i].score);
  }
}

TEST(Search, InterruptedSearchResumesToTheSameResult) {
  set_quiet(true);
  test::TempDir dir;
  SearchOptions whole = small_search(dir, dir / "whole");
  whole.method = "halving";
  whole.keep_all = true;
  SearchResult want = run_search(whole);

  SearchOptions cut = small_search(dir, dir / "cut");
  cut.method = "halving";
  cut.keep_all = true;
  int64_t steps = 0;
  cut.base.should_stop = [&](int64_t) { return ++steps == 20; };  // inside a trial
  SearchResult first = run_search(cut);
  ASSERT_TRUE(first.interrupted);
  cut.base.should_stop = nullptr;
  cut.resume = true;
  SearchResult got = run_search(cut);
  ASSERT_FALSE(got.interrupted);
  ASSERT_EQ(got.trials.size(), want.trials.size());
  for (size_t i = 0; i < want.trials.size(); ++i) {
    EXPECT_EQ(got.trials[i].id, want.trials[i].id);
    EXPECT_EQ(got.trials[i].score, want.trials[i].score);
    EXPECT_EQ(got.trials[i].epochs, want.trials[i].epochs);
    EXPECT_EQ(got.trials[i].status, want.trials[i].status);
  }
  // A different search in the same folder is refused.
  cut.trials = 7;
  EXPECT_NE(test::error_of([&] { run_search(cut); }).find("different search"), std::string::npos);
}

TEST(Search, KilledSearchProcessResumes) {
  test::TempDir dir;
  SearchOptions so = small_search(dir, dir / "ref", 4);
  write_file_atomic(dir / "space.json", so.space.dump());
  std::vector<std::string> args = {"search", "--space", dir / "space.json", "--method", "random",
                                   "--trials", "6", "--data", dir / "train", "--val", dir / "val",
                                   "--backbone", "resnet20", "--epochs", "4", "--batch-size", "8",
                                   "--cache-dir", dir / "cache", "--threads", "2", "--workers", "1",
                                   "--quiet", "--out", dir / "killed"};
  pid_t pid = test::spawn_graft(args, "/dev/null", "/dev/null");
  // Killed once the search has started some trials (or at the latest after 20 s).
  for (int i = 0; i < 400 && !fs::exists(dir / "killed/trials/002/metrics.csv"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_FALSE(fs::exists(dir / "killed/results.json")) << "killed before the search ended";
  ASSERT_EQ(test::wait_graft(test::spawn_graft({"search", "--resume", "--quiet", "--threads", "2", "--out",
                                                 dir / "killed"},
                                                "/dev/null", "/dev/null")),
            0);
  set_quiet(true);
  SearchResult want = run_search(so);
  auto got = Json::parse(read_file(dir / "killed/results.json"));
  ASSERT_EQ(got["trials"].size(), want.trials.size());
  for (size_t i = 0; i < want.trials.size(); ++i) {
    EXPECT_EQ(got["trials"][i]["trial"].get<int64_t>(), want.trials[i].id);
    EXPECT_EQ(got["trials"][i]["score"].get<double>(), want.trials[i].score);
  }
}

TEST(Search, ParallelJobsGiveTheSameResults) {
  set_quiet(true);
  test::TempDir dir;
  SearchResult a = run_search(small_search(dir, dir / "one", 3, 4));
  SearchOptions two = small_search(dir, dir / "two", 3, 4);
  two.jobs = 2;
  two.executable = GRAFT_BINARY;
  SearchResult b = run_search(two);
  ASSERT_EQ(a.trials.size(), b.trials.size());
  for (size_t i = 0; i < a.trials.size(); ++i) {
    EXPECT_EQ(a.trials[i].id, b.trials[i].id);
    EXPECT_NEAR(a.trials[i].score, b.trials[i].score, 1e-12);
  }
}

TEST(Search, RefitTrainsTheBestSettingsOnTrainAndValidation) {
  set_quiet(true);
  test::TempDir dir;
  SearchOptions so = small_search(dir, dir / "s", 3, 3);
  so.refit = true;
  SearchResult r = run_search(so);
  ASSERT_EQ(r.refit_dir, dir / "s/refit");
  auto cfg = Json::parse(read_file(r.refit_dir + "/config.json"));
  EXPECT_EQ(cfg["counts"]["train"].get<int64_t>(), 3 * 12 + 3 * 6);
  EXPECT_EQ(cfg["counts"]["val"].get<int64_t>(), 0);
  EXPECT_EQ(cfg["options"]["epochs"].get<int64_t>(), r.trials[0].best_epoch);
  EXPECT_EQ(cfg["options"]["lr"], r.trials[0].params["lr"]);
  EXPECT_TRUE(fs::exists(r.refit_dir + "/model.safetensors"));
}

// Issue 19's methods are searchable like any option, and "none" in the space
// is the supervised baseline: that trial reads no --unlabeled, and scores
// what a plain supervised run of its settings scores.
TEST(Search, AdaptationIsSearchableWithANoneBaseline) {
  set_quiet(true);
  test::TempDir dir;
  SearchOptions so = small_search(dir, dir / "s", 1);
  so.base.strategy = "full";
  so.base.unlabeled = dir / "val";  // its class folders are not read as labels
  so.base.domain_hidden = 8;
  so.space = Json::parse(R"({"adapt": ["none", "dann"]})");
  so.method = "grid";
  so.keep_all = true;
  SearchResult r = run_search(so);
  ASSERT_EQ(r.trials.size(), 2u);
  for (const auto& t : r.trials) {
    EXPECT_EQ(t.status, "done") << t.error;
    const std::string method = t.params.at("adapt");
    const Json config = Json::parse(read_file(t.dir + "/config.json"));
    EXPECT_EQ(config.at("options").at("adapt"), method);
    EXPECT_EQ(config.at("options").at("unlabeled").get<std::string>().empty(), method == "none") << method;
    const std::string csv = read_file(t.dir + "/metrics.csv");
    EXPECT_EQ(test::contains(csv.substr(0, csv.find('\n')), "domain_accuracy"), method == "dann") << method;
    if (method != "none") continue;
    TrainOptions plain = so.base;
    plain.unlabeled.clear();
    plain.out = dir / "plain";
    train(plain);
    EXPECT_DOUBLE_EQ(t.score, val_accuracy(dir / "plain").at(0));
  }
}

TEST(Search, BadTrialsFailBeforeAnyTrialStarts) {
  set_quiet(true);
  test::TempDir dir;
  SearchOptions so = small_search(dir, dir / "s");
  so.space = Json::parse(R"({"lr": ["fast"]})");
  EXPECT_NE(test::error_of([&] { run_search(so); }).find("'lr' has the wrong type"), std::string::npos);
  so.space = Json::parse(R"({"lr": [0.1, -1]})");
  EXPECT_NE(test::error_of([&] { run_search(so); }).find("--lr: -1"), std::string::npos);
  so.space = Json::parse(R"({"weights": ["/nonexistent.pth"]})");
  EXPECT_NE(test::error_of([&] { run_search(so); }).find("do not exist"), std::string::npos);
  so.space = Json::parse(R"({"epochs": [1, 2]})");
  so.method = "halving";
  EXPECT_NE(test::error_of([&] { run_search(so); }).find("cannot be searched with --method halving"),
            std::string::npos);
  so.method = "random";
  so.space = Json::parse(R"({"lr": [0.1]})");
  so.base.classes = {"class0"};
  EXPECT_NE(test::error_of([&] { run_search(so); }).find("1 class"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "s")) << "no trial was started";
}

}  // namespace
}  // namespace graft

namespace graft {
namespace {

// A text search with --test tests its best trial on the text test file (it
// used to open the test file as an image folder). The test accuracy is
// checked against the best model's own predictions on the file's rows.
TEST(Search, TextSearchTestsTheBestTrialOnTheTextTestSet) {
  if (!test::have_fixture("text_model/run/vocab.txt")) GTEST_SKIP() << "no reference fixtures";
  set_quiet(true);
  test::TempDir dir;
  auto write_set = [&](const std::string& path, int rows, int shift) {
    std::string csv = "text,label\n";
    for (int i = 0; i < rows; ++i)
      csv += str_cat("w", 20 + (i + shift) % 9, " w", 40 + (i * 3 + shift) % 7, ",alpha\n") +
             str_cat("w", 120 + (i + shift) % 9, " w", 140 + (i * 5 + shift) % 7, ",beta\n");
    write_file_atomic(path, csv);
  };
  write_set(dir / "train.csv", 20, 0);
  write_set(dir / "test.csv", 6, 3);
  SearchOptions so;
  so.base = default_train_options("text", "tfidf");
  so.base.data = dir / "train.csv";
  so.base.test = dir / "test.csv";
  so.base.vocab = test::fixture("text_model/run/vocab.txt");
  so.base.val_split = 0.25;
  so.base.epochs = 3;
  so.base.threads = 1;
  so.base.out = dir / "search";
  so.executable = GRAFT_BINARY;
  so.space = Json::parse(R"({"lr": [0.01, 0.1]})");
  so.method = "grid";
  SearchResult r = run_search(so);
  ASSERT_FALSE(r.best_dir.empty());
  auto tm = Json::parse(read_file(r.best_dir + "/test_metrics.json"));
  EXPECT_EQ(tm["count"].get<int64_t>(), 12);
  // The best model's predictions, one text at a time.
  TextModel m = load_text_model(r.best_dir);
  int64_t right = 0;
  std::istringstream rows(read_file(dir / "test.csv"));
  std::string line;
  std::getline(rows, line);
  while (std::getline(rows, line)) {
    const size_t comma = line.rfind(',');
    torch::Tensor logits = m.logits({m.encode(line.substr(0, comma))});
    const std::string label = line.substr(comma + 1);
    right += m.info.classes[static_cast<size_t>(logits.argmax(1).item<int64_t>())] == label;
  }
  EXPECT_DOUBLE_EQ(tm["accuracy"].get<double>(), right / 12.0);
  const std::string predictions = read_file(r.best_dir + "/test_predictions.csv");
  EXPECT_EQ(std::count(predictions.begin(), predictions.end(), '\n'), 13);
  EXPECT_NE(predictions.find(dir / "test.csv:2,"), std::string::npos) << predictions;
}

}  // namespace
}  // namespace graft
