// Test-time augmentation (eval / predict --tta) against torchvision: the views
// (Resize, [Pad,] CenterCrop + hflip, FiveCrop, TenCrop, ToTensor, Normalize)
// and each image's averaged probabilities, from tests/reference/tta_fixtures.py
// (the same PNGs, the same ResNet-20 weights, a temperature of 1.7).

#include "graft/eval/tta.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/files.h"
#include "graft/data/image_set.h"
#include "graft/data/transforms.h"
#include "graft/eval/run_eval.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kTtaModes = {"none", "flip", "five-crop", "ten-crop"};
const std::vector<std::string> kTtaSpecs = {"margin", "cifar"};

std::vector<std::string> tta_class_names() {
  std::vector<std::string> names;
  for (int c = 0; c < 10; ++c) names.push_back("class" + std::to_string(c));
  return names;
}

class TtaReference : public test::ReferenceTest {
 protected:
  TtaReference()
      : ReferenceTest("tta/cases.safetensors", "tta/expected.json",
                      "tta fixtures missing: run tests/reference/make_fixtures.py") {}

  InputSpec spec(const std::string& name) const {
    InputSpec s = find_backbone("resnet20").input;  // the CIFAR mean/std
    s.size = json_["specs"][name]["size"].get<int>();
    s.resize = json_["specs"][name]["resize"].get<int>();
    return s;
  }
  std::vector<std::string> images() const {
    std::vector<std::string> out;
    for (const auto& rel : json_["images"]) out.push_back(test::fixture("tta/images/" + rel.get<std::string>()));
    return out;
  }
  // A run folder as graft train writes it: the reference weights, the input
  // spec `spec_name`, and calibration.json with the reference's temperature.
  std::string make_run(const std::string& spec_name) const {
    ModelInfo info;
    info.backbone = "resnet20";
    info.classes = tta_class_names();
    info.input = spec(spec_name);
    info.source_weights = "fixture";
    const std::string run = dir_ / ("run-" + spec_name);
    make_dirs(run);
    write_file_atomic(run + "/model.json", to_json(info).dump(2) + "\n");
    fs::copy_file(test::fixture("tta/weights.safetensors"), run + "/model.safetensors");
    nlohmann::json cal = {{"method", "temperature"},
                          {"temperature", json_["temperature"].get<double>()},
                          {"confidence_quantiles", nlohmann::json::array()}};
    write_file_atomic(run + "/calibration.json", cal.dump() + "\n");
    return run;
  }
  test::TempDir dir_;
};

// Every view of every image equals torchvision's, exactly: the resize is
// Pillow's, and the PNGs decode alike.
TEST_F(TtaReference, ViewsEqualTorchvisionCrops) {
  const auto paths = images();
  double worst = 0;
  for (const auto& s : kTtaSpecs) {
    for (const auto& mode : kTtaModes) {
      for (size_t i = 0; i < paths.size(); ++i) {
        const torch::Tensor want = at(s + "." + mode + ".views." + std::to_string(i));
        const torch::Tensor got = eval_views(load_image(paths[i]), spec(s), parse_tta(mode));
        ASSERT_EQ(got.sizes(), want.sizes()) << s << " " << mode << " " << paths[i];
        const double d = (got - want).abs().max().item<double>();
        worst = std::max(worst, d);
        EXPECT_LE(d, 1e-6) << s << " " << mode << " " << paths[i];
      }
    }
  }
  std::cout << "max |view - torchvision| = " << worst << "\n";
}

// The default (none) view is eval_transform's, bit for bit.
TEST_F(TtaReference, NoneIsTheEvaluationTransform) {
  for (const auto& s : kTtaSpecs)
    for (const auto& path : images()) {
      const cv::Mat img = load_image(path);
      EXPECT_TRUE(torch::equal(eval_views(img, spec(s), Tta::None)[0], eval_transform(img, spec(s)))) << path;
    }
}

// eval: metrics from the averaged calibrated probabilities; predict: every
// class's averaged probability, within 1e-5 of PyTorch's.
TEST_F(TtaReference, EvalAndPredictAverageTheViewsProbabilities) {
  const auto paths = images();
  const torch::Tensor labels = at("labels");
  double worst = 0;
  for (const auto& s : kTtaSpecs) {
    const std::string run = make_run(s);
    for (const auto& mode : kTtaModes) {
      const std::string key = s + "." + mode;
      const nlohmann::json& want = json_[key];
      ImageEvalOptions o;
      o.tta = parse_tta(mode);
      o.batch_size = 7;  // views per forward pass: several batches, the last one short
      const ImageEvaluation e = evaluate_image_run(run, test::fixture("tta/images"), o);
      EXPECT_EQ(e.images, static_cast<int64_t>(paths.size())) << key;
      EXPECT_DOUBLE_EQ(e.metrics.accuracy, want["accuracy"].get<double>()) << key;
      EXPECT_NEAR(e.metrics.loss, want["nll"].get<double>(), 1e-5) << key;
      ASSERT_FALSE(e.calibration.is_null()) << key;
      EXPECT_NEAR(e.calibration["nll"].get<double>(), want["nll"].get<double>(), 1e-5) << key;
      EXPECT_NEAR(e.calibration["nll_uncalibrated"].get<double>(), want["nll_uncalibrated"].get<double>(), 1e-5)
          << key;
      EXPECT_EQ(e.calibration["temperature"].get<double>(), json_["temperature"].get<double>());

      o.top_k = 10;
      const auto got = predict_image_run(run, paths, o);
      const torch::Tensor probs = at(key + ".probs");
      ASSERT_EQ(got.size(), paths.size());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_TRUE(got[i].error.empty()) << got[i].error;
        ASSERT_EQ(got[i].top.size(), 10u);
        for (const auto& t : got[i].top) {
          const int64_t c = std::stoll(t.label.substr(5));
          const double d = std::fabs(t.probability - probs[static_cast<int64_t>(i)][c].item<double>());
          worst = std::max(worst, d);
          EXPECT_LE(d, 1e-5) << key << " " << paths[i] << " " << t.label;
        }
      }
    }
  }
  std::cout << "max |averaged probability - PyTorch| = " << worst << "\n";
}

// Without --tta the command line prints what it printed before (no "tta"
// key), and --tta none is the same; with one, the output names it.
TEST_F(TtaReference, CliDefaultIsUnchangedAndTtaIsNamed) {
  const std::string run = make_run("margin");
  const std::string data = test::fixture("tta/images");
  const ImageEvaluation e = evaluate_image_run(run, data, ImageEvalOptions{});
  auto want = evaluation_json(e);
  want["skipped"] = e.skipped;
  const test::CliResult plain = test::graft_cli({"eval", run, "--data", data});
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(plain.out, want.dump(2) + "\n");
  const test::CliResult none = test::graft_cli({"eval", run, "--data", data, "--tta", "none"});
  EXPECT_EQ(none.out, plain.out);
  const test::CliResult ten = test::graft_cli({"eval", run, "--data", data, "--tta", "ten-crop"});
  ASSERT_EQ(ten.code, 0) << ten.err;
  const auto j = nlohmann::json::parse(ten.out);
  EXPECT_EQ(j["tta"], "ten-crop");
  EXPECT_NEAR(j["loss"].get<double>(), json_["margin.ten-crop"]["nll"].get<double>(), 1e-5);
  const test::CliResult pred =
      test::graft_cli({"predict", run, images()[0], "--tta", "flip", "--top-k", "1", "--json"});
  ASSERT_EQ(pred.code, 0) << pred.err;
  const auto p = nlohmann::json::parse(pred.out);
  const int64_t c = std::stoll(p["top"][0]["label"].get<std::string>().substr(5));
  EXPECT_NEAR(p["top"][0]["probability"].get<double>(), at("margin.flip.probs")[0][c].item<double>(), 1e-5);
}

TEST(TtaOptions, ParseNamesTheOptionTheValueAndTheChoices) {
  EXPECT_EQ(parse_tta("none"), Tta::None);
  EXPECT_EQ(parse_tta("flip"), Tta::Flip);
  EXPECT_EQ(parse_tta("five-crop"), Tta::FiveCrop);
  EXPECT_EQ(parse_tta("ten-crop"), Tta::TenCrop);
  for (const char* m : {"none", "flip", "five-crop", "ten-crop"}) EXPECT_EQ(to_string(parse_tta(m)), m);
  EXPECT_EQ(tta_views(Tta::TenCrop), 10);
  const std::string e = test::error_of([] { parse_tta("mirror"); });
  EXPECT_EQ(e, "--tta 'mirror' is not a test-time augmentation (expected none, flip, five-crop or ten-crop)");
  const test::CliResult cli = test::graft_cli({"predict", "no-such-run", "x.png", "--tta", "10crop"});
  EXPECT_EQ(cli.code, 2);
  EXPECT_TRUE(test::contains(cli.err, "--tta '10crop'")) << cli.err;
}

// A spec without margin pads by size / 8; one whose padded image is still
// smaller than the crop is refused, naming --tta and the sizes.
TEST(TtaOptions, PaddingAndCropsThatDoNotFit) {
  InputSpec cifar;
  cifar.size = cifar.resize = 32;
  EXPECT_EQ(tta_padding(cifar), 4);
  InputSpec imagenet;
  EXPECT_EQ(tta_padding(imagenet), 0);
  InputSpec small;
  small.size = 64;
  small.resize = 40;  // 40 + 2 x 8 < 64
  const cv::Mat img(50, 50, CV_8UC3, cv::Scalar(10, 20, 30));
  const std::string e = test::error_of([&] { eval_views(img, small, Tta::FiveCrop); });
  EXPECT_EQ(e, "--tta five-crop: the image resized to 40x40 and padded by 8 pixels is smaller than the model's "
               "64x64 crop (expected --tta none or flip for this model)");
  EXPECT_EQ(eval_views(img, small, Tta::Flip).size(0), 2);
}

// log of the averaged softmax, stable where a probability underflows.
TEST(TtaAverage, LogOfTheMeanOfTheViewsSoftmax) {
  const torch::Tensor z = torch::tensor({{{1.0, 2.0, 0.5}, {3.0, -1.0, 0.0}}}, torch::kFloat64);  // [1, 2, 3]
  const torch::Tensor want = ((torch::softmax(z[0][0] / 2, 0) + torch::softmax(z[0][1] / 2, 0)) / 2).log();
  EXPECT_LT((tta_log_probabilities(z, 2)[0] - want).abs().max().item<double>(), 1e-15);
  EXPECT_LT((tta_log_probabilities(z[0], 2) - want).abs().max().item<double>(), 1e-15);
  const torch::Tensor far = torch::tensor({{{0.0, -2000.0}, {0.0, -3000.0}}}, torch::kFloat64);
  const torch::Tensor lp = tta_log_probabilities(far, 1);
  EXPECT_TRUE(torch::isfinite(lp).all().item<bool>());
  EXPECT_NEAR(lp[0][1].item<double>(), -2000 - std::log(2.0), 1e-9);
}

// Test-time augmentation averages views of an image: a text run refuses it,
// naming the option, the value and what a text run takes.
TEST(TtaOptions, TextRunsRefuseIt) {
  if (!test::have_fixture("text_model/run/model.json")) GTEST_SKIP() << "no reference fixtures";
  const std::string run = test::fixture("text_model/run");
  test::TempDir dir;
  test::write_bytes(dir / "t.csv", "text,label\na b,0\n");
  const std::string want = "--tta flip: test-time augmentation averages views of an image, and '" + run +
                           "' is a text run (expected --tta none, or no --tta, for a text run)";
  test::CliResult cli = test::graft_cli({"eval", run, "--data", dir / "t.csv", "--tta", "flip"});
  EXPECT_EQ(cli.code, 2);
  EXPECT_TRUE(test::contains(cli.err, want)) << cli.err;
  cli = test::graft_cli({"predict", run, dir / "t.csv", "--tta", "flip"});
  EXPECT_EQ(cli.code, 2);
  EXPECT_TRUE(test::contains(cli.err, want)) << cli.err;
}

}  // namespace
}  // namespace graft
