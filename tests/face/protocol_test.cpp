// Face evaluation protocols checked against tests/reference/face_protocol_ref.py,
// an independent brute-force recomputation in plain Python.
#include "graft/face/protocol.h"

#include <cstdlib>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/files.h"
#include "test_util.h"

namespace graft {
namespace {

// `ids` identities x `per` images: unit vectors around a random centre each,
// noisy enough that some pairs are confused.
std::pair<torch::Tensor, std::vector<int64_t>> clusters(int ids, int per, double noise, uint64_t seed) {
  torch::manual_seed(seed);
  const auto centres = torch::randn({ids, 16}, torch::kFloat64);
  std::vector<torch::Tensor> rows;
  std::vector<int64_t> labels;
  for (int i = 0; i < ids; ++i) {
    for (int j = 0; j < per; ++j) {
      auto v = centres[i] + noise * torch::randn({16}, torch::kFloat64);
      rows.push_back(v / v.norm());
      labels.push_back(i);
    }
  }
  return {torch::stack(rows).to(torch::kFloat32), labels};
}

nlohmann::json python_reference(const nlohmann::json& dump, const test::TempDir& dir) {
  write_file_atomic(dir / "dump.json", dump.dump());
  const std::string cmd = std::string("/usr/bin/python3 ") + GRAFT_SOURCE_DIR +
                          "/tests/reference/face_protocol_ref.py " + (dir / "dump.json") + " " +
                          (dir / "ref.json");
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return nlohmann::json::parse(read_file(dir / "ref.json"));
}

TEST(FaceProtocol, PairsFollowTheProtocol) {
  std::vector<int64_t> labels = {0, 0, 0, 1, 1, 2, 2, 2, 2, 3};
  const auto pairs = make_face_pairs(labels, 10, 7);
  int64_t genuine = 0;
  std::set<std::pair<int64_t, int64_t>> seen;
  for (const auto& p : pairs) {
    EXPECT_LT(p.a, p.b);
    EXPECT_EQ(p.same, labels[p.a] == labels[p.b]);
    EXPECT_TRUE(seen.insert({p.a, p.b}).second) << "pair twice";
    genuine += p.same;
  }
  EXPECT_EQ(genuine, 3 + 1 + 6);
  EXPECT_EQ(static_cast<int64_t>(pairs.size()), 2 * genuine);
  EXPECT_EQ(make_face_pairs(labels, 10, 7)[5].b, pairs[5].b) << "not seeded";
  EXPECT_NE(test::error_of([] { make_face_pairs({0, 1, 2}, 10, 0); }).find("no genuine pair"), std::string::npos);
  EXPECT_NE(test::error_of([] { make_face_pairs({0, 0}, 10, 0); }).find("no impostor pair"), std::string::npos);
}

TEST(FaceProtocol, MetricsEqualAnIndependentComputation) {
  const auto [emb, labels] = clusters(15, 6, 0.9, 3);
  const auto v = evaluate_verification(emb, labels, 10, 1e-2, 11);
  nlohmann::json dump;
  dump["labels"] = labels;
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t i = 0; i < emb.size(0); ++i) {
    const auto r = emb[i].contiguous();
    rows.push_back(std::vector<float>(r.data_ptr<float>(), r.data_ptr<float>() + r.numel()));
  }
  dump["embeddings"] = rows;
  dump["pairs"] = nlohmann::json::array();
  for (const auto& p : v.pairs) dump["pairs"].push_back({p.a, p.b, p.same ? 1 : 0, p.fold});
  dump["far"] = 1e-2;
  dump["splits"] = nlohmann::json::array();
  std::map<int, IdentificationResult> ident;
  for (int k : {1, 3, 5}) {
    ident[k] = evaluate_identification(emb, labels, k, 4, 11);
    for (int t = 0; t < 4; ++t) {
      const auto s = split_for_identification(labels, k, 11 + t);
      dump["splits"].push_back({{"k", k}, {"trial", t}, {"enrol", s.enrol}, {"probe", s.probe}});
    }
  }
  test::TempDir dir;
  const auto ref = python_reference(dump, dir);
  EXPECT_NEAR(v.accuracy, ref["accuracy"].get<double>(), 1e-9);
  for (int f = 0; f < 10; ++f) EXPECT_NEAR(v.fold_accuracy[f], ref["fold_accuracy"][f].get<double>(), 1e-9) << f;
  EXPECT_NEAR(v.auc, ref["auc"].get<double>(), 1e-9);
  EXPECT_NEAR(v.tar_at_far, ref["tar_at_far"].get<double>(), 1e-9);
  EXPECT_NEAR(v.far_threshold, ref["threshold_at_far"].get<double>(), 1e-6);
  for (int k : {1, 3, 5}) EXPECT_NEAR(ident[k].rank1, ref["rank1"][std::to_string(k)].get<double>(), 1e-9) << k;
  // The data are neither trivial nor hopeless, so the comparison means something.
  EXPECT_GT(v.auc, 0.6);
  EXPECT_LT(v.auc, 0.9999);
  EXPECT_LT(ident[1].rank1, 1.0);
}

TEST(FaceProtocol, PerfectSeparationGivesPerfectScores) {
  const auto [emb, labels] = clusters(8, 5, 0.01, 5);
  const auto v = evaluate_verification(emb, labels, 10, 1e-3, 0);
  EXPECT_DOUBLE_EQ(v.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(v.auc, 1.0);
  EXPECT_DOUBLE_EQ(v.tar_at_far, 1.0);
  EXPECT_DOUBLE_EQ(evaluate_identification(emb, labels, 1, 3, 0).rank1, 1.0);
}

TEST(FaceProtocol, IdentificationLeavesOutIdentitiesWithTooFewImages) {
  const auto data = clusters(4, 3, 0.01, 9);
  const auto r = evaluate_identification(data.first, data.second, 2, 1, 0);
  EXPECT_EQ(r.identities, 4);
  EXPECT_EQ(r.probes, 4);
  EXPECT_NE(test::error_of([&] { evaluate_identification(data.first, data.second, 3, 1, 0); })
                .find("no identity has more than k images"),
            std::string::npos);
}

}  // namespace
}  // namespace graft
