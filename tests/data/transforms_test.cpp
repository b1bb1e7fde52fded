#include <cstdio>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/data/image_set.h"
#include "graft/data/resample.h"
#include "graft/data/transforms.h"
#include "graft/weights/safetensors.h"
#include "test_util.h"

namespace graft {
namespace {

/// (m / 255 - mean) / std as torchvision's ToTensor + Normalize, [C, H, W].
torch::Tensor normalise(const cv::Mat& m, const std::vector<float>& mean,
                        const std::vector<float>& std) {
  cv::Mat c = m.isContinuous() ? m : m.clone();
  auto t = torch::from_blob(c.data, {c.rows, c.cols, c.channels()}, torch::kUInt8)
               .permute({2, 0, 1})
               .to(torch::kFloat32)
               .div(255);
  auto mt = torch::tensor(mean).view({-1, 1, 1}), st = torch::tensor(std).view({-1, 1, 1});
  return t.sub(mt).div(st).contiguous();
}

/// A rows x cols image of `type` with uniformly random pixels.
cv::Mat random_image(int rows, int cols, int type) {
  cv::Mat m(rows, cols, type);
  cv::randu(m, 0, 255);
  return m;
}

torch::Tensor find(const TensorList& list, const std::string& name) {
  for (const auto& [n, t] : list) {
    if (n == name) return t;
  }
  return {};
}

// Decoding with OpenCV and PIL (both on libjpeg-turbo) and the PIL-exact
// resampling should reproduce torchvision's evaluation transform exactly.
TEST(DataTransforms, TorchvisionParity) {
  if (!test::have_fixture("transforms.safetensors")) {
    GTEST_SKIP() << "fixture transforms.safetensors missing (run make_fixtures.py)";
  }
  SafetensorsFile file = load_safetensors(test::fixture("transforms.safetensors"));
  auto cases = nlohmann::json::parse(file.metadata.at("cases"));
  ASSERT_GE(cases.size(), 5u);
  for (size_t n = 0; n < cases.size(); ++n) {
    const auto& c = cases[n];
    const std::string rel = c["path"];
    std::string path = test::shared_data(rel);
    if (path.empty()) GTEST_SKIP() << "no ../shared/data/" << rel;
    SCOPED_TRACE(rel);
    cv::Mat img = load_image(path);

    torch::Tensor decoded = find(file.tensors, "decoded." + std::to_string(n));
    if (decoded.defined()) {
      cv::Mat rgb = to_channels(img, 3);
      auto mine = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8);
      ASSERT_EQ(mine.sizes(), decoded.sizes());
      int64_t differ = mine.ne(decoded).sum().item<int64_t>();
      EXPECT_EQ(differ, 0) << "decoded pixels differ from PIL's";
    }

    InputSpec spec;
    spec.size = c["size"];
    spec.resize = c["resize"];
    spec.channels = c["channels"];
    std::vector<float> mean = c["mean"], std = c["std"];
    for (int k = 0; k < spec.channels; ++k) {
      spec.mean[k] = mean[k];
      spec.std[k] = std[k];
    }
    torch::Tensor mine;
    if (c["box"].is_null()) {
      mine = eval_transform(img, spec);
    } else {
      const std::vector<int> b = c["box"];  // top, left, height, width
      cv::Mat out = resample_bilinear(img, cv::Rect(b[1], b[0], b[3], b[2]),
                                      cv::Size(spec.size, spec.size),
                                      cv::Rect(0, 0, spec.size, spec.size));
      mine = normalise(out, mean, std);
    }
    torch::Tensor want = find(file.tensors, "input." + std::to_string(n));
    ASSERT_TRUE(want.defined());
    ASSERT_EQ(mine.sizes(), want.sizes());
    EXPECT_TRUE(mine.is_contiguous());
    EXPECT_EQ(mine.scalar_type(), torch::kFloat32);
    double max_diff = (mine - want).abs().max().item<double>();
    EXPECT_EQ(max_diff, 0.0) << "mean abs diff " << (mine - want).abs().mean().item<double>();
  }
}

TEST(DataTransforms, EvalShapesAndChannels) {
  cv::Mat grey = random_image(50, 80, CV_8UC1);
  InputSpec spec;
  spec.size = 32;
  spec.resize = 40;
  torch::Tensor t = eval_transform(grey, spec);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{3, 32, 32}));
  // Grey is replicated, then normalised per channel.
  torch::Tensor base = t[0] * spec.std[0] + spec.mean[0];
  for (int c = 1; c < 3; ++c) {
    torch::Tensor back = t[c] * spec.std[c] + spec.mean[c];
    EXPECT_LT((back - base).abs().max().item<float>(), 1e-6);
  }
  spec.channels = 1;
  EXPECT_EQ(eval_transform(grey, spec).sizes(), (std::vector<int64_t>{1, 32, 32}));
  cv::Mat rgb(50, 80, CV_8UC3, cv::Scalar(255, 0, 0));
  torch::Tensor g = eval_transform(rgb, spec);
  // PIL's L = 0.299 R (fixed point: 255 * 19595 + 0x8000 >> 16 = 76).
  EXPECT_FLOAT_EQ(g[0][5][5].item<float>(), (76.f / 255.f - spec.mean[0]) / spec.std[0]);

  cv::Mat four(10, 10, CV_8UC4);
  EXPECT_THROW(eval_transform(four, spec), Error);
  spec.size = 0;
  EXPECT_THROW(eval_transform(grey, spec), Error);
}

TEST(DataTransforms, ResampleBasics) {
  cv::Mat img = random_image(37, 53, CV_8UC3);
  // Same size: unchanged.
  cv::Mat same = resample_bilinear(img, img.size());
  EXPECT_EQ(cv::norm(same, img, cv::NORM_INF), 0);
  // A constant image stays constant when shrinking or enlarging.
  cv::Mat flat(37, 53, CV_8UC3, cv::Scalar(9, 99, 199));
  for (cv::Size s : {cv::Size(7, 5), cv::Size(100, 80), cv::Size(53, 11)}) {
    EXPECT_EQ(cv::norm(resample_bilinear(flat, s), cv::Mat(s, CV_8UC3, cv::Scalar(9, 99, 199)),
                       cv::NORM_INF),
              0);
  }
  // Computing a region equals cropping the whole result.
  cv::Mat whole = resample_bilinear(img, cv::Size(31, 23));
  cv::Rect r(5, 3, 20, 17);
  cv::Mat part = resample_bilinear(img, cv::Rect(0, 0, 53, 37), cv::Size(31, 23), r);
  EXPECT_EQ(cv::norm(part, whole(r), cv::NORM_INF), 0);
  // A source box equals resizing a cropped copy.
  cv::Rect box(4, 6, 30, 20);
  cv::Mat boxed = resample_bilinear(img, box, cv::Size(15, 9), cv::Rect(0, 0, 15, 9));
  EXPECT_EQ(cv::norm(boxed, resample_bilinear(img(box).clone(), cv::Size(15, 9)), cv::NORM_INF), 0);
  EXPECT_THROW(resample_bilinear(img, cv::Rect(40, 0, 20, 5), cv::Size(4, 4), cv::Rect(0, 0, 4, 4)),
               Error);
}

TEST(DataTransforms, TrainIsSeededAndShaped) {
  cv::Mat img = random_image(120, 90, CV_8UC3);
  InputSpec spec;
  spec.size = 48;
  spec.resize = 56;
  for (Augment a : {Augment::Light, Augment::Strong}) {
    std::mt19937_64 r1(5), r2(5), r3(6);
    torch::Tensor x1 = train_transform(img, spec, a, r1);
    torch::Tensor x2 = train_transform(img, spec, a, r2);
    torch::Tensor x3 = train_transform(img, spec, a, r3);
    ASSERT_EQ(x1.sizes(), (std::vector<int64_t>{3, 48, 48}));
    EXPECT_TRUE(torch::equal(x1, x2)) << to_string(a);
    EXPECT_FALSE(torch::equal(x1, x3)) << to_string(a);
    EXPECT_TRUE(x1.is_contiguous());
  }
  std::mt19937_64 r(1);
  EXPECT_TRUE(torch::equal(train_transform(img, spec, Augment::None, r), eval_transform(img, spec)));
}

TEST(DataTransforms, LightKeepsAConstantImageConstant) {
  cv::Mat flat(70, 130, CV_8UC3, cv::Scalar(40, 80, 120));
  InputSpec spec;
  spec.size = 32;
  torch::Tensor want = eval_transform(flat, spec);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 r(seed);
    EXPECT_TRUE(torch::equal(train_transform(flat, spec, Augment::Light, r), want));
  }
}

TEST(DataTransforms, StrongErasesAQuarterOfTheTime) {
  // With ImageNet statistics no pixel normalises to exactly 0, so exact zeros
  // mark random erasing (p = 0.25, 2-20% of the area).
  cv::Mat img = random_image(64, 64, CV_8UC3);
  InputSpec spec;
  spec.size = 32;
  int erased = 0;
  const int n = 400;
  for (int seed = 0; seed < n; ++seed) {
    std::mt19937_64 r(seed);
    torch::Tensor x = train_transform(img, spec, Augment::Strong, r);
    double zero = x.eq(0).to(torch::kFloat64).mean().item<double>();
    if (zero > 0) {
      ++erased;
      EXPECT_GE(zero, 0.02 * 0.5) << seed;  // rounding of the box sides
      EXPECT_LE(zero, 0.20 * 1.3) << seed;
    }
  }
  EXPECT_GT(erased, n * 0.18);
  EXPECT_LT(erased, n * 0.32);
}

TEST(DataTransforms, ParseAugment) {
  EXPECT_EQ(parse_augment("none"), Augment::None);
  EXPECT_EQ(parse_augment("light"), Augment::Light);
  EXPECT_EQ(parse_augment("strong"), Augment::Strong);
  EXPECT_EQ(to_string(Augment::Strong), "strong");
  try {
    parse_augment("heavy");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--augment 'heavy'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace graft
