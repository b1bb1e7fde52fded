// Masked-language-model pretraining: masking proportions, packing, the
// latin-1 fallback, the files of the run, and resume equal to an
// uninterrupted run.

#include <random>

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "graft/text/bert.h"
#include "graft/text/mlm.h"
#include "graft/train/trainer.h"
#include "graft/weights/safetensors.h"
#include "test_util.h"

namespace graft {
namespace {

std::vector<std::string> small_vocab() {
  return test::bert_vocab({"the", "cat", "dog", "sat", "on", "mat", "a", "ran", "to", "park", "big",
                           "red", "ball", "and", "saw", ".", ",", "cafe", "##s", "in"});
}

TEST(Mlm, MaskingProportionsFollowBert) {
  WordPiece wp(small_vocab(), {});
  torch::manual_seed(0);
  torch::Tensor ids = torch::randint(5, static_cast<int64_t>(wp.size()), {64, 512}, torch::kInt64);
  ids.select(1, 0).fill_(wp.cls_id());
  ids.select(1, 511).fill_(wp.sep_id());
  ids.select(0, 3).narrow(0, 400, 112).fill_(wp.pad_id());
  torch::Generator gen = at::detail::createCPUGenerator(7);
  MaskedBatch b = mask_tokens(ids, wp, 0.15, gen);
  torch::Tensor chosen = b.labels.ne(-100);
  torch::Tensor special = ids.eq(wp.cls_id()) | ids.eq(wp.sep_id()) | ids.eq(wp.pad_id());
  EXPECT_FALSE((chosen & special).any().item<bool>());
  const double n_plain = special.logical_not().sum().item<double>();
  const double n = chosen.sum().item<double>();
  EXPECT_NEAR(n / n_plain, 0.15, 0.005);
  EXPECT_TRUE(b.labels.masked_select(chosen).equal(ids.masked_select(chosen)));
  EXPECT_TRUE(b.inputs.masked_select(chosen.logical_not()).equal(ids.masked_select(chosen.logical_not())));
  const double masked = (chosen & b.inputs.eq(wp.mask_id())).sum().item<double>() / n;
  const double same = (chosen & b.inputs.eq(ids)).sum().item<double>() / n;
  EXPECT_NEAR(masked, 0.8, 0.015);
  // Kept: 10%, plus random draws that hit the same id (1 in 25 here).
  EXPECT_NEAR(same, 0.1 + 0.1 / 25, 0.01);
  EXPECT_NEAR(1 - masked - same, 0.1 * 24 / 25, 0.01);
}

TEST(Mlm, PacksFixedLengthRowsAndReadsLatin1) {
  std::vector<int64_t> stream = {10, 11, 12, 13, 14, 15, 16};
  torch::Tensor rows = pack_sequences(stream, 5, 2, 3);
  ASSERT_EQ(rows.sizes(), (std::vector<int64_t>{2, 5}));
  EXPECT_TRUE(rows[0].equal(torch::tensor({2, 10, 11, 12, 3}, torch::kInt64)));
  EXPECT_TRUE(rows[1].equal(torch::tensor({2, 13, 14, 15, 3}, torch::kInt64)));
  test::TempDir dir;
  WordPiece wp(small_vocab(), {});
  write_file_atomic(dir / "utf8.txt", "the caf\xc3\xa9s\nsat\n");
  write_file_atomic(dir / "latin1.txt", "the caf\xe9s\nsat\n");
  EXPECT_EQ(tokenize_corpus({dir / "latin1.txt"}, wp), tokenize_corpus({dir / "utf8.txt"}, wp));
  auto ids = tokenize_corpus({dir / "utf8.txt", dir / "utf8.txt"}, wp);
  EXPECT_EQ(ids, (std::vector<int64_t>{5, 22, 23, 8, 3, 5, 22, 23, 8, 3}));
}

TrainOptions small_run(const test::TempDir& dir, const std::string& out) {
  std::string corpus;
  std::mt19937 rng(3);
  const char* sentences[] = {"the cat sat on the mat .", "a dog ran to the park .",
                             "the big red ball , and the dog saw a cat in the park ."};
  for (int i = 0; i < 300; ++i) corpus += std::string(sentences[rng() % 3]) + "\n";
  test::write_mlm_inputs(dir.path(), small_vocab(),
                         R"({"vocab_size": 25, "hidden_size": 32, "num_hidden_layers": 2,
                             "num_attention_heads": 2, "intermediate_size": 64,
                             "max_position_embeddings": 32})",
                         corpus);
  TrainOptions o = default_train_options("mlm");
  o.corpus = {dir / "corpus.txt"};
  o.vocab = dir / "vocab.txt";
  o.bert_config = dir / "bert.json";
  o.max_length = 16;
  o.batch_size = 16;
  o.epochs = 3;
  o.lr = 3e-3;
  o.threads = 1;
  o.quiet = true;
  o.out = out;
  return o;
}

TEST(Mlm, ResumedPretrainingEqualsAnUninterruptedOne) {
  test::TempDir dir;
  TrainOptions whole = small_run(dir, dir / "whole");
  TrainSummary a = train(whole);
  EXPECT_EQ(a.epochs_run, 3);
  // It learns: the masked-token accuracy beats always guessing the commonest token.
  EXPECT_GT(a.last_val.accuracy, 0.3);

  TrainOptions cut = small_run(dir, dir / "cut");
  cut.should_stop = [](int64_t step) { return step == 17; };  // mid-epoch 2
  TrainSummary b = train(cut);
  ASSERT_TRUE(b.interrupted);
  TrainOptions resume;
  resume.out = dir / "cut";
  resume.resume = true;
  resume.threads = 1;
  resume.quiet = true;
  TrainSummary c = train(resume);
  EXPECT_FALSE(c.interrupted);
  EXPECT_EQ(c.epochs_run, 3);
  EXPECT_EQ(c.task, "mlm");
  auto wa = test::load_named(dir / "whole/model.safetensors");
  auto wc = test::load_named(dir / "cut/model.safetensors");
  ASSERT_EQ(wa.size(), wc.size());
  for (const auto& [k, v] : wa) EXPECT_TRUE(v.equal(wc.at(k))) << k;
  EXPECT_EQ(read_file(dir / "whole/metrics.csv").substr(0, 40),
            read_file(dir / "cut/metrics.csv").substr(0, 40));

  // The run folder holds a Hugging Face style checkpoint that loads clean.
  BertForMaskedLM m(read_bert_config(dir / "whole/bert_config.json"));
  LoadReport r = load_bert_weights(*m, read_weights(dir / "whole/model.safetensors"));
  EXPECT_TRUE(r.clean()) << r.summary();
  EXPECT_EQ(read_file(dir / "whole/vocab.txt"), read_file(dir / "vocab.txt"));
}

TEST(Mlm, BadInputFailsBeforeTheCorpusIsRead) {
  test::TempDir dir;
  TrainOptions o = small_run(dir, dir / "run");
  o.corpus = {dir / "missing.txt"};
  EXPECT_NE(test::error_of([&] { pretrain_mlm(o); }).find("missing.txt' is not a file"), std::string::npos);
  o = small_run(dir, dir / "run");
  o.bert_config.clear();
  o.size = "tiny";  // vocab_size 25 from the vocabulary: fine
  o.max_length = 1000;
  EXPECT_NE(test::error_of([&] { pretrain_mlm(o); }).find("max_position_embeddings"), std::string::npos);
  o = small_run(dir, dir / "run");
  write_file_atomic(dir / "bad.json", R"({"vocab_size": 99})");
  o.bert_config = dir / "bad.json";
  EXPECT_NE(test::error_of([&] { pretrain_mlm(o); }).find("disagrees with --vocab"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir / "run"));
}

}  // namespace
}  // namespace graft
