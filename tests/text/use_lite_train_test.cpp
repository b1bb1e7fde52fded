// graft train --task text --backbone use-lite on a small set of the
// reference's texts: what each strategy trains, the run folder read back
// giving the reference's embeddings, eval agreeing with a recomputation of
// the head, truncation counted, and bad input.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/text/text_data.h"
#include "graft/text/text_eval.h"
#include "graft/text/text_model.h"
#include "graft/text/text_train.h"
#include "graft/text/use_lite.h"
#include "graft/train/options.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace graft {
namespace {

class UseLiteTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    ref_ = test::parity_fixture("use_lite_parity", "use_lite_fixtures.py");
    if (!ref_) GTEST_SKIP() << "no use-lite reference (node/npm or the data absent)";
    model_ = (*ref_)["model"].get<std::string>();
    // Three classes by source: SST-2, SMS and AG News texts (10 each), and
    // the reference's text of more than 128 tokens (as AG News).
    nlohmann::json rows = nlohmann::json::array();
    std::map<std::string, int> per;
    for (size_t i = 0; i < (*ref_)["texts"].size(); ++i) {
      const auto& t = (*ref_)["texts"][i];
      const std::string src = t["source"].get<std::string>();
      std::string label = src == "sst2/test.tsv" ? "sst" : src == "sms_spam/SMSSpamCollection" ? "sms"
                          : src == "ag_news/test.tsv" || src == "edge: longer than 128 tokens" ? "news" : "";
      if (label.empty() || (per[label] >= 10 && src.rfind("edge", 0) != 0)) continue;
      per[label] += 1;
      rows.push_back({{"text", t["text"]}, {"label", label}});
      index_.push_back(i);
      long_ += t["ids"].size() > 128;
    }
    std::ofstream f(dir_ / "train.jsonl");
    for (const auto& r : rows) f << r.dump() << "\n";
  }
  TrainOptions options(const std::string& out) {
    TrainOptions o = default_train_options("text");
    o.data = dir_ / "train.jsonl";
    o.backbone = "use-lite";
    o.weights = model_;
    o.out = dir_ / out;
    o.epochs = 1;
    o.batch_size = 8;
    o.val_split = 0;
    o.threads = 1;
    o.lr = 1e-2;
    return o;
  }
  std::map<std::string, torch::Tensor> weights(const std::string& run) {
    std::map<std::string, torch::Tensor> m;
    for (auto& [k, v] : read_weights(dir_ / run + "/model.safetensors")) m[k] = v;
    return m;
  }
  // Largest difference between the run's encoder and the package's, over
  // the names starting with `prefix` (after "use.").
  double moved(const std::string& run, const std::string& prefix) {
    auto w = weights(run);
    double d = 0;
    int n = 0;
    for (auto& [k, v] : source_weights())
      if (k.rfind(prefix, 0) == 0) {
        d = std::max(d, (w.at("use." + k) - v).abs().max().item<double>());
        ++n;
      }
    EXPECT_GT(n, 0) << prefix;
    return d;
  }
  const TensorList& source_weights() {
    if (source_.empty()) source_ = read_use_lite(model_).weights;
    return source_;
  }
  std::optional<nlohmann::json> ref_;
  std::string model_;
  std::vector<size_t> index_;
  int64_t long_ = 0;  // texts of more than 128 tokens (by the reference's ids)
  TensorList source_;
  test::TempDir dir_;
};

TEST_F(UseLiteTrain, LinearRunGivesTheReferenceEmbeddingsAndCountsTruncation) {
  TrainOptions lin = options("linear");
  lin.strategy = "linear";
  train_text(lin);
  EXPECT_EQ(moved("linear", ""), 0.0);
  auto cfg = nlohmann::json::parse(read_file(dir_ / "linear/config.json"));
  ASSERT_GE(long_, 1);
  EXPECT_EQ(cfg["truncated"]["train"], long_);
  EXPECT_EQ(cfg["trainable_stages"], (nlohmann::json{"head"}));
  ASSERT_TRUE(fs::exists(dir_ / "linear/vocab.json"));
  TextModel m = load_text_model(dir_ / "linear");
  EXPECT_EQ(m.info.architecture, "use-lite");
  EXPECT_EQ(m.info.max_length, 128);
  std::vector<EncodedText> inputs;
  int64_t cut = 0;
  for (size_t i : index_) inputs.push_back(m.encode((*ref_)["texts"][i]["text"].get<std::string>(), "", &cut));
  EXPECT_GT(cut, 0);
  torch::Tensor f = m.features(inputs, 7);
  for (size_t j = 0; j < index_.size(); ++j) {
    auto want = torch::tensor((*ref_)["texts"][index_[j]]["embedding"].get<std::vector<float>>());
    EXPECT_LT((f[static_cast<int64_t>(j)] - want).abs().max().item<double>(), 1e-5) << j;
  }
  // eval's accuracy: the head recomputed on the reference's embeddings.
  auto w = weights("linear");
  std::vector<float> all;
  for (size_t i : index_) {
    auto e = (*ref_)["texts"][i]["embedding"].get<std::vector<float>>();
    all.insert(all.end(), e.begin(), e.end());
  }
  torch::Tensor emb = torch::tensor(all).view({-1, 512});
  torch::Tensor pred = (emb.matmul(w.at("classifier.weight").t()) + w.at("classifier.bias")).argmax(1);
  TextReadOptions r;
  TextEvaluation ev = evaluate_text_run(dir_ / "linear", dir_ / "train.jsonl", r, 16, "--data", "");
  EXPECT_EQ(ev.texts, static_cast<int64_t>(index_.size()));
  EXPECT_EQ(ev.truncated, long_);
  int64_t right = 0;
  std::vector<std::string> classes = m.info.classes;
  std::ifstream in(dir_ / "train.jsonl");
  std::string line;
  for (int64_t j = 0; std::getline(in, line); ++j) {
    auto label = nlohmann::json::parse(line)["label"].get<std::string>();
    right += classes[static_cast<size_t>(pred[j].item<int64_t>())] == label;
  }
  EXPECT_NEAR(ev.metrics.accuracy, double(right) / double(index_.size()), 1e-12);
}

TEST_F(UseLiteTrain, StrategiesTrainWhatTheySay) {
  TrainOptions part = options("partial");
  part.strategy = "partial:1";
  part.lr = 1e-3;
  train_text(part);
  EXPECT_EQ(moved("partial", "embeddings."), 0.0);
  EXPECT_EQ(moved("partial", "encoder.layer.0."), 0.0);
  EXPECT_GT(moved("partial", "encoder.layer.1."), 1e-5);
  EXPECT_GT(moved("partial", "pooler."), 1e-5);
  auto cfg = nlohmann::json::parse(read_file(dir_ / "partial/config.json"));
  EXPECT_EQ(cfg["trainable_stages"], (nlohmann::json{"head", "pooler", "layer.1"}));
  TrainOptions full = options("full");
  full.strategy = "full";
  full.lr = 1e-3;
  full.layer_decay = 0.5;
  train_text(full);
  EXPECT_GT(moved("full", "embeddings."), 1e-6);
  EXPECT_GT(moved("full", "encoder.layer.0."), 1e-6);
}

TEST_F(UseLiteTrain, BadInputIsNamed) {
  TrainOptions none = options("none");
  none.weights = "none";
  EXPECT_THROW(train_text(none), UsageError);
  TrainOptions missing = options("missing");
  missing.weights = dir_ / "nowhere";
  try {
    train_text(missing);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nowhere"), std::string::npos) << e.what();
  }
  TrainOptions centroid = options("centroid");
  centroid.head = "centroid";
  EXPECT_THROW(train_text(centroid), UsageError);
}

}  // namespace
}  // namespace graft
