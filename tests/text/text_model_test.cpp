// Text classifiers: TF-IDF and the BERT head against independent references,
// dynamic padding, length bucketing.

#include <fstream>
#include <numeric>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/files.h"
#include "graft/text/text_model.h"
#include "test_util.h"

namespace graft {
namespace {

TEST(TextTfidf, MatchesTheReferenceArithmetic) {
  if (!test::have_fixture("text_model/tfidf.json")) GTEST_SKIP() << "no reference fixtures";
  auto j = nlohmann::json::parse(read_file(test::fixture("text_model/tfidf.json")));
  auto docs = j["docs"].get<std::vector<std::vector<int64_t>>>();
  auto new_docs = j["new_docs"].get<std::vector<std::vector<int64_t>>>();
  for (const auto& c : j["cases"]) {
    TfidfOptions o;
    o.ngram_max = c["ngram_max"];
    o.min_df = c["min_df"];
    o.max_features = c["max_features"];
    o.sublinear_tf = c["sublinear_tf"];
    Tfidf v = Tfidf::fit(docs, o);
    SCOPED_TRACE(c["max_features"].dump() + " " + c["ngram_max"].dump());
    ASSERT_EQ(v.size(), static_cast<int64_t>(c["terms"].size()));
    // Terms (in the vectorizer's text form) and idf.
    std::istringstream text(v.to_text());
    std::string line;
    for (int i = 0; i < 5; ++i) std::getline(text, line);
    for (size_t i = 0; i < c["terms"].size(); ++i) {
      ASSERT_TRUE(std::getline(text, line));
      EXPECT_EQ(line.substr(0, line.find('\t')), c["terms"][i].get<std::string>());
      EXPECT_NEAR(v.idf()[i], c["idf"][i].get<double>(), 1e-12);
    }
    for (const auto& [which, rows] : {std::pair{&docs, c["rows"]}, std::pair{&new_docs, c["new_rows"]}}) {
      SparseRows r = v.transform(*which);
      ASSERT_EQ(r.rows(), static_cast<int64_t>(rows.size()));
      for (size_t d = 0; d < rows.size(); ++d) {
        ASSERT_EQ(r.offsets[d + 1] - r.offsets[d], static_cast<int64_t>(rows[d].size())) << "row " << d;
        for (size_t k = 0; k < rows[d].size(); ++k) {
          EXPECT_EQ(r.indices[r.offsets[d] + k], rows[d][k][0].get<int64_t>());
          EXPECT_NEAR(r.values[r.offsets[d] + k], rows[d][k][1].get<double>(), 1e-6);
        }
      }
    }
    // The saved form reads back to the same vectorizer.
    Tfidf back = Tfidf::from_text(v.to_text(), "tfidf.txt");
    EXPECT_EQ(back.to_text(), v.to_text());
  }
}

TEST(TextTfidf, BadFileNamesTheLine) {
  std::string ok = "graft-tfidf 1\nngram_max 2\nmin_df 2\nmax_features 0\nsublinear_tf 1\n";
  EXPECT_NE(test::error_of([&] { Tfidf::from_text("graft-bow 3\n", "x.txt"); }).find("'x.txt' line 1"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { Tfidf::from_text(ok + "7\t1.5\n3\t1.0\n", "x.txt"); }).find("line 7: terms out of order"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { Tfidf::from_text(ok + "7 x\t1.5\n", "x.txt"); }).find("line 6"),
            std::string::npos);
}

TEST(TextTfidf, ClassifierIsASparseLinearLayer) {
  Tfidf v = Tfidf::fit({{1, 2, 3}, {2, 3, 4}, {1, 4}, {3, 3, 1}}, TfidfOptions{2, 1, 0, true});
  SparseRows rows = v.transform({{1, 2, 3}, {4, 4, 1}, {}});
  TfidfClassifier head(v.size(), 3);
  torch::manual_seed(0);
  {
    torch::NoGradGuard g;
    head->classifier->weight.normal_();
    head->classifier->bias.normal_();
  }
  auto [idx, offs, w] = rows.select({0, 1, 2});
  torch::Tensor got = head->forward(idx, offs, w);
  torch::Tensor dense = torch::zeros({3, v.size()});
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t i = rows.offsets[r]; i < rows.offsets[r + 1]; ++i) dense[r][rows.indices[i]] = rows.values[i];
  torch::Tensor want = head->classifier->forward(dense);
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-6);
}

TEST(TextModel, BertClassifierMatchesReference) {
  if (!test::have_fixture("text_model/io.safetensors")) GTEST_SKIP() << "no reference fixtures";
  TextModel m = load_text_model(test::fixture("text_model/run"));
  auto io = test::load_named(test::fixture("text_model/io.safetensors"));
  EXPECT_EQ(m.info.classes, (std::vector<std::string>{"neg", "neutral", "pos"}));
  EXPECT_TRUE(m.info.pairs);
  // Each row alone (unpadded), through the length-batched path.
  std::vector<EncodedText> inputs;
  for (int64_t r = 0; r < io["input_ids"].size(0); ++r) {
    int64_t n = io["attention_mask"][r].sum().item<int64_t>();
    EncodedText e;
    for (int64_t i = 0; i < n; ++i) {
      e.ids.push_back(io["input_ids"][r][i].item<int64_t>());
      e.types.push_back(io["token_type_ids"][r][i].item<int64_t>());
    }
    inputs.push_back(e);
  }
  torch::Tensor got = m.logits(inputs, 3);
  EXPECT_LT(test::rel_error(got, io["logits"]), 1e-5) << got << io["logits"];
  // The padded batch as the reference ran it.
  torch::InferenceMode guard;
  TextBatch b{io["input_ids"], io["token_type_ids"], io["attention_mask"]};
  EXPECT_LT(test::rel_error(m.bert->forward(b), io["logits"]), 1e-5);
}

TEST(TextModel, DynamicPaddingDoesNotChangeLogits) {
  if (!test::have_fixture("text_model/run/model.json")) GTEST_SKIP() << "no reference fixtures";
  TextModel m = load_text_model(test::fixture("text_model/run"));
  std::vector<EncodedText> inputs = {m.encode("w7 w8 w9", "w10"), m.encode("w11"),
                                     m.encode("w12 w13 w14 w15 w16 w17 w18 w19 w20 w21 w22 w23 w24")};
  torch::Tensor together = m.logits(inputs, 3);  // padded to the longest
  for (size_t i = 0; i < inputs.size(); ++i) {
    torch::Tensor alone = m.logits({inputs[i]}, 1);
    EXPECT_LT((alone[0] - together[static_cast<int64_t>(i)]).abs().max().item<double>(), 1e-5) << i;
  }
  // Truncation to the model's max_length (16), counted.
  int64_t dropped = 0;
  std::string longer;
  for (int i = 0; i < 30; ++i) longer += "w" + std::to_string(100 + i) + " ";
  EncodedText e = m.encode(longer, "w5 w6", &dropped);
  EXPECT_EQ(e.ids.size(), 16u);
  EXPECT_EQ(dropped, 30 + 2 + 3 - 16);
}

TEST(TextModel, CollatePadsToTheLongest) {
  EncodedText a{{2, 7, 3}, {0, 0, 0}}, b{{2, 8, 9, 3, 10, 3}, {0, 0, 0, 0, 1, 1}};
  TextBatch t = collate_texts({&a, &b}, 0);
  EXPECT_TRUE(t.input_ids.equal(torch::tensor({2, 7, 3, 0, 0, 0, 2, 8, 9, 3, 10, 3}).view({2, 6})));
  EXPECT_TRUE(t.attention_mask.equal(torch::tensor({1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1}).view({2, 6})));
  EXPECT_TRUE(t.token_type_ids.equal(torch::tensor({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1}).view({2, 6})));
}

TEST(TextModel, LengthBatchesCoverEveryItemOnceAndGroupLengths) {
  const size_t n = 1003;
  std::vector<int64_t> lengths(n);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) {
    lengths[i] = static_cast<int64_t>((i * 7919) % 97);
    order[i] = (i * 389) % n;
  }
  for (int64_t bucket : {1, 4, 100000}) {
    auto batches = length_batches(order, lengths, 10, bucket);
    std::multiset<int64_t> seen;
    size_t pos = 0;
    for (size_t b = 0; b < batches.size(); ++b) {
      EXPECT_LE(batches[b].size(), 10u);
      if (b + 1 < batches.size()) EXPECT_EQ(batches[b].size(), 10u);
      for (int64_t i : batches[b]) seen.insert(i);
      if (bucket == 1)
        for (int64_t i : batches[b]) EXPECT_EQ(static_cast<size_t>(i), order[pos++]);
    }
    EXPECT_EQ(seen.size(), n);
    EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), n);
    if (bucket > 1) {
      // Within each run of bucket batches, lengths never increase, and each
      // run holds the same items as that stretch of `order`.
      for (size_t r = 0; r < batches.size(); r += static_cast<size_t>(std::min<int64_t>(bucket, 1000))) {
        std::vector<int64_t> flat;
        for (size_t b = r; b < std::min(batches.size(), r + static_cast<size_t>(bucket)); ++b)
          flat.insert(flat.end(), batches[b].begin(), batches[b].end());
        for (size_t k = 1; k < flat.size(); ++k)
          EXPECT_GE(lengths[flat[k - 1]], lengths[flat[k]]);
        std::multiset<int64_t> want(order.begin() + static_cast<std::ptrdiff_t>(r * 10),
                                    order.begin() + static_cast<std::ptrdiff_t>(std::min(n, (r + bucket) * 10)));
        EXPECT_EQ(std::multiset<int64_t>(flat.begin(), flat.end()), want);
        if (bucket > 1000) break;
      }
    }
  }
}

TEST(TextModel, StagesOfBertParameters) {
  EXPECT_EQ(bert_stage("bert.embeddings.word_embeddings.weight", 4), 0);
  EXPECT_EQ(bert_stage("bert.encoder.layer.0.attention.self.query.weight", 4), 1);
  EXPECT_EQ(bert_stage("bert.encoder.layer.3.output.LayerNorm.bias", 4), 4);
  EXPECT_EQ(bert_stage("bert.pooler.dense.weight", 4), 5);
  EXPECT_EQ(bert_stage("classifier.weight", 4), -1);
}

TEST(TextModel, LoadNamesWhatIsWrong) {
  if (!test::have_fixture("text_model/run/model.json")) GTEST_SKIP() << "no reference fixtures";
  test::TempDir dir;
  for (const char* f : {"model.json", "model.safetensors", "vocab.txt"})
    std::filesystem::copy_file(test::fixture(std::string("text_model/run/") + f), dir / f);
  auto j = nlohmann::json::parse(read_file(dir / "model.json"));
  j["bert"]["hidden_size"] = 128;
  j["bert"]["intermediate_size"] = 320;
  write_file_atomic(dir / "model.json", j.dump());
  std::string e = test::error_of([&] { load_text_model(dir.path()); });
  EXPECT_NE(e.find("model.safetensors' does not match its model.json"), std::string::npos) << e;
  j["bert"]["hidden_size"] = 64;
  j["bert"]["intermediate_size"] = 160;
  j["bert"]["vocab_size"] = 400;
  write_file_atomic(dir / "model.json", j.dump());
  e = test::error_of([&] { load_text_model(dir.path()); });
  EXPECT_NE(e.find("vocab_size 400 but"), std::string::npos) << e;
  EXPECT_NE(test::error_of([&] { load_text_model(dir / "nothing"); }).find("has no model.json"),
            std::string::npos);
}

}  // namespace
}  // namespace graft
