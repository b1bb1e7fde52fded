// The one JSON reader: nesting bounded before parsing, errors that name the
// file and the key, values in messages cut short; and every JSON file graft
// reads on the command line goes through it (a 100,000-level file crashed
// five verbs with a stack overflow before).

#include "graft/core/json.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "graft/cli/cli.h"
#include "graft/core/files.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

std::string deep(int levels) {
  return "{\"epochs\": " + std::string(levels, '[') + std::string(levels, ']') + "}";
}

using test::contains;

TEST(Json, DepthIsBoundedBeforeParsing) {
  std::string msg = test::error_of([] { parse_json(deep(100000), "'deep.json'"); });
  EXPECT_TRUE(contains(msg, "'deep.json'")) << msg;
  EXPECT_TRUE(contains(msg, "nested more than 64 levels")) << msg;
  // Exactly the limit is accepted; brackets inside strings do not count.
  std::string at_limit = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_EQ(parse_json(at_limit, "x").dump(), at_limit);
  EXPECT_THROW(parse_json("[" + at_limit + "]", "x"), Error);
  auto j = parse_json("{\"a\": \"" + std::string(1000, '[') + "\\\"{\"}", "x");
  EXPECT_EQ(j["a"].get<std::string>(), std::string(1000, '[') + "\"{");
}

TEST(Json, ParseErrorsNameTheSource) {
  test::TempDir dir;
  write_file_atomic(dir / "bad.json", "{\"a\": 1,");
  std::string msg = test::error_of([&] { read_json_file(dir / "bad.json"); });
  EXPECT_TRUE(contains(msg, "'" + dir / "bad.json" + "': not valid JSON")) << msg;
  msg = test::error_of([&] { read_json_file(dir / "missing.json"); });
  EXPECT_TRUE(contains(msg, dir / "missing.json")) << msg;
}

TEST(Json, TypedAccessNamesTheKeyAndTheValue) {
  auto j = parse_json(R"({"epochs": "ten", "classes": ["a", "b"]})", "cfg.json");
  EXPECT_EQ(json_get<std::vector<std::string>>(j, "classes", "cfg.json"),
            (std::vector<std::string>{"a", "b"}));
  std::string msg = test::error_of([&] { json_get<int64_t>(j, "epochs", "cfg.json"); });
  EXPECT_TRUE(contains(msg, "cfg.json: \"epochs\" has the wrong type: \"ten\"")) << msg;
  msg = test::error_of([&] { json_get<int64_t>(j, "lr", "cfg.json"); });
  EXPECT_EQ(msg, "cfg.json: \"lr\" is missing");
  EXPECT_EQ(json_get_or<int64_t>(j, "lr", 7, "cfg.json"), 7);
  msg = test::error_of([&] { json_get<int64_t>(parse_json("[1]", "x"), "lr", "cfg.json"); });
  EXPECT_TRUE(contains(msg, "expected a JSON object")) << msg;
}

TEST(Json, ExcerptsAreCut) {
  nlohmann::json big = std::string(5000, 'x');
  std::string e = json_excerpt(big);
  EXPECT_EQ(e.size(), 203u);
  EXPECT_EQ(e.substr(0, 4), "\"xxx");
  EXPECT_EQ(e.substr(200), "...");
  EXPECT_EQ(json_excerpt(nlohmann::json{{"a", 1}}), "{\"a\":1}");
}

using Result = test::CliResult;
using test::graft_cli;

// Each reproduction of the hardening issue: a clear error naming the file,
// not a crash.
TEST(Json, DeeplyNestedFilesAreErrorsInEveryVerb) {
  test::TempDir dir;
  write_file_atomic(dir / "deep.json", deep(100000));
  Result r = graft_cli({"train", "--config", dir / "deep.json", "--out", dir / "x"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, dir / "deep.json") && contains(r.err, "nested")) << r.err;

  r = graft_cli({"search", "--space", dir / "deep.json", "--data", dir / "none", "--out", dir / "s"});
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.err, dir / "deep.json")) << r.err;

  fs::create_directories(dir / "run/checkpoint");
  write_file_atomic(dir / "run/config.json", deep(100000));
  write_file_atomic(dir / "run/checkpoint/last.safetensors", "x");
  r = graft_cli({"train", "--resume", "--out", dir / "run"});
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.err, dir / "run/config.json") && contains(r.err, "nested")) << r.err;

  write_file_atomic(dir / "run/test_metrics.json", deep(100000));
  write_file_atomic(dir / "run/config.json", "{}");
  r = graft_cli({"report", dir / "run"});
  EXPECT_NE(r.code, 0);

  fs::create_directories(dir / "hf");
  write_file_atomic(dir / "hf/config.json", deep(100000));
  write_file_atomic(dir / "hf/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n");
  write_file_atomic(dir / "t.csv", "text,label\na,x\na,y\n");
  r = graft_cli({"train", "--task", "text", "--data", dir / "t.csv", "--weights", dir / "hf",
                 "--out", dir / "t"});
  EXPECT_NE(r.code, 0);

  write_file_atomic(dir / "g.json", deep(100000));
  r = graft_cli({"face", "identify", "--gallery", dir / "g.json", dir / "none.png"});
  EXPECT_NE(r.code, 0);
}

}  // namespace
}  // namespace graft
