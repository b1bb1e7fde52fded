// graft train --task text on a small synthetic set with the reference BERT
// fixture as source: gradient accumulation, resume, strategies, layer-wise
// learning rates, the TF-IDF floor, eval/predict agreeing with the run, and
// bad input.

#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/cli/cli.h"
#include "graft/core/files.h"
#include "graft/models/head.h"
#include "graft/text/text_data.h"
#include "graft/text/text_eval.h"
#include "graft/text/text_model.h"
#include "graft/text/text_source.h"
#include "graft/text/text_train.h"
#include "graft/weights/safetensors.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"
#include "text_sets.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

// Two overlapping classes: each word of a text is from its class's band of
// 10 words with probability 0.65, else from the other class's band.
void write_imbalanced_set(const std::string& path, int major, int minor, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::ofstream f(path);
  f << "text,label\n";
  for (int i = 0; i < major + minor; ++i) {
    const int k = i < major ? 0 : 1;
    std::string text;
    for (int w = 0; w < 8; ++w) {
      const int band = (rng() % 100 < 65) ? k : 1 - k;
      text += (w ? " w" : "w") + std::to_string(20 + 100 * band + static_cast<int>(rng() % 10));
    }
    f << '"' << text << "\"," << (k == 0 ? "major" : "minor") << "\n";
  }
}

class TextTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_fixture("bert/model.safetensors") || !test::have_fixture("text_model/run/vocab.txt"))
      GTEST_SKIP() << "no reference fixtures";
    test::write_band_text_set(dir_ / "train.csv", 30, 1, {3, 2, 18, 2, 40, false});
    test::write_band_text_set(dir_ / "test.csv", 10, 2, {3, 2, 18, 2, 40, false});
    // A source folder as a pretraining run or Hugging Face leaves it.
    fs::create_directories(dir_ / "source");
    fs::copy_file(test::fixture("bert/model.safetensors"), dir_ / "source/model.safetensors");
    fs::copy_file(test::fixture("bert/config.json"), dir_ / "source/config.json");
    fs::copy_file(test::fixture("text_model/run/vocab.txt"), dir_ / "source/vocab.txt");
  }
  TrainOptions options(const std::string& out) {
    TrainOptions o = default_train_options("text");
    o.data = dir_ / "train.csv";
    o.weights = dir_ / "source";
    o.out = dir_ / out;
    o.epochs = 1;
    o.batch_size = 16;
    o.val_split = 0;
    o.threads = 1;
    o.lr = 1e-3;
    o.max_length = 32;  // the fixture has 40 positions
    return o;
  }
  std::map<std::string, torch::Tensor> weights(const std::string& run) {
    std::map<std::string, torch::Tensor> m;
    for (auto& [k, v] : read_weights(dir_ / run + "/model.safetensors")) m[k] = v;
    return m;
  }
  static double max_diff(std::map<std::string, torch::Tensor>& a, std::map<std::string, torch::Tensor>& b,
                         const std::string& prefix = "") {
    double d = 0;
    for (auto& [k, v] : a)
      if (k.rfind(prefix, 0) == 0) d = std::max(d, (v - b.at(k)).abs().max().item<double>());
    return d;
  }
  test::TempDir dir_;
};

TEST_F(TextTrain, GradientAccumulationEqualsTheLargerBatch) {
  // Plain SGD: the update is linear in the gradient, so float rounding in
  // the sums stays at rounding level (Adam would amplify it where gradients
  // are near zero).
  TrainOptions a = options("big");
  a.dropout = 0;
  a.optimizer = "sgd";
  a.momentum = 0;
  a.lr = 0.5;
  train(a);
  TrainOptions b = a;
  b.out = dir_ / "accum";
  b.batch_size = 8;
  b.grad_accum = 2;
  train(b);
  auto wa = weights("big"), wb = weights("accum");
  auto src = weights("source");
  EXPECT_GT(max_diff(wa, src, "bert.encoder"), 1e-3);  // it trained
  EXPECT_LT(max_diff(wa, wb), 1e-5);
}

TEST_F(TextTrain, ResumeContinuesBitIdentically) {
  TrainOptions a = options("whole");
  a.epochs = 2;
  train(a);
  TrainOptions b = options("parts");
  b.epochs = 2;
  // Stopped mid-epoch 1 and mid-epoch 2.
  const auto s = test::train_stopped_twice(b, [](int64_t step) { return step == 3 || step == 8; });
  EXPECT_EQ(s.back().epochs_run, 2);
  auto wa = weights("whole"), wb = weights("parts");
  EXPECT_EQ(max_diff(wa, wb), 0.0);
}

TEST_F(TextTrain, StrategiesTrainWhatTheySay) {
  auto src = weights("source");
  TrainOptions lin = options("linear");
  lin.strategy = "linear";
  train(lin);
  auto w = weights("linear");
  EXPECT_EQ(max_diff(w, src, "bert."), 0.0);
  TrainOptions part = options("partial");
  part.strategy = "partial:1";
  train(part);
  w = weights("partial");
  EXPECT_EQ(max_diff(w, src, "bert.embeddings."), 0.0);
  EXPECT_EQ(max_diff(w, src, "bert.encoder.layer.1."), 0.0);
  EXPECT_GT(max_diff(w, src, "bert.encoder.layer.2."), 1e-4);
  EXPECT_GT(max_diff(w, src, "bert.pooler."), 1e-4);
  TrainOptions full = options("full");
  train(full);
  w = weights("full");
  EXPECT_GT(max_diff(w, src, "bert.embeddings."), 1e-4);
  // The run records what trained.
  auto cfg = nlohmann::json::parse(read_file(dir_ / "partial/config.json"));
  EXPECT_EQ(cfg["trainable_stages"], (nlohmann::json{"head", "pooler", "layer.2"}));
  EXPECT_EQ(cfg["options"]["optimizer"], "adamw");
  EXPECT_EQ(cfg["options"]["schedule"], "linear");
}

TEST_F(TextTrain, ATextRunIsASourceWithANewHead) {
  TrainOptions a = options("first");
  train(a);
  // Two of the three classes: the source's 3-way classifier is not loaded.
  {
    std::ifstream in(dir_ / "train.csv");
    std::ofstream out(dir_ / "two.csv");
    std::string line;
    while (std::getline(in, line))
      if (line.find(",gamma") == std::string::npos) out << line << "\n";
  }
  TrainOptions b = options("second");
  b.data = dir_ / "two.csv";
  b.weights = dir_ / "first";
  b.strategy = "linear";
  train(b);
  auto w1 = weights("first"), w2 = weights("second");
  EXPECT_EQ(max_diff(w2, w1, "bert."), 0.0);
  EXPECT_EQ(w2.at("classifier.weight").size(0), 2);
  auto cfg = nlohmann::json::parse(read_file(dir_ / "second/model.json"));
  EXPECT_EQ(cfg["classes"], (nlohmann::json{"alpha", "beta"}));
}

TEST_F(TextTrain, LayerwiseLearningRates) {
  BertConfig c = read_bert_config(test::fixture("bert/config.json"));
  BertClassifier m(c, 3, 0.1);
  TrainOptions o = options("x");
  o.lr = 1.0;
  o.backbone_lr_mult = 0.5;
  o.layer_decay = 0.1;
  o.weight_decay = 0.01;
  std::map<std::string, std::pair<double, double>> got;
  size_t params = 0;
  for (const auto& g : text_param_groups(*m, o, c.num_hidden_layers)) {
    got[g.name] = {g.lr, g.weight_decay};
    params += g.params.size();
    for (const auto& p : g.params) EXPECT_EQ(p.dim() >= 2, g.name.find("no_decay") == std::string::npos);
  }
  EXPECT_EQ(params, m->parameters().size());
  EXPECT_DOUBLE_EQ(got.at("head").first, 1.0);
  EXPECT_DOUBLE_EQ(got.at("layer.2").first, 0.5);
  EXPECT_DOUBLE_EQ(got.at("layer.1").first, 0.05);
  EXPECT_NEAR(got.at("layer.0").first, 0.005, 1e-15);
  EXPECT_NEAR(got.at("embeddings").first, 0.0005, 1e-15);
  EXPECT_DOUBLE_EQ(got.at("layer.2/no_decay").second, 0.0);
  EXPECT_DOUBLE_EQ(got.at("embeddings").second, 0.01);
}

struct Cli {
  int code;
  std::string out, err;
};

Cli graft_cli(std::vector<std::string> args) {
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  int code = cli::run(args);
  return {code, testing::internal::GetCapturedStdout(), testing::internal::GetCapturedStderr()};
}

// --class-weights auto (n / (classes x count)) raises the recall of the
// minority class of an imbalanced set (60:6), on a balanced test set, for a
// head trained gently enough that the imbalance decides (30 epochs at 0.05;
// a head that memorises the six minority texts gains nothing from it).
TEST_F(TextTrain, ClassWeightsAutoRaisesMinorityRecall) {
  write_imbalanced_set(dir_ / "imbalanced.csv", 60, 6, 5);
  write_imbalanced_set(dir_ / "balanced.csv", 50, 50, 6);
  auto minority_recall = [&](const std::string& weights) {
    const std::string run = dir_ / ("cw-" + weights);
    Cli t = graft_cli({"train", "--task", "text", "--backbone", "tfidf", "--data", dir_ / "imbalanced.csv",
                       "--test", dir_ / "balanced.csv", "--vocab", dir_ / "source/vocab.txt", "--val-split", "0",
                       "--epochs", "30", "--lr", "0.05", "--class-weights", weights, "--out", run, "--threads", "1", "--quiet"});
    EXPECT_EQ(t.code, 0) << t.err;
    const auto m = nlohmann::json::parse(read_file(run + "/test_metrics.json"));
    EXPECT_EQ(m["per_class"][1]["class"], "minor");
    return m["per_class"][1]["recall"].get<double>();
  };
  const double none = minority_recall("none"), balanced = minority_recall("auto");
  EXPECT_GT(balanced, none + 0.1) << "none " << none << ", auto " << balanced;
}

// --per-class keeps at most N texts of each class of --data, seeded, before
// the validation split (it was read and ignored for text).
TEST_F(TextTrain, PerClassKeepsThatManyTextsOfEachClass) {
  auto run_with = [&](const std::string& name, uint64_t seed) {
    Cli t = graft_cli({"train", "--task", "text", "--backbone", "tfidf", "--data", dir_ / "train.csv",
                       "--vocab", dir_ / "source/vocab.txt", "--per-class", "5", "--val-split", "0.2",
                       "--seed", std::to_string(seed), "--out", dir_ / name, "--threads", "1", "--quiet"});
    EXPECT_EQ(t.code, 0) << t.err;
    return nlohmann::json::parse(read_file(dir_ / name + "/config.json"));
  };
  const auto a = run_with("pc-a", 3), b = run_with("pc-b", 3);
  // 3 classes x 5 texts, one of each class held out for validation.
  EXPECT_EQ(a["counts"]["train"].get<int64_t>() + a["counts"]["val"].get<int64_t>(), 15);
  EXPECT_EQ(a["counts"]["val"].get<int64_t>(), 3);
  EXPECT_EQ(a["counts"], b["counts"]);
  // The same selection as TextSet::keep_per_class on the file (seeded).
  TrainOptions o = default_train_options("text");
  TextSet set = read_text_data(dir_ / "train.csv", "--data", o, {});
  const size_t all = set.examples.size();
  set.keep_per_class(5, 3);
  EXPECT_EQ(set.examples.size(), 15u);
  EXPECT_GT(all, 15u);
  for (auto n : set.class_counts()) EXPECT_EQ(n, 5);
}

// --precision int8 on text runs (issue 21): graft eval on a BERT run gives
// evaluate_text_run's figures with the dynamic int8 encoder (its arithmetic
// is Bert.DynamicInt8EqualsPyTorchsQuantizeDynamic's), which differ from
// fp32's; a TF-IDF run stays fp32 and says so.
TEST_F(TextTrain, Int8EvalOfABertRunIsDynamicInt8) {
  train(options("bert"));
  const std::string run = dir_ / "bert";
  auto eval = [&](const std::string& precision) {
    Cli e = graft_cli({"eval", run, "--data", dir_ / "test.csv", "--threads", "1", "--precision", precision});
    EXPECT_EQ(e.code, 0) << e.err;
    EXPECT_FALSE(test::contains(e.err, "in fp32")) << e.err;
    return nlohmann::json::parse(e.out);
  };
  const auto int8 = eval("int8"), fp32 = eval("fp32");
  TextReadOptions r;
  const TextEvaluation want = evaluate_text_run(run, dir_ / "test.csv", r, 64, "--data", "", {}, Precision::kInt8);
  EXPECT_NEAR(int8["loss"].get<double>(), want.metrics.loss, 1e-9);
  EXPECT_NE(int8["loss"].get<double>(), fp32["loss"].get<double>());

  Cli t = graft_cli({"train", "--task", "text", "--backbone", "tfidf", "--data", dir_ / "train.csv", "--vocab",
                     dir_ / "source/vocab.txt", "--out", dir_ / "bow8", "--threads", "1", "--quiet"});
  ASSERT_EQ(t.code, 0) << t.err;
  Cli e = graft_cli({"eval", dir_ / "bow8", "--data", dir_ / "test.csv", "--precision", "int8"});
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_TRUE(test::contains(e.err, "dynamic int8 is for BERT runs; it is evaluated in fp32")) << e.err;
}

TEST_F(TextTrain, TfidfRunAndEvalAndPredictAgree) {
  const std::string run = dir_ / "bow";
  Cli t = graft_cli({"train", "--task", "text", "--backbone", "tfidf", "--data", dir_ / "train.csv",
                     "--test", dir_ / "test.csv", "--vocab", dir_ / "source/vocab.txt", "--out", run,
                     "--threads", "1", "--quiet"});
  ASSERT_EQ(t.code, 0) << t.err;
  auto test_metrics = nlohmann::json::parse(read_file(run + "/test_metrics.json"));
  // The classes are separable by their words: the floor gets them all.
  EXPECT_GT(test_metrics["accuracy"].get<double>(), 0.95);
  auto cfg = nlohmann::json::parse(read_file(run + "/config.json"));
  EXPECT_EQ(cfg["options"]["strategy"], "linear");
  EXPECT_EQ(cfg["options"]["epochs"], 10);
  // graft eval on the same file gives the run's test metrics.
  Cli e = graft_cli({"eval", run, "--data", dir_ / "test.csv", "--threads", "1"});
  ASSERT_EQ(e.code, 0) << e.err;
  auto ej = nlohmann::json::parse(e.out);
  EXPECT_DOUBLE_EQ(ej["accuracy"].get<double>(), test_metrics["accuracy"].get<double>());
  EXPECT_NEAR(ej["loss"].get<double>(), test_metrics["loss"].get<double>(), 1e-6);
  // graft predict on the texts (one per line) gives the predicted classes of
  // test_predictions.csv.
  std::vector<std::string> texts, predicted;
  {
    std::ifstream f(dir_ / "test.csv");
    std::string line;
    std::getline(f, line);
    while (std::getline(f, line)) texts.push_back(line.substr(1, line.rfind('"') - 1));
    std::ifstream p(run + "/test_predictions.csv");
    std::getline(p, line);
    while (std::getline(p, line)) {
      size_t c1 = line.find(','), c2 = line.find(',', c1 + 1), c3 = line.find(',', c2 + 1);
      predicted.push_back(line.substr(c2 + 1, c3 - c2 - 1));
    }
  }
  std::ofstream(dir_ / "lines.txt") << [&] {
    std::string s;
    for (const auto& x : texts) s += x + "\n";
    return s;
  }();
  Cli p = graft_cli({"predict", run, dir_ / "lines.txt", "--top-k", "1", "--json", "--threads", "1"});
  ASSERT_EQ(p.code, 0) << p.err;
  std::istringstream lines(p.out);
  std::string line;
  size_t i = 0;
  for (; std::getline(lines, line); ++i) {
    auto j = nlohmann::json::parse(line);
    ASSERT_LT(i, predicted.size());
    EXPECT_EQ(j["top"][0]["label"], predicted[i]) << i;
    EXPECT_EQ(j["text"], texts[i]);
  }
  EXPECT_EQ(i, texts.size());
}

// --head centroid on the frozen encoder: the rows are the unit class means
// of BERT's pooled features, computed here again outside the trainer; graft
// enroll replaces and adds classes from text files.
TEST_F(TextTrain, CentroidHeadIsTheClassMeansAndEnrollAddsAClass) {
  TrainOptions o = options("centroid");
  o.head = "centroid";
  o.strategy = "linear";
  o.epochs = 3;
  EXPECT_EQ(train(o).epochs_run, 1);
  const TextModel m = load_text_model(o.out);
  const TextSet set = read_text_set(dir_ / "train.csv");
  std::vector<EncodedText> encoded;
  std::vector<int64_t> labels;
  for (const auto& e : set.examples) {
    encoded.push_back(m.encode(e.text));
    labels.push_back(e.label);
  }
  const torch::Tensor f = m.features(encoded), y = torch::tensor(labels);
  const torch::Tensor rows = weights("centroid").at("classifier.weight");
  ASSERT_EQ(rows.size(0), 3);
  for (int64_t c = 0; c < 3; ++c)
    EXPECT_LT((rows[c] - class_centroid(f.index_select(0, y.eq(c).nonzero().squeeze(1)))).abs().max().item<double>(),
              1e-5) << c;
  // The test file's gamma texts, one per line: they replace gamma's row,
  // then make a new class delta with the same row.
  std::string gamma;
  for (const auto& e : read_text_set(dir_ / "test.csv").examples)
    if (e.label == 2) gamma += e.text + "\n";
  std::ofstream(dir_ / "gamma.txt") << gamma;
  Cli r = graft_cli({"enroll", o.out, "--class", "gamma", dir_ / "gamma.txt", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["action"], "replaced");
  r = graft_cli({"enroll", o.out, "--class", "delta", dir_ / "gamma.txt", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["action"], "added");
  EXPECT_EQ(nlohmann::json::parse(r.out)["examples"], 10);
  const TextModel after = load_text_model(o.out);
  EXPECT_EQ(after.info.classes, (std::vector<std::string>{"alpha", "beta", "gamma", "delta"}));
  const torch::Tensor now = weights("centroid").at("classifier.weight");
  EXPECT_TRUE(torch::equal(now[2], now[3]));
  EXPECT_TRUE(torch::equal(now[0], rows[0]));
  // predict sees delta at once, with gamma's probability (the same row).
  Cli p = graft_cli({"predict", o.out, dir_ / "gamma.txt", "--top-k", "4", "--json", "--threads", "1"});
  ASSERT_EQ(p.code, 0) << p.err;
  std::istringstream lines(p.out);
  std::string line;
  int n = 0;
  for (; std::getline(lines, line); ++n) {
    std::map<std::string, double> prob;
    const nlohmann::json j = nlohmann::json::parse(line);
    for (const auto& t : j["top"]) prob[t["label"].get<std::string>()] = t["probability"].get<double>();
    ASSERT_EQ(prob.size(), 4u) << line;
    EXPECT_EQ(prob.at("gamma"), prob.at("delta")) << line;
  }
  EXPECT_EQ(n, 10);
  // graft embed: each line's pooled output (computed here one text at a
  // time, without length batching or padding), named FILE:LINE.
  const std::string emb = dir_ / "gamma.safetensors";
  Cli em = graft_cli({"embed", o.out, dir_ / "gamma.txt", "--out", emb, "--threads", "1"});
  ASSERT_EQ(em.code, 0) << em.err;
  const SafetensorsFile ef = load_safetensors(emb);
  const auto names = nlohmann::json::parse(ef.metadata.at("inputs")).get<std::vector<std::string>>();
  ASSERT_EQ(names.size(), 10u);
  EXPECT_EQ(names[2], dir_ / "gamma.txt:3");
  std::istringstream gl(gamma);
  std::string text;
  for (int64_t i = 0; std::getline(gl, text); ++i)
    EXPECT_LT((ef.tensors.at(0).second[i] - after.features({after.encode(text)})[0]).abs().max().item<double>(), 1e-5)
        << text;
  // Refused: a centroid on TF-IDF, or with fine-tuning.
  TrainOptions bad = options("bad");
  bad.head = "centroid";
  bad.strategy = "full";
  EXPECT_TRUE(test::contains(test::error_of([&] { train(bad); }), "--head centroid with --strategy full"));
  bad.backbone = "tfidf";
  bad.strategy = "linear";
  bad.weights = "none";
  EXPECT_TRUE(test::contains(test::error_of([&] { train(bad); }), "the tfidf backbone takes --head linear"));
}

// ---- Unlabelled target texts (--unlabeled, issue 19) ----

// A DANN run stopped twice and resumed ends with the weights of the run that
// was not stopped, the domain classifier included; its accuracy is logged.
TEST_F(TextTrain, ResumedAdaptationRunEqualsAnUninterruptedOne) {
  test::write_band_text_set(dir_ / "target.csv", 10, 3, {3, 2, 18, 2, 40, false});  // a labelled CSV read without its labels
  TrainOptions a = options("whole");
  a.epochs = 2;
  a.unlabeled = dir_ / "target.csv";
  a.adapt = "dann";
  a.domain_hidden = 8;
  train(a);
  const std::string csv = read_file(dir_ / "whole/metrics.csv");
  EXPECT_TRUE(test::contains(csv.substr(0, csv.find('\n')), ",domain_accuracy")) << csv;
  auto config = nlohmann::json::parse(read_file(dir_ / "whole/config.json"));
  EXPECT_EQ(config["counts"]["unlabeled"], 30);
  TrainOptions b = a;
  b.out = dir_ / "parts";
  EXPECT_EQ(test::train_stopped_twice(b, [](int64_t step) { return step == 3 || step == 8; }).back().epochs_run, 2);
  EXPECT_EQ(read_file(dir_ / "whole/model.safetensors"), read_file(dir_ / "parts/model.safetensors"));
  bool has_domain = false;
  for (const auto& name : test::expect_same_last_state(dir_ / "whole", dir_ / "parts"))
    has_domain = has_domain || test::contains(name, "adapter.domain");
  EXPECT_TRUE(has_domain);
}

// The unlabelled texts ride in the labelled batch's forward pass: with the
// unlabelled term weighted 0, every method trains the very weights of the
// supervised run (BERT's rows do not see each other; padding is masked);
// weighted 1, each changes them.
TEST_F(TextTrain, UnlabelledTermWeightedZeroIsTheSupervisedRun) {
  std::ofstream(dir_ / "target.txt") << "w20 w21 w420\nw130 w131\n\nw240 w241 w405 w406\nw25 w26 w27 w28 w29\n";
  TrainOptions base = options("supervised");
  base.dropout = 0;
  base.optimizer = "sgd";
  base.momentum = 0;
  base.lr = 0.5;
  train(base);
  auto ws = weights("supervised");
  for (const std::string method : {"pseudo", "fixmatch", "dan", "dann"}) {
    for (double weight : {0.0, 1.0}) {
      TrainOptions o = base;
      const std::string name = method + std::to_string(static_cast<int>(weight));
      o.out = dir_ / name;
      o.unlabeled = dir_ / "target.txt";
      o.unlabeled_ratio = 2;
      if (method == "pseudo" || method == "fixmatch") {
        o.self_train = method;
        o.unlabeled_weight = weight;
        o.confidence = 0;  // every unlabelled text counts
      } else {
        o.adapt = method;
        o.adapt_weight = weight;
        o.domain_hidden = 8;
      }
      train(o);
      auto w = weights(name);
      if (o.self_train != "none") {
        // At --confidence 0 every unlabelled text gives a pseudo-label: the
        // epoch's unlabeled_kept is 1 (metrics.csv's last column).
        const std::string csv = read_file(dir_ / name + "/metrics.csv");
        EXPECT_TRUE(test::contains(csv.substr(0, csv.find('\n')), ",unlabeled_kept")) << csv;
        EXPECT_EQ(std::stod(csv.substr(csv.find_last_of(',', csv.size() - 2) + 1)), 1.0) << csv;
      }
      if (weight == 0)
        EXPECT_LT(max_diff(ws, w), 1e-5) << method;
      else
        EXPECT_GT(max_diff(ws, w), 1e-4) << method;
    }
  }
  // DAN on a linear probe (cached features) aligns the head's output: the
  // same with the probe's own supervised run.
  TrainOptions probe = base;
  probe.strategy = "linear";
  probe.out = dir_ / "probe";
  train(probe);
  auto wp = weights("probe");
  for (double weight : {0.0, 1.0}) {
    TrainOptions o = probe;
    const std::string name = "probe-dan" + std::to_string(static_cast<int>(weight));
    o.out = dir_ / name;
    o.unlabeled = dir_ / "target.txt";
    o.unlabeled_ratio = 2;
    o.adapt = "dan";
    o.adapt_weight = weight;
    train(o);
    auto w = weights(name);
    EXPECT_EQ(max_diff(wp, w, "bert."), 0.0);  // the encoder stays frozen
    if (weight == 0)
      EXPECT_LT(max_diff(wp, w), 1e-5);
    else
      EXPECT_GT(max_diff(wp, w), 1e-4);
  }
}

TEST_F(TextTrain, BadUnlabelledTextsAreNamed) {
  const std::string data = dir_ / "train.csv", vocab = dir_ / "source/vocab.txt";
  std::ofstream(dir_ / "ids.csv") << "id,score\n1,2\n3,4\n";
  std::ofstream(dir_ / "target.txt") << "w20 w21\n";
  auto err = [&](std::vector<std::string> extra) {
    std::vector<std::string> a{"train", "--task", "text", "--data", data, "--out", dir_ / "bad", "--threads", "1",
                               "--quiet", "--overwrite", "--max-length", "32"};
    a.insert(a.end(), extra.begin(), extra.end());
    Cli r = graft_cli(a);
    EXPECT_EQ(r.code, 2) << r.err;
    return r.err;
  };
  const std::string src = dir_ / "source";
  EXPECT_TRUE(test::contains(err({"--weights", src, "--adapt", "dann", "--unlabeled", dir_ / "missing.txt"}),
                             "--unlabeled: '" + dir_ / "missing.txt" + "' does not exist"));
  EXPECT_TRUE(test::contains(err({"--weights", src, "--adapt", "dan", "--unlabeled", dir_ / "ids.csv"}),
                             "--unlabeled: " + dir_ / "ids.csv" + ": no text column given"));
  EXPECT_TRUE(test::contains(err({"--backbone", "tfidf", "--vocab", vocab, "--self-train", "pseudo", "--unlabeled",
                                  dir_ / "target.txt"}),
                             "--self-train pseudo with --backbone tfidf: a TF-IDF model has no learned features"));
  EXPECT_TRUE(test::contains(err({"--weights", src, "--adapt", "dann"}), "--adapt dann needs target texts"));
  EXPECT_TRUE(test::contains(err({"--weights", src, "--adapt", "cdan", "--strategy", "linear", "--unlabeled",
                                  dir_ / "target.txt"}),
                             "--adapt cdan with --strategy linear"));
}

TEST_F(TextTrain, BadInputIsNamed) {
  const std::string data = dir_ / "train.csv", vocab = dir_ / "source/vocab.txt";
  auto err = [&](std::vector<std::string> extra) {
    std::vector<std::string> a{"train", "--task", "text", "--data", data, "--out", dir_ / "bad",
                               "--threads", "1", "--quiet", "--overwrite"};
    a.insert(a.end(), extra.begin(), extra.end());
    if (std::find(a.begin(), a.end(), "--max-length") == a.end()) {
      a.push_back("--max-length");
      a.push_back("32");
    }
    Cli r = graft_cli(a);
    EXPECT_NE(r.code, 0);
    return r.err;
  };
  auto has = [](const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
  };
  EXPECT_TRUE(has(err({"--vocab", vocab}), "--backbone bert takes its size from the config.json"));
  EXPECT_TRUE(has(err({"--backbone", "bert-tiny"}), "--vocab: a WordPiece vocab.txt is required"));
  EXPECT_TRUE(has(err({"--backbone", "bert-tiny", "--weights", dir_ / "source"}),
                  "--backbone bert-tiny (2 layers, hidden 128) disagrees with"));
  EXPECT_TRUE(has(err({"--backbone", "resnet18", "--vocab", vocab}), "is not a text backbone"));
  EXPECT_TRUE(has(err({"--weights", dir_ / "source", "--max-length", "64"}),
                  "--max-length 64 exceeds the model's max_position_embeddings 40"));
  EXPECT_TRUE(has(err({"--backbone", "tfidf", "--vocab", vocab, "--strategy", "full"}),
                  "the tfidf backbone has nothing to fine-tune"));
  EXPECT_TRUE(has(err({"--weights", dir_ / "source", "--text-column", "review"}), "review"));
  EXPECT_TRUE(has(err({"--weights", dir_ / "source", "--augment", "light"}), "no augmentation"));
  EXPECT_TRUE(has(err({"--weights", dir_ / "source", "--precision", "int8"}),
                  "--precision int8: for the image linear probe's features"));
  // A vocabulary that disagrees with the weights.
  {
    std::ofstream v(dir_ / "small_vocab.txt");
    for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "w1"}) v << t << "\n";
  }
  EXPECT_TRUE(has(err({"--weights", dir_ / "source", "--vocab", dir_ / "small_vocab.txt"}),
                  "vocab_size 500"));
  // A vocabulary without [MASK].
  std::ofstream(dir_ / "no_mask.txt") << "[PAD]\n[UNK]\n[CLS]\n[SEP]\nw1\n";
  EXPECT_TRUE(has(err({"--backbone", "tfidf", "--vocab", dir_ / "no_mask.txt"}), "[MASK]"));
  // A label in --test that training never saw.
  std::ofstream(dir_ / "odd.csv") << "text,label\nw20 w21,alpha\nw300,delta\n";
  EXPECT_TRUE(has(err({"--backbone", "tfidf", "--vocab", vocab, "--test", dir_ / "odd.csv"}), "delta"));
  // Weights that do not fit the config beside them.
  fs::create_directories(dir_ / "wrong");
  fs::copy_file(test::fixture("bert/model.safetensors"), dir_ / "wrong/model.safetensors");
  fs::copy_file(vocab, dir_ / "wrong/vocab.txt");
  auto c = nlohmann::json::parse(read_file(test::fixture("bert/config.json")));
  c["intermediate_size"] = 128;
  std::ofstream(dir_ / "wrong/config.json") << c.dump();
  EXPECT_TRUE(has(err({"--weights", dir_ / "wrong"}), "does not fit the model of"));
}

}  // namespace
}  // namespace graft
