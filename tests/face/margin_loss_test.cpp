// ArcFace, CosFace and batch-hard triplet losses against PyTorch on the same
// float32 inputs (tests/reference/face_loss_fixtures.py): values, logits and
// gradients.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/files.h"
#include "graft/face/margin_loss.h"
#include "test_util.h"

namespace graft {
namespace {

class FaceLoss : public test::ReferenceTest {
 protected:
  FaceLoss()
      : ReferenceTest("face_loss/cases.safetensors", "face_loss/cases.json", "no reference fixtures (python3-torch)") {}
};

TEST_F(FaceLoss, MarginLossesEqualPyTorch) {
  int checked = 0;
  for (const auto& [name, c] : json_.items()) {
    const std::string kind = c["kind"];
    if (kind == "triplet") continue;
    const double s = c["scale"], m = c["margin"];
    auto x = at("margin.x").clone().set_requires_grad(true);
    auto w = at("margin.w").clone().set_requires_grad(true);
    const auto y = at("margin.y");
    const auto logits = kind == "arcface" ? arcface_logits(x, w, y, s, m) : cosface_logits(x, w, y, s, m);
    EXPECT_LT(test::rel_error(logits.detach().to(torch::kFloat64), at(name + ".logits")), 2e-6) << name;
    auto loss = margin_softmax_loss(kind, x, w, y, s, m);
    EXPECT_NEAR(loss.item<double>(), at(name + ".loss").item<double>(), 1e-5 * (1 + std::abs(at(name + ".loss").item<double>())))
        << name;
    loss.backward();
    EXPECT_LT(test::rel_error(x.grad().to(torch::kFloat64), at(name + ".grad_x")), 1e-5) << name;
    EXPECT_LT(test::rel_error(w.grad().to(torch::kFloat64), at(name + ".grad_w")), 1e-5) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

TEST_F(FaceLoss, BatchHardTripletEqualsPyTorch) {
  int checked = 0;
  for (const auto& [name, c] : json_.items()) {
    if (c["kind"] != "triplet") continue;
    auto x = at("triplet.x").clone().set_requires_grad(true);
    auto loss = batch_hard_triplet_loss(x, at("triplet.y"), c["margin"].get<double>());
    EXPECT_NEAR(loss.item<double>(), at(name + ".loss").item<double>(), 1e-5) << name;
    loss.backward();
    EXPECT_LT(test::rel_error(x.grad().to(torch::kFloat64), at(name + ".grad_x")), 1e-5) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

TEST(FaceLossEdges, NoValidTripletGivesZeroAndBadShapesAreNamed) {
  auto x = torch::randn({3, 8}).set_requires_grad(true);
  auto loss = batch_hard_triplet_loss(x, torch::tensor({0, 1, 2}), 0.2);  // no positives
  EXPECT_EQ(loss.item<double>(), 0.0);
  loss.backward();  // still differentiable
  EXPECT_NE(test::error_of([] { margin_softmax_loss("sphereface", torch::randn({2, 4}), torch::randn({3, 4}),
                                                    torch::tensor({0, 1}), 30, 0.5); })
                .find("expected arcface or cosface"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { arcface_logits(torch::randn({2, 4}), torch::randn({3, 5}), torch::tensor({0, 1}), 30, 0.5); })
                .find("class centres"),
            std::string::npos);
}

}  // namespace
}  // namespace graft
