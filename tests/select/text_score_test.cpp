// graft score --task text (issue 18): each candidate's features are those the
// linear probe of graft train --task text reads (a trained linear run's
// frozen encoder read back; for the TextCNN, a brute-force convolution over
// the vectors); LogME and H-score on them equal the numpy reference
// (tests/reference/transferability_fixtures.py); the CLI end to end; bad
// input named.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/files.h"
#include "graft/core/runtime.h"
#include "graft/select/text_score.h"
#include "graft/select/transferability.h"
#include "graft/text/text_data.h"
#include "graft/text/text_model.h"
#include "graft/text/text_source.h"
#include "graft/text/text_train.h"
#include "graft/weights/safetensors.h"
#include "test_util.h"
#include "text_sets.h"

namespace graft {
namespace {

namespace fs = std::filesystem;


class TextScore : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_fixture("bert/model.safetensors") || !test::have_fixture("text_model/run/vocab.txt"))
      GTEST_SKIP() << "no reference fixtures";
    test::write_band_text_set(dir_ / "train.csv", 12, 3);
    fs::create_directories(dir_ / "source");  // a pretraining run / Hugging Face folder
    fs::copy_file(test::fixture("bert/model.safetensors"), dir_ / "source/model.safetensors");
    fs::copy_file(test::fixture("bert/config.json"), dir_ / "source/config.json");
    fs::copy_file(test::fixture("text_model/run/vocab.txt"), dir_ / "source/vocab.txt");
    vocab_ = dir_ / "source/vocab.txt";
    // Word vectors (6-d) for half of the words the set uses, and some it does not.
    std::vector<std::string> words;
    for (int i = 20; i < 500; i += 2) words.push_back("w" + std::to_string(i));
    words.push_back("unused");
    torch::manual_seed(9);
    save_safetensors(dir_ / "vec.safetensors", {{"vectors", torch::randn({static_cast<int64_t>(words.size()), 6})}});
    std::string lines;
    for (size_t i = 0; i < words.size(); ++i) lines += words[i] + (i + 1 < words.size() ? "\n" : "");
    write_file_atomic(dir_ / "vec.words.txt", lines);
  }
  // A linear probe as graft train runs it (every text in training, seed 0).
  std::string train_linear(const std::string& name, const std::string& backbone, const std::string& weights) {
    TrainOptions o = default_train_options("text");
    o.data = dir_ / "train.csv";
    o.backbone = backbone;
    o.weights = weights;
    if (backbone != "use-lite") o.vocab = vocab_;
    o.max_length = 32;  // the fixture BERT has 40 positions
    o.strategy = "linear";
    o.epochs = 1;
    o.batch_size = 8;
    o.val_split = 0;
    o.threads = 1;
    o.quiet = true;
    o.out = dir_ / name;
    train(o);
    return o.out;
  }
  ScoreOptions score_options(std::vector<std::string> candidates) {
    ScoreOptions o;
    o.data = dir_ / "train.csv";
    o.candidates = std::move(candidates);
    o.threads = 1;
    return o;
  }
  TrainOptions text_options() {
    TrainOptions t = default_train_options("text");
    t.vocab = vocab_;
    t.max_length = 32;
    return t;
  }
  // A run's own features (and logits) of the target texts, read back.
  std::pair<torch::Tensor, torch::Tensor> run_rows(const std::string& run) {
    const TextModel m = load_text_model(run);
    const TextSet set = read_text_set(dir_ / "train.csv");
    std::vector<EncodedText> inputs;
    for (const auto& x : set.examples) inputs.push_back(m.encode(x.text));
    return {m.features(inputs, 5), m.logits(inputs, 5)};
  }
  test::TempDir dir_;
  std::string vocab_;
};

const TextCandidateFeatures& features_of(const std::vector<TextCandidateFeatures>& all, const std::string& spec) {
  for (const auto& f : all)
    if (f.candidate == spec) return f;
  throw std::runtime_error("no features for " + spec);
}

TEST_F(TextScore, FeaturesAreTheLinearProbesAndScoresEqualNumpy) {
  const std::string pretrained = train_linear("probe-pretrained", "bert", dir_ / "source");
  const std::string scratch = train_linear("probe-scratch", "bert-tiny", "none");
  const std::vector<std::string> specs = {"bert=" + (dir_ / "source"), "bert-tiny=none",
                                          "textcnn=" + (dir_ / "vec.safetensors"), "textcnn=none", pretrained};
  std::vector<TextCandidateFeatures> feats;
  const auto scores = score_text_candidates(score_options(specs), text_options(), &feats);
  ASSERT_EQ(scores.size(), specs.size());
  ASSERT_EQ(feats.size(), specs.size());
  for (size_t i = 0; i + 1 < scores.size(); ++i) EXPECT_GE(scores[i].logme, scores[i + 1].logme) << "sorted";
  for (size_t i = 0; i < scores.size(); ++i) EXPECT_EQ(scores[i].candidate, feats[i].candidate);

  // BERT (a source folder, and random initialisation seeded as graft train
  // seeds it): the pooled output the trained linear probe's frozen encoder gives.
  const auto [pre_f, pre_z] = run_rows(pretrained);
  const auto [scr_f, scr_z] = run_rows(scratch);
  EXPECT_LT((features_of(feats, "bert=" + (dir_ / "source")).values - pre_f).abs().max().item<double>(), 1e-5);
  EXPECT_LT((features_of(feats, "bert-tiny=none").values - scr_f).abs().max().item<double>(), 1e-5);
  // The run itself: the same features, and its classifier gives LEEP and NCE.
  const auto& run = features_of(feats, pretrained);
  EXPECT_LT((run.values - pre_f).abs().max().item<double>(), 1e-5);
  ASSERT_TRUE(run.source_probs.defined());
  const torch::Tensor probs = torch::softmax(pre_z.to(torch::kFloat64), 1);
  EXPECT_LT((run.source_probs - probs).abs().max().item<double>(), 1e-6);
  for (const auto& s : scores) {
    SCOPED_TRACE(s.candidate);
    EXPECT_EQ(s.has_source_classifier, s.candidate == pretrained);
    EXPECT_EQ(s.feature_dim, features_of(feats, s.candidate).values.size(1));
    if (s.has_source_classifier) {
      EXPECT_NEAR(s.leep, leep(probs, run.labels), 1e-9);
      EXPECT_NEAR(s.nce, nce(probs.argmax(1), run.labels), 1e-9);
    }
  }

  // TextCNN: the vocabulary is the target's words, the embedding the vectors
  // (OOV and rand uniform in [-0.25, 0.25]); the features are, for each
  // width w and map k, max over t of relu(b_k + sum W_k * E[t .. t+w)),
  // recomputed here by loops from the model graft train builds. The 36 texts
  // are one batch (< 64), so each is padded with <pad> (zero) rows to the
  // longest, as the TextCNN's batch is.
  const TextSet set = read_text_set(dir_ / "train.csv");
  const auto vectors = load_safetensors(dir_ / "vec.safetensors").tensors.at(0).second;
  for (const std::string vec : {std::string(dir_ / "vec.safetensors"), std::string("none")}) {
    SCOPED_TRACE(vec);
    TrainOptions t = text_options();
    t.backbone = "textcnn";
    t.weights = "none";
    t.embeddings = vec;
    TextSourceBuilder b(t);
    b.set_training_texts(set.classes, false, set.examples);
    b.build_network();
    const TextModel& m = b.text_model();
    const torch::Tensor emb = m.textcnn->embedding->weight.detach().to(torch::kFloat64);
    ASSERT_EQ(emb.size(1), vec == "none" ? 100 : 6);
    int64_t found = 0;
    for (int64_t id = 2; id < m.words->size(); ++id) {
      const std::string& w = m.words->word(id);
      const int n = std::stoi(w.substr(1));
      if (vec != "none" && n % 2 == 0 && n < 500) {
        EXPECT_TRUE(torch::equal(emb[id].to(torch::kFloat32), vectors[(n - 20) / 2])) << w;
        ++found;
      } else {
        EXPECT_LE(emb[id].abs().max().item<double>(), 0.25) << w;
      }
    }
    if (vec != "none") EXPECT_GT(found, 20);
    EXPECT_EQ(emb[0].abs().max().item<double>(), 0.0) << "<pad> is a zero row";
    const torch::Tensor got = features_of(feats, "textcnn=" + vec).values.to(torch::kFloat64);
    ASSERT_EQ(got.size(0), static_cast<int64_t>(set.examples.size()));
    ASSERT_EQ(got.size(1), 300);
    double worst = 0;
    size_t longest = 5;
    for (const auto& x : set.examples) longest = std::max(longest, m.words->encode(x.text, m.info.max_length).ids.size());
    for (size_t i = 0; i < set.examples.size(); ++i) {
      std::vector<int64_t> ids = m.words->encode(set.examples[i].text, m.info.max_length).ids;
      while (ids.size() < longest) ids.push_back(0);
      for (size_t j = 0; j < 3; ++j) {
        auto conv = m.textcnn->convs->ptr<torch::nn::Conv1dImpl>(j);
        const torch::Tensor W = conv->weight.detach().to(torch::kFloat64);  // [100, D, w]
        const torch::Tensor bias = conv->bias.detach().to(torch::kFloat64);
        const int64_t w = W.size(2), D = W.size(1);
        auto Wa = W.accessor<double, 3>();
        auto Ea = emb.accessor<double, 2>();
        for (int64_t k = 0; k < W.size(0); ++k) {
          double best = 0;  // relu, then max: never below 0
          for (size_t s = 0; s + static_cast<size_t>(w) <= ids.size(); ++s) {
            double z = bias[k].item<double>();
            for (int64_t q = 0; q < w; ++q)
              for (int64_t d = 0; d < D; ++d) z += Wa[k][d][q] * Ea[ids[s + static_cast<size_t>(q)]][d];
            best = std::max(best, z);
          }
          worst = std::max(worst, std::abs(best - got[static_cast<int64_t>(i)][static_cast<int64_t>(j) * 100 + k]
                                                      .item<double>()));
        }
      }
    }
    EXPECT_LT(worst, 1e-4);
  }

  // LogME and H-score equal the numpy reference on the same features.
  if (std::system("/usr/bin/python3 -c 'import numpy, torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3-numpy / python3-torch absent: the numpy recomputation is skipped";
  TensorList dump;
  for (size_t i = 0; i < feats.size(); ++i) dump.emplace_back("f" + std::to_string(i), feats[i].values);
  dump.emplace_back("y", feats[0].labels);
  save_safetensors(dir_ / "dump.safetensors", dump);
  const std::string cmd =
      "/usr/bin/python3 -c \"import sys, json; sys.path.insert(0, sys.argv[1]); import st, "
      "transferability_fixtures as t; d, _ = st.load(sys.argv[2]); y = d['y'].numpy(); "
      "json.dump([[t.logme(d['f%d' % i].numpy(), y), t.h_score(d['f%d' % i].numpy(), y)] for i in "
      "range(len(d) - 1)], open(sys.argv[3], 'w'))\" " +
      std::string(GRAFT_SOURCE_DIR) + "/tests/reference " + (dir_ / "dump.safetensors") + " " + (dir_ / "ref.json");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const nlohmann::json ref = nlohmann::json::parse(read_file(dir_ / "ref.json"));
  ASSERT_EQ(ref.size(), scores.size());
  for (size_t i = 0; i < scores.size(); ++i) {
    SCOPED_TRACE(scores[i].candidate);
    EXPECT_NEAR(scores[i].logme, ref[i][0].get<double>(), 1e-6);
    EXPECT_NEAR(scores[i].h_score, ref[i][1].get<double>(), 1e-6 * std::max(1.0, std::abs(scores[i].h_score)));
  }
}

TEST_F(TextScore, UseLiteFeaturesAreTheLinearProbes) {
  const auto ref = test::parity_fixture("use_lite_parity", "use_lite_fixtures.py");
  if (!ref) GTEST_SKIP() << "no use-lite reference (node/npm or the data absent)";
  const std::string model = (*ref)["model"].get<std::string>();
  const std::string probe = train_linear("probe-use", "use-lite", model);
  std::vector<TextCandidateFeatures> feats;
  const auto scores = score_text_candidates(score_options({"use-lite=" + model}), text_options(), &feats);
  ASSERT_EQ(feats.size(), 1u);
  EXPECT_EQ(scores[0].feature_dim, 512);
  EXPECT_LT((feats[0].values - run_rows(probe).first).abs().max().item<double>(), 1e-5);
}

TEST_F(TextScore, PerClassCapsTheTextsSeeded) {
  ScoreOptions o = score_options({"bert-tiny=none"});
  o.per_class = 5;
  o.classes = {"gamma", "alpha"};
  std::vector<TextCandidateFeatures> a, b;
  score_text_candidates(o, text_options(), &a);
  score_text_candidates(o, text_options(), &b);
  ASSERT_EQ(a[0].values.size(0), 10);
  EXPECT_EQ(a[0].labels.eq(0).sum().item<int64_t>(), 5);
  EXPECT_TRUE(torch::equal(a[0].values, b[0].values)) << "seeded";
  o.seed = 1;
  std::vector<TextCandidateFeatures> c;
  score_text_candidates(o, text_options(), &c);
  EXPECT_FALSE(torch::equal(a[0].values, c[0].values)) << "another seed, other texts (and weights)";
}

TEST_F(TextScore, CliEndToEnd) {
  const std::string run = train_linear("probe", "bert", dir_ / "source");
  const test::CliResult r =
      test::graft_cli({"score", "--task", "text", "--data", dir_ / "train.csv", "--backbones",
                       "bert-tiny=none,textcnn=" + (dir_ / "vec.safetensors") + "," + run, "--vocab", vocab_,
                       "--max-length", "32", "--threads", "1", "--quiet", "--out", dir_ / "scores.json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(test::contains(r.out, "| 3 |")) << r.out;
  const nlohmann::json j = nlohmann::json::parse(read_file(dir_ / "scores.json"));
  ASSERT_EQ(j.size(), 3u);
  const auto lib = score_text_candidates(
      score_options({"bert-tiny=none", "textcnn=" + (dir_ / "vec.safetensors"), run}), text_options());
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(j[i]["candidate"], lib[i].candidate);
    EXPECT_NEAR(j[i]["logme"].get<double>(), lib[i].logme, 1e-9);
    EXPECT_NEAR(j[i]["h_score"].get<double>(), lib[i].h_score, 1e-9);
    EXPECT_EQ(j[i].contains("leep"), lib[i].candidate == run);
  }
}

// --source-data (issue 19): the domain-shift figures are the functions of
// select/transferability.h on the run's own features of the two sets.
TEST_F(TextScore, SourceDataThroughTheCommandLine) {
  const std::string run = train_linear("probe", "bert", dir_ / "source");
  test::write_band_text_set(dir_ / "other.csv", 7, 11);  // read without its labels
  const test::CliResult r = test::graft_cli(
      {"score", "--task", "text", "--data", dir_ / "train.csv", "--source-data", dir_ / "other.csv", "--backbones",
       run, "--max-length", "32", "--permutations", "50", "--threads", "1", "--quiet", "--out", dir_ / "s.json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(test::contains(r.out, "| MMD p | PAD |")) << r.out;
  const nlohmann::json s = nlohmann::json::parse(read_file(dir_ / "s.json")).at(0);
  const TextModel m = load_text_model(run);
  auto rows = [&](const std::string& file) {
    std::vector<EncodedText> inputs;
    for (const auto& x : read_text_set(file).examples) inputs.push_back(m.encode(x.text));
    return m.features(inputs, 64);
  };
  const torch::Tensor target = rows(dir_ / "train.csv"), source = rows(dir_ / "other.csv");
  ASSERT_EQ(source.size(0), 21);
  test::expect_domain_shift(s, source, target, 50);

  const test::CliResult bad = test::graft_cli({"score", "--task", "text", "--data", dir_ / "train.csv",
                                               "--source-data", dir_ / "nope.txt", "--backbones", run, "--quiet"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_TRUE(test::contains(bad.err, "--source-data: '" + (dir_ / "nope.txt") + "' does not exist")) << bad.err;
}

TEST_F(TextScore, BadInputIsAUsageErrorNamingIt) {
  test::write_synthetic_image_folder(dir_ / "images", 2, 2, 32);
  const std::string data = dir_ / "train.csv";
  auto score = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"score", "--quiet", "--threads", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::graft_cli(args);
  };
  auto expect = [](const test::CliResult& r, const std::vector<std::string>& parts) {
    EXPECT_EQ(r.code, 2) << r.err;
    for (const auto& p : parts) EXPECT_TRUE(test::contains(r.err, p)) << "want '" << p << "' in: " << r.err;
  };
  // An image backbone with --task text.
  expect(score({"--task", "text", "--data", data, "--backbones", "resnet18=none"}),
         {"--backbones", "resnet18=none", "an image backbone"});
  // A text backbone on an image folder: without --task text, and with it.
  expect(score({"--data", dir_ / "images", "--backbones", "textcnn=none"}),
         {"--backbones", "textcnn=none", "add --task text"});
  expect(score({"--task", "text", "--data", dir_ / "images", "--backbones", "textcnn=none"}),
         {"--data", dir_ / "images", "holds folders"});
  // A missing weights folder.
  expect(score({"--task", "text", "--data", data, "--backbones", "use-lite=" + (dir_ / "nope")}),
         {"--backbones", "use-lite=" + (dir_ / "nope"), "do not exist"});
  // A data file without a text column.
  write_file_atomic(dir_ / "notext.csv", "review_id,label\n1,a\n2,b\n");
  expect(score({"--task", "text", "--data", dir_ / "notext.csv", "--backbones", "textcnn=none"}),
         {"--data", "notext.csv", "review_id"});
  // A text option without --task text, an unknown task, an image run, a tfidf backbone.
  expect(score({"--data", dir_ / "images", "--backbones", "resnet20=none", "--text-column", "x"}),
         {"--text-column", "--task text"});
  expect(score({"--task", "audio", "--data", data, "--backbones", "textcnn=none"}), {"--task", "audio"});
  const std::string image_run = test::resnet20_fixture_run(dir_.path());
  expect(score({"--task", "text", "--data", data, "--backbones", image_run}), {image_run, "task image"});
  expect(score({"--task", "text", "--data", data, "--backbones", "tfidf=none"}), {"tfidf=none", "no source"});
  // BERT from scratch without a vocabulary.
  expect(score({"--task", "text", "--data", data, "--backbones", "bert-tiny=none"}),
         {"bert-tiny=none", "--vocab"});
}

}  // namespace
}  // namespace graft
