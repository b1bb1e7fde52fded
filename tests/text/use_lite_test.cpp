#include "graft/text/use_lite.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace graft {
namespace {

// The fixture of tests/reference/use_lite_fixtures.py (TF.js in node), or
// nullopt (skip).
std::optional<nlohmann::json> use_lite_reference() {
  return test::parity_fixture("use_lite_parity", "use_lite_fixtures.py");
}

TEST(UseLite, TokenIdsEqualTheJavaScriptTokenizer) {
  auto ref = use_lite_reference();
  if (!ref) GTEST_SKIP() << "no use-lite reference (node/npm or the data absent)";
  const nlohmann::json& texts = (*ref)["texts"];
  ASSERT_GE(texts.size(), 200u);
  UseLiteTokenizer tok = UseLiteTokenizer::from_file((*ref)["model"].get<std::string>() + "/vocab.json");
  int differ = 0;
  for (const auto& t : texts) {
    const std::string text = t["text"].get<std::string>();
    const auto want = t["ids"].get<std::vector<int64_t>>();
    const auto got = tok.encode(text);
    if (got != want && ++differ <= 5) ADD_FAILURE() << t["source"] << ": '" << text.substr(0, 80) << "'";
  }
  EXPECT_EQ(differ, 0) << "of " << texts.size() << " texts";
}

TEST(UseLite, EmbeddingsMatchTensorFlowJs) {
  auto ref = use_lite_reference();
  if (!ref) GTEST_SKIP() << "no use-lite reference (node/npm or the data absent)";
  const nlohmann::json& texts = (*ref)["texts"];
  UseLiteSource src = read_use_lite((*ref)["model"].get<std::string>());
  EXPECT_EQ(src.config.max_length, 128);
  EXPECT_EQ(src.config.width0, 256);
  EXPECT_EQ(src.config.width1, 512);
  EXPECT_EQ(src.config.ffn, 1536);
  EXPECT_EQ(src.config.heads0, 4);
  UseLiteEncoder enc(src.config);
  load_use_lite_weights(*enc, src.weights, "fixture");
  enc->eval();
  torch::NoGradGuard no_grad;
  std::vector<std::vector<int64_t>> ids;
  for (const auto& t : texts) ids.push_back(src.tokenizer->encode(t["text"].get<std::string>()));
  // Batches of 16 (padding differs from text to text), as the reference ran.
  double worst = 0;
  for (size_t s = 0; s < ids.size(); s += 16) {
    std::vector<const std::vector<int64_t>*> items;
    for (size_t i = s; i < std::min(ids.size(), s + 16); ++i) items.push_back(&ids[i]);
    auto [x, mask] = collate_use_lite(items, src.config.max_length);
    torch::Tensor got = enc->forward(x, mask);
    for (size_t i = 0; i < items.size(); ++i) {
      auto want = torch::tensor(texts[s + i]["embedding"].get<std::vector<float>>());
      ASSERT_EQ(want.size(0), 512);
      const double d = (got[static_cast<int64_t>(i)] - want).abs().max().item<double>();
      worst = std::max(worst, d);
      EXPECT_LT(d, 1e-5) << texts[s + i]["source"] << " text " << s + i;
    }
  }
  // Alone (no padding) as well.
  for (size_t i : {size_t{0}, size_t{9}, ids.size() - 1}) {
    auto [x, mask] = collate_use_lite({&ids[i]}, src.config.max_length);
    auto want = torch::tensor(texts[i]["embedding"].get<std::vector<float>>());
    EXPECT_LT((enc->forward(x, mask)[0] - want).abs().max().item<double>(), 1e-5) << "text " << i;
  }
  std::cout << "use-lite: " << ids.size() << " texts, max |graft - tfjs| " << worst << "\n";
}

TEST(UseLite, TooLongTextIsCutAtTheGraphLimit) {
  auto ref = use_lite_reference();
  if (!ref) GTEST_SKIP() << "no use-lite reference (node/npm or the data absent)";
  // The reference's edge case: the whole text's ids, the graph keeps 128.
  const nlohmann::json* longest = nullptr;
  for (const auto& t : (*ref)["texts"])
    if (t["source"] == "edge: longer than 128 tokens") longest = &t;
  ASSERT_NE(longest, nullptr);
  const auto ids = (*longest)["ids"].get<std::vector<int64_t>>();
  ASSERT_GT(ids.size(), 128u);
  auto [x, mask] = collate_use_lite({&ids}, 128);
  EXPECT_EQ(x.size(1), 128);
  EXPECT_EQ(mask.sum().item<double>(), 128);
  EXPECT_TRUE(torch::equal(x[0], torch::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + 128))));
}

TEST(UseLite, TokenizerPiecesByHand) {
  // A small vocabulary: the best-scoring split, "▁" for spaces, unknown
  // characters as one id 0 per run (id 0 is one character, as the
  // package's "\uFFFD": the JavaScript steps back by its length).
  const std::string v = R"([["\ufffd",0],["<s>",0],["</s>",0],["e1",0],["e2",0],["e3",0],
    ["▁ab",-1.0],["▁a",-1.5],["b",-1.0],["c",-2.0],["▁",-3.0],["bc",-2.5]])";
  UseLiteTokenizer t = UseLiteTokenizer::from_json_text(v, "inline");
  EXPECT_EQ(t.encode("ab"), (std::vector<int64_t>{6}));
  // "▁abc": ▁ab + c (-3) vs ▁a + bc (-4): the first.
  EXPECT_EQ(t.encode("abc"), (std::vector<int64_t>{6, 9}));
  // "▁ab▁c": ▁ab, ▁, c; "ẍẍ" is no piece: one 0.
  EXPECT_EQ(t.encode("ab c"), (std::vector<int64_t>{6, 10, 9}));
  EXPECT_EQ(t.encode("ab ẍẍ"), (std::vector<int64_t>{6, 10, 0}));
  EXPECT_TRUE(t.encode("").empty());
  EXPECT_THROW(t.encode(std::string("a\xff")), Error);
  EXPECT_THROW(UseLiteTokenizer::from_json_text("{}", "inline"), Error);
  EXPECT_THROW(UseLiteTokenizer::from_json_text(R"([["a", "x"]])", "inline"), Error);
}

// A copy of the model folder with one thing wrong is refused, naming the file.
TEST(UseLite, MissingOrAlteredFilesAreNamed) {
  auto ref = use_lite_reference();
  if (!ref) GTEST_SKIP() << "no use-lite reference (node/npm or the data absent)";
  const std::string model = (*ref)["model"].get<std::string>();
  test::TempDir tmp;
  auto copy = [&](const std::string& name) {
    const std::string d = tmp / name;
    fs::create_directories(d);
    for (const auto& f : use_lite_files()) fs::copy_file(model + "/" + f, d + "/" + f);
    return d;
  };
  auto message = [](const std::string& dir) {
    try {
      read_use_lite(dir);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string missing = copy("missing");
  fs::remove(missing + "/group1-shard4of7");
  EXPECT_NE(message(missing).find("group1-shard4of7' is missing"), std::string::npos) << message(missing);
  const std::string cut = copy("cut");
  fs::resize_file(cut + "/group1-shard7of7", fs::file_size(cut + "/group1-shard7of7") - 4);
  // TF.js shards have no sizes of their own: the group's total is checked.
  EXPECT_NE(message(cut).find("cut/model.json' group 0"), std::string::npos) << message(cut);
  EXPECT_NE(message(cut).find("hold 27903652 bytes but its weights need 27903656"), std::string::npos)
      << message(cut);
  const std::string vocab = copy("vocab");
  std::ofstream(vocab + "/vocab.json") << "[[\"a\"]]";
  EXPECT_NE(message(vocab).find("vocab.json"), std::string::npos) << message(vocab);
  EXPECT_NE(message(tmp / "nowhere").find("is not a folder"), std::string::npos);
}

}  // namespace
}  // namespace graft
