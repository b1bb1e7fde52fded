// Parity of graft's face networks with face-api itself (TF.js CPU backend,
// run with node by tests/reference/face_fixtures.py).
#include "graft/face/nets.h"

#include <fstream>
#include <optional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/files.h"
#include "graft/models/fast.h"
#include "test_util.h"

namespace graft {
namespace {

cv::Mat raw_rgb(const nlohmann::json& image) {
  const int h = image.at("height"), w = image.at("width");
  const std::string bytes = read_file(test::fixture(image.at("file").get<std::string>()));
  EXPECT_EQ(bytes.size(), static_cast<size_t>(h) * w * 3);
  cv::Mat m(h, w, CV_8UC3);
  std::memcpy(m.data, bytes.data(), bytes.size());
  return m;
}

TEST(FaceNets, EmbedderEqualsFaceApi) {
  auto fx = test::parity_fixture("face_parity", "face_fixtures.py");
  if (!fx) GTEST_SKIP() << "no face_parity.json (tests/reference/face_fixtures.py needs node, npm and the models)";
  FaceEmbedder net = load_face_embedder(fx->at("models").get<std::string>());
  torch::NoGradGuard no_grad;
  double worst = 0, worst_plain = 0, worst_bf16 = 1;
  for (const auto& image : fx->at("images")) {
    const auto want = torch::tensor(image.at("descriptor").get<std::vector<float>>());
    const auto x = face_net_input(raw_rgb(image), 150).unsqueeze(0);
    // The fast path (folded convolutions, channels-last: the default) and
    // the TF.js graph op for op both equal face-api.
    const auto got = net->forward(x)[0];
    const double diff = (got - want).abs().max().item<double>();
    worst = std::max(worst, diff);
    // What the README claims: within 1e-6 (measured 3.3e-7).
    EXPECT_LT(diff, 1e-6) << image.at("name") << " (" << image.at("source") << ")";
    net->set_fast(false);
    const double plain = (net->forward(x)[0] - want).abs().max().item<double>();
    net->set_fast(true);
    worst_plain = std::max(worst_plain, plain);
    EXPECT_LT(plain, 1e-6) << image.at("name");
    // bf16 autocast (--precision bf16): the descriptor's direction, which
    // verification compares, stays within cosine 0.999 of face-api's.
    torch::Tensor b;
    {
      Autocast autocast(Precision::kBf16);
      b = net->forward(x)[0].to(torch::kFloat32);
    }
    const double cosine = (torch::dot(b, want) / (b.norm() * want.norm())).item<double>();
    worst_bf16 = std::min(worst_bf16, cosine);
    EXPECT_GT(cosine, 0.999) << image.at("name");
  }
  std::cout << "face embedder vs " << fx->at("reference").get<std::string>()
            << ": max abs diff " << std::scientific << worst << " (op for op: " << worst_plain << ") over "
            << fx->at("images").size() << " images; bf16 cosine at least " << std::fixed << worst_bf16 << "\n";
}

TEST(FaceNets, LandmarksEqualFaceApi) {
  auto fx = test::parity_fixture("face_parity", "face_fixtures.py");
  if (!fx) GTEST_SKIP() << "no face_parity.json (tests/reference/face_fixtures.py needs node, npm and the models)";
  FaceLandmarkNet net = load_face_landmark_net(fx->at("models").get<std::string>());
  double worst = 0;
  for (const auto& image : fx->at("images")) {
    const auto want = image.at("landmarks").get<std::vector<std::vector<double>>>();
    const auto got = face_landmarks(net, raw_rgb(image));
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const double d = std::max(std::abs(got[i].x - want[i][0]), std::abs(got[i].y - want[i][1]));
      worst = std::max(worst, d);
      // What the README claims: within 1e-4 px (measured 6.6e-5).
      EXPECT_LT(d, 1e-4) << image.at("name") << " point " << i;
    }
  }
  std::cout << "face landmarks vs " << fx->at("reference").get<std::string>()
            << ": max abs diff " << std::scientific << worst << " px over " << fx->at("images").size() << " images\n";
}

TEST(FaceNets, InputPadsCentredWithTheOddPixelAfter) {
  cv::Mat img(3, 6, CV_8UC1, cv::Scalar(200));  // 6 wide, 3 high: 3 rows of padding
  const auto t = face_net_input(img, 6);
  ASSERT_EQ(t.sizes(), torch::IntArrayRef({3, 6, 6}));
  // one row above (diff - round(diff / 2) = 1), two below
  EXPECT_EQ(t[0][0].sum().item<float>(), 0.0f);
  EXPECT_EQ(t[0][1][0].item<float>(), 200.0f);
  EXPECT_EQ(t[2][3][5].item<float>(), 200.0f);
  EXPECT_EQ(t[1][4].sum().item<float>(), 0.0f);
  EXPECT_EQ(t[1][5].sum().item<float>(), 0.0f);
}

TEST(FaceNets, RejectsWrongInputsAndWeights) {
  cv::Mat rgba(4, 4, CV_8UC4, cv::Scalar(1, 2, 3, 4));
  EXPECT_NE(test::error_of([&] { face_net_input(rgba, 8); }).find("4 channels"), std::string::npos);
  TensorList wrong = {{"fc", torch::zeros({256, 128})}};
  EXPECT_NE(test::error_of([&] { FaceEmbedder e(wrong, "m.json"); })
                .find("m.json: no tensor \"conv32_down/conv/filters\""),
            std::string::npos);
  EXPECT_NE(test::error_of([] { load_face_embedder("/nonexistent"); }).find("scripts/face_models.sh"),
            std::string::npos);
}

}  // namespace
}  // namespace graft
