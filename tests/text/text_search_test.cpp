// graft search --task text with the issue-18 backbones (command line, as a
// user runs it): textcnn with Kim's three embedding modes as one searchable
// choice, and use-lite with its strategies. Each trial runs the settings it
// was given (read back from its config.json), and the best trial's recorded
// validation accuracy equals `graft eval` of the saved best run on the
// validation file. Bad choices are refused before any trial runs.

#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "test_util.h"
#include "text_sets.h"

namespace graft {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;


// `graft search ... --out dir/NAME`; its results.json.
Json text_search_run(const test::TempDir& dir, const std::string& name, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"search", "--task", "text", "--data", dir / "train.csv", "--val", dir / "val.csv",
                                   "--method", "grid", "--epochs", "1", "--batch-size", "8", "--threads", "1",
                                   "--out", dir / name, "--quiet"};
  args.insert(args.end(), extra.begin(), extra.end());
  test::CliResult r = test::graft_cli(args);
  EXPECT_EQ(r.code, 0) << r.err;
  if (r.code != 0) return Json();
  return Json::parse(read_file(dir / name + "/results.json"));
}

// The best run evaluated again by `graft eval` on the validation file.
double text_search_eval(const test::TempDir& dir, const std::string& run) {
  test::CliResult e = test::graft_cli({"eval", run, "--data", dir / "val.csv", "--threads", "1"});
  EXPECT_EQ(e.code, 0) << e.err;
  return e.code == 0 ? Json::parse(e.out)["accuracy"].get<double>() : -1;
}

TEST(TextSearch, TextCnnEmbeddingModesAreOneChoiceAndTheBestRunReproducesItsScore) {
  if (!test::have_fixture("textcnn/glove_small.json")) GTEST_SKIP() << "no textcnn fixtures";
  test::TempDir dir;
  test::write_band_text_set(dir / "train.csv", 16, 1, {2, 3, 10, 0, 30, false});
  test::write_band_text_set(dir / "val.csv", 8, 2, {2, 3, 10, 0, 30, false});
  const std::string vec = dir / "vec.safetensors";
  test::CliResult c = test::graft_cli({"weights", "convert", test::fixture("textcnn/glove_small.json"), vec});
  ASSERT_EQ(c.code, 0) << c.err;
  // rand / static / non-static as option groups of one dimension.
  const Json space = {{"mode", Json::array({{{"embeddings", "none"}},
                                            {{"embeddings", vec}, {"freeze-embeddings", true}},
                                            {{"embeddings", vec}}})}};
  test::write_bytes(dir / "space.json", space.dump());
  const Json res = text_search_run(dir, "s", {"--backbone", "textcnn", "--lr", "1e-2", "--space", dir / "space.json"});
  ASSERT_TRUE(res.is_object());
  ASSERT_EQ(res["trials"].size(), 3u);
  for (const auto& t : res["trials"]) {
    EXPECT_EQ(t["status"], "done") << t.dump();
    // The trial ran the mode it was given: config.json's word-vector record.
    const Json cfg = Json::parse(read_file(t["dir"].get<std::string>() + "/config.json"));
    const Json p = t["params"];
    EXPECT_EQ(cfg["options"]["backbone"], "textcnn");
    EXPECT_EQ(cfg["embeddings"]["file"], p["embeddings"]) << t.dump();
    EXPECT_EQ(cfg["embeddings"]["static"].get<bool>(), p.value("freeze_embeddings", false)) << t.dump();
    if (p["embeddings"] == "none") {
      EXPECT_EQ(cfg["embeddings"]["found"].get<int64_t>(), 0);
    } else {
      EXPECT_GT(cfg["embeddings"]["found"].get<int64_t>(), 0);
    }
  }
  // The scores are sorted and the best is the first.
  for (size_t i = 1; i < res["trials"].size(); ++i)
    EXPECT_GE(res["trials"][i - 1]["score"].get<double>(), res["trials"][i]["score"].get<double>());
  const std::string best = res["best"]["dir"].get<std::string>();
  EXPECT_DOUBLE_EQ(text_search_eval(dir, best), res["best"]["score"].get<double>());
  EXPECT_TRUE(fs::exists(best + "/model.safetensors"));

  // Bad choices, refused before any trial runs (no trial folder is made).
  test::write_bytes(dir / "bad1.json", R"({"freeze_embeddings": [true, false]})");
  test::CliResult b = test::graft_cli({"search", "--task", "text", "--backbone", "textcnn", "--data", dir / "train.csv",
                                       "--space", dir / "bad1.json", "--method", "grid", "--out", dir / "bad1",
                                       "--threads", "1", "--quiet"});
  EXPECT_EQ(b.code, 2) << b.err;
  EXPECT_TRUE(test::contains(b.err, "trial 0")) << b.err;
  EXPECT_TRUE(test::contains(b.err, "--freeze-embeddings with --embeddings none")) << b.err;
  EXPECT_FALSE(fs::exists(dir / "bad1/trials/001/metrics.csv"));
  test::write_bytes(dir / "bad2.json", str_cat(R"({"embeddings": [")", vec, R"(", ")", dir / "missing.safetensors",
                                               R"("]})"));
  b = test::graft_cli({"search", "--task", "text", "--backbone", "textcnn", "--data", dir / "train.csv",
                       "--space", dir / "bad2.json", "--method", "grid", "--out", dir / "bad2", "--threads", "1",
                       "--quiet"});
  EXPECT_EQ(b.code, 2) << b.err;
  EXPECT_TRUE(test::contains(b.err, "trial 1")) << b.err;
  EXPECT_TRUE(test::contains(b.err, "missing.safetensors")) << b.err;
  EXPECT_FALSE(fs::exists(dir / "bad2/trials/000/metrics.csv"));
}

TEST(TextSearch, UseLiteStrategiesAreSearchableAndTheBestRunReproducesItsScore) {
  const auto ref = test::parity_fixture("use_lite_parity", "use_lite_fixtures.py");
  if (!ref) GTEST_SKIP() << "no use-lite reference (node/npm or the data absent)";
  test::TempDir dir;
  // SST-2 against AG News texts of the reference: 8 + 8 to train, 4 + 4 to validate.
  std::ofstream train(dir / "train.csv"), val(dir / "val.csv");
  train << "text,label\n";
  val << "text,label\n";
  std::map<std::string, int> per;
  for (const auto& t : (*ref)["texts"]) {
    const std::string src = t["source"].get<std::string>();
    const std::string label = src == "sst2/test.tsv" ? "sst" : src == "ag_news/test.tsv" ? "news" : "";
    if (label.empty() || per[label] >= 12) continue;
    std::string text = t["text"].get<std::string>();
    std::string quoted = "\"";
    for (char ch : text) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    (per[label]++ < 8 ? train : val) << quoted << "\"," << label << "\n";
  }
  train.close();
  val.close();
  ASSERT_EQ(per["sst"], 12);
  ASSERT_EQ(per["news"], 12);
  test::write_bytes(dir / "space.json", R"({"strategy": ["linear", "partial:1"]})");
  const Json res = text_search_run(dir, "s", {"--backbone", "use-lite", "--weights", (*ref)["model"].get<std::string>(),
                                              "--lr", "1e-2", "--space", dir / "space.json"});
  ASSERT_TRUE(res.is_object());
  ASSERT_EQ(res["trials"].size(), 2u);
  for (const auto& t : res["trials"]) {
    EXPECT_EQ(t["status"], "done") << t.dump();
    const Json cfg = Json::parse(read_file(t["dir"].get<std::string>() + "/config.json"));
    EXPECT_EQ(cfg["options"]["strategy"], t["params"]["strategy"]);
    // linear trains the head only; partial:1 the last layer and the pooler too.
    EXPECT_EQ(cfg["trainable_stages"].size(), t["params"]["strategy"] == "linear" ? 1u : 3u) << cfg["trainable_stages"];
  }
  const std::string best = res["best"]["dir"].get<std::string>();
  EXPECT_DOUBLE_EQ(text_search_eval(dir, best), res["best"]["score"].get<double>());
}

}  // namespace
}  // namespace graft
