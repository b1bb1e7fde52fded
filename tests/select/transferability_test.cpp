// Transferability scores against the numpy reference
// (tests/reference/transferability_fixtures.py) on fixed features.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "graft/core/files.h"
#include "graft/select/transferability.h"
#include "graft/weights/safetensors.h"
#include "test_util.h"

namespace graft {
namespace {

class Transferability : public test::ReferenceTest {
 protected:
  Transferability()
      : ReferenceTest("transferability/cases.safetensors", "transferability/expected.json", "no reference fixtures") {}
};

TEST_F(Transferability, ClassificationScoresEqualNumpy) {
  for (const std::string c : {"tall", "wide"}) {
    SCOPED_TRACE(c);
    const auto& w = json_[c];
    EXPECT_NEAR(logme(at(c + ".features"), at(c + ".labels")), w["logme"].get<double>(), 1e-6);
    EXPECT_NEAR(h_score(at(c + ".features"), at(c + ".labels")), w["h_score"].get<double>(), 1e-6);
    EXPECT_NEAR(leep(at(c + ".source_probs"), at(c + ".labels")), w["leep"].get<double>(), 1e-6);
    EXPECT_NEAR(nce(at(c + ".source_labels"), at(c + ".labels")), w["nce"].get<double>(), 1e-6);
  }
}

TEST_F(Transferability, SimilaritiesEqualNumpy) {
  EXPECT_NEAR(linear_cka(at("pair.X"), at("pair.X2")), json_["cka"].get<double>(), 1e-6);
  const double sigma = median_sigma(at("pair.X"), at("pair.Y"));
  EXPECT_NEAR(sigma, json_["mmd_sigma"].get<double>(), 1e-6);
  EXPECT_NEAR(mmd_rbf(at("pair.X"), at("pair.Y"), sigma), json_["mmd"].get<double>(), 1e-6);
  EXPECT_NEAR(domain_cka(at("pair.X"), at("pair.Y")), json_["domain_cka"].get<double>(), 1e-6);
  torch::Tensor x = at("pair.X");
  EXPECT_NEAR(domain_cka(x.narrow(0, 0, 100), x.narrow(0, 100, 100)),
              json_["domain_cka_self"].get<double>(), 1e-6);
  // A set against itself: CKA 1, MMD 0.
  EXPECT_NEAR(linear_cka(x, x), 1.0, 1e-12);
  EXPECT_NEAR(domain_cka(x, x), 1.0, 1e-12);
  EXPECT_NEAR(mmd_rbf(x, x, sigma), 0.0, 1e-12);
}

// Domain shift (issue 19): the cross-validated proxy A-distance and the MMD
// permutation test equal the numpy recomputation (the permutations drawn by
// PyTorch's randperm from the same seed; each permuted MMD recomputed from the
// features there).
TEST_F(Transferability, DomainShiftEqualsNumpy) {
  torch::Tensor x = at("pair.X"), y = at("pair.Y");
  ProxyADistance pad = proxy_a_distance(x, y);
  EXPECT_NEAR(pad.pad, json_["pad"].get<double>(), 1e-12);
  EXPECT_NEAR(pad.error, json_["pad_error"].get<double>(), 1e-12);
  ProxyADistance self = proxy_a_distance(x.narrow(0, 0, 100), x.narrow(0, 100, 100));
  EXPECT_NEAR(self.pad, json_["pad_self"].get<double>(), 1e-12);
  EXPECT_NEAR(self.error, json_["pad_error_self"].get<double>(), 1e-12);
  EXPECT_GT(pad.pad, self.pad + 0.5);  // the shifted pair is told apart, the halves are not

  const double sigma = median_sigma(x, y);
  EXPECT_DOUBLE_EQ(mmd_permutation_p(x, y, sigma, 200, 7), json_["mmd_p"].get<double>());
  const double sigma_self = median_sigma(x.narrow(0, 0, 100), x.narrow(0, 100, 100));
  EXPECT_NEAR(sigma_self, json_["mmd_sigma_self"].get<double>(), 1e-6);
  EXPECT_DOUBLE_EQ(mmd_permutation_p(x.narrow(0, 0, 100), x.narrow(0, 100, 100), sigma_self, 200, 7),
                   json_["mmd_p_self"].get<double>());

  EXPECT_NE(test::error_of([&] { proxy_a_distance(x, y, 1); }).find("folds"), std::string::npos);
  EXPECT_NE(test::error_of([&] { proxy_a_distance(x.narrow(0, 0, 3), y); }).find("rows"), std::string::npos);
  EXPECT_NE(test::error_of([&] { mmd_permutation_p(x, y, sigma, 0, 7); }).find("permutations"), std::string::npos);
}

TEST_F(Transferability, ShuffledLabelsScoreLower) {
  torch::Tensor f = at("tall.features"), y = at("tall.labels");
  torch::manual_seed(0);
  torch::Tensor shuffled = y.index_select(0, torch::randperm(y.size(0)));
  EXPECT_GT(logme(f, y), logme(f, shuffled));
  EXPECT_GT(h_score(f, y), h_score(f, shuffled));
  EXPECT_GT(leep(at("tall.source_probs"), y), leep(at("tall.source_probs"), shuffled));
}

TEST(TransferabilityErrors, BadInputIsAClearError) {
  torch::Tensor f = torch::randn({10, 4});
  EXPECT_NE(test::error_of([&] { logme(f, torch::zeros({10}, torch::kInt64)); }).find("1 class"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { h_score(f, torch::zeros({9}, torch::kInt64)); }).find("expected 10"),
            std::string::npos);
  torch::Tensor bad = f.clone();
  bad[0][0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(test::error_of([&] { logme(bad, torch::arange(10) % 2); }).find("NaN"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { mmd_rbf(f, torch::randn({5, 3}), 1.0); }).find("features"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { leep(torch::rand({10, 3}), torch::arange(10) % 2); })
                .find("sum to 1"),
            std::string::npos);
}

}  // namespace
}  // namespace graft
