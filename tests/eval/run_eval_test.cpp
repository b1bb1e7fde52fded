// The library calls behind graft eval and graft predict, against references:
// a run made of PyTorch's resnet20 fixture weights, evaluated by the library,
// by the command line, and by a plain forward pass of the same weights on
// independently decoded pixels.

#include "graft/eval/run_eval.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "graft/core/files.h"
#include "graft/data/image_header.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/text/text_eval.h"
#include "graft/text/text_model.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kRunEvalClasses = 10;  // resnet20's source classifier

std::vector<std::string> run_eval_class_names() {
  std::vector<std::string> names;
  for (int64_t c = 0; c < kRunEvalClasses; ++c) names.push_back("class" + std::to_string(c));
  return names;
}

// The images of a folder of class folders, sorted, with their labels among
// class0..class9.
std::vector<std::pair<std::string, int64_t>> run_eval_images(const std::string& root) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& f : fs::recursive_directory_iterator(root))
    if (f.is_regular_file())
      out.push_back({f.path().string(), std::stoll(f.path().parent_path().filename().string().substr(5))});
  std::sort(out.begin(), out.end());
  return out;
}

// The reference: resnet20 with the fixture weights, in plain evaluation mode
// (no folded BatchNorm, no channels-last, fp32, one batch), first checked
// against PyTorch's own logits on the fixture input, then run on the images
// decoded by OpenCV and normalised here (32x32 images: resize and crop are
// the identity for resnet20's input).
torch::Tensor run_eval_reference_logits(const std::vector<std::pair<std::string, int64_t>>& images) {
  torch::NoGradGuard no_grad;
  const BackboneSpec& spec = find_backbone("resnet20");
  EXPECT_EQ(spec.input.size, 32);
  EXPECT_EQ(spec.input.resize, 32);
  Backbone model = spec.make(kRunEvalClasses);
  LoadReport r = load_state_dict(*model, read_weights(test::fixture("resnet20.weights.safetensors")));
  EXPECT_TRUE(r.clean()) << r.summary();
  model->eval();
  auto io = test::load_named(test::fixture("resnet20.io.safetensors"));
  EXPECT_LT(test::rel_error(model->forward(io["input"]), io["logits"]), 1e-4);
  std::vector<torch::Tensor> xs;
  for (const auto& [path, label] : images) {
    cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR), rgb;
    EXPECT_EQ(bgr.rows, 32) << path;
    EXPECT_EQ(bgr.cols, 32) << path;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    torch::Tensor x = torch::from_blob(rgb.data, {32, 32, 3}, torch::kUInt8).to(torch::kFloat32) / 255;
    x = x.permute({2, 0, 1});
    for (int c = 0; c < 3; ++c) x[c] = (x[c] - spec.input.mean[c]) / spec.input.std[c];
    xs.push_back(x);
  }
  return model->forward(torch::stack(xs));
}

class RunEval : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_fixture("resnet20.weights.safetensors"))
      GTEST_SKIP() << "resnet20 fixtures missing: run tests/reference/make_fixtures.py";
    run_ = test::resnet20_fixture_run(dir_.path());
    test::write_synthetic_image_folder(dir_ / "test", 3, 4, 32, 3, 5);
    images_ = run_eval_images(dir_ / "test");
    reference_ = run_eval_reference_logits(images_);
  }
  test::TempDir dir_;
  std::string run_;
  std::vector<std::pair<std::string, int64_t>> images_;
  torch::Tensor reference_;  // [images, 10]
};

TEST_F(RunEval, ImageRunMatchesAnIndependentForwardPass) {
  ImageEvalOptions o;
  o.batch_size = 5;  // three batches, the last one short
  make_dirs(dir_ / "out");
  const ImageEvaluation e = evaluate_image_run(run_, dir_ / "test", o, "--test", dir_ / "out");
  EXPECT_EQ(e.images, 12);
  EXPECT_EQ(e.skipped, 0);
  torch::Tensor labels = torch::empty({static_cast<int64_t>(images_.size())}, torch::kInt64);
  for (size_t i = 0; i < images_.size(); ++i) labels[static_cast<int64_t>(i)] = images_[i].second;
  const Metrics want = compute_metrics(reference_, labels, run_eval_class_names());
  EXPECT_EQ(e.metrics.count, 12);
  EXPECT_DOUBLE_EQ(e.metrics.accuracy, want.accuracy);
  EXPECT_EQ(e.metrics.confusion, want.confusion);
  EXPECT_NEAR(e.metrics.loss, want.loss, 1e-4);
  EXPECT_NEAR(e.metrics.top5, want.top5, 1e-12);
  // test_predictions.csv: each image's prediction and confidence.
  std::map<std::string, std::pair<std::string, double>> rows;
  std::ifstream csv(dir_ / "out/test_predictions.csv");
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "path,label,predicted,confidence");
  while (std::getline(csv, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    ASSERT_EQ(f.size(), 4u) << line;
    rows[f[0]] = {f[2], std::stod(f[3])};
  }
  ASSERT_EQ(rows.size(), images_.size());
  const torch::Tensor probs = torch::softmax(reference_, 1);
  for (size_t i = 0; i < images_.size(); ++i) {
    const int64_t best = reference_[static_cast<int64_t>(i)].argmax().item<int64_t>();
    const auto& row = rows.at(images_[i].first);
    EXPECT_EQ(row.first, "class" + std::to_string(best)) << images_[i].first;
    EXPECT_NEAR(row.second, probs[static_cast<int64_t>(i)][best].item<double>(), 1e-4);
  }
  EXPECT_EQ(read_file(dir_ / "out/test_metrics.json"), to_json(e.metrics).dump(2) + "\n");
}

TEST_F(RunEval, PredictionsAreTheArgmaxOfTheReferenceAndComeInOrder) {
  std::vector<std::string> inputs;
  for (const auto& [path, label] : images_) inputs.push_back(path);
  inputs.insert(inputs.begin() + 1, dir_ / "test");          // a folder
  inputs.insert(inputs.begin() + 3, dir_ / "missing.png");  // nothing there
  ImageEvalOptions o;
  o.top_k = 3;
  std::vector<InputPrediction> seen;
  const auto got = predict_image_run(run_, inputs, o, [&](const InputPrediction& p) { seen.push_back(p); });
  ASSERT_EQ(got.size(), inputs.size());
  ASSERT_EQ(seen.size(), inputs.size());
  EXPECT_TRUE(test::contains(got[1].error, "'" + dir_ / "test" + "' is a folder")) << got[1].error;
  EXPECT_TRUE(test::contains(got[3].error, "missing.png' does not exist")) << got[3].error;
  EXPECT_TRUE(got[1].top.empty());
  const torch::Tensor probs = torch::softmax(reference_, 1);
  size_t image = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].input, inputs[i]);
    EXPECT_EQ(seen[i].input, got[i].input);
    EXPECT_FALSE(got[i].text.has_value());
    if (i == 1 || i == 3) continue;
    ASSERT_TRUE(got[i].error.empty()) << got[i].error;
    ASSERT_EQ(got[i].top.size(), 3u);
    const torch::Tensor p = probs[static_cast<int64_t>(image++)];
    auto [want_p, want_idx] = p.topk(3);
    for (int64_t k = 0; k < 3; ++k) {
      EXPECT_EQ(got[i].top[k].label, "class" + std::to_string(want_idx[k].item<int64_t>())) << inputs[i];
      EXPECT_NEAR(got[i].top[k].probability, want_p[k].item<double>(), 1e-4);
      EXPECT_EQ(seen[i].top[k].probability, got[i].top[k].probability);
    }
  }
  EXPECT_EQ(image, images_.size());
}

// What graft eval and graft predict print is the library's result, exactly.
TEST_F(RunEval, LibraryEqualsWhatTheCliPrints) {
  ImageEvalOptions o;
  const ImageEvaluation e = evaluate_image_run(run_, dir_ / "test", o);
  auto want = to_json(e.metrics);
  want["skipped"] = e.skipped;
  test::CliResult cli = test::graft_cli({"eval", run_, "--data", dir_ / "test"});
  ASSERT_EQ(cli.code, 0) << cli.err;
  EXPECT_EQ(cli.out, want.dump(2) + "\n");

  const std::vector<std::string> inputs = {images_[0].first, images_[7].first};
  o.top_k = 2;
  const auto got = predict_image_run(run_, inputs, o);
  cli = test::graft_cli({"predict", run_, inputs[0], inputs[1], "--top-k", "2", "--json"});
  ASSERT_EQ(cli.code, 0) << cli.err;
  std::istringstream lines(cli.out);
  std::string line;
  for (const auto& p : got) {
    ASSERT_TRUE(std::getline(lines, line));
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["input"], p.input);
    ASSERT_EQ(j["top"].size(), p.top.size());
    for (size_t k = 0; k < p.top.size(); ++k) {
      EXPECT_EQ(j["top"][k]["label"], p.top[k].label);
      EXPECT_EQ(j["top"][k]["probability"].get<double>(), p.top[k].probability);
    }
  }
  EXPECT_FALSE(std::getline(lines, line));
}

// A source model keeps its own classifier, cut to the data's classes: the
// reference's first three columns.
TEST_F(RunEval, SourceModelIsCutToTheDataClasses) {
  ImageEvalOptions o;
  const ImageEvaluation e = evaluate_source_model(
      "resnet20", test::fixture("resnet20.weights.safetensors"), dir_ / "test", o);
  torch::Tensor labels = torch::empty({static_cast<int64_t>(images_.size())}, torch::kInt64);
  for (size_t i = 0; i < images_.size(); ++i) labels[static_cast<int64_t>(i)] = images_[i].second;
  const Metrics want = compute_metrics(reference_.narrow(1, 0, 3), labels, {"class0", "class1", "class2"});
  EXPECT_EQ(e.images, 12);
  EXPECT_EQ(e.metrics.per_class.size(), 3u);
  EXPECT_EQ(e.metrics.confusion, want.confusion);
  EXPECT_DOUBLE_EQ(e.metrics.accuracy, want.accuracy);
  EXPECT_NEAR(e.metrics.loss, want.loss, 1e-4);
}

TEST_F(RunEval, ErrorsNameTheOptionTheValueAndWhatWasExpected) {
  test::write_synthetic_image_folder(dir_ / "other", 1, 1, 32);
  fs::rename(dir_ / "other/class0", dir_ / "other/zebra");
  ImageEvalOptions o;
  std::string e = test::error_of([&] { evaluate_image_run(run_, dir_ / "other", o, "--test"); });
  EXPECT_TRUE(test::contains(e, "--test '" + dir_ / "other" + "' has class 'zebra'")) << e;
  // resnet32 has layers that resnet20's weights lack.
  const std::string weights = test::fixture("resnet20.weights.safetensors");
  e = test::error_of([&] { evaluate_source_model("resnet32", weights, dir_ / "test", o); });
  EXPECT_TRUE(test::contains(e, "--weights '" + weights + "' does not fit resnet32")) << e;
  test::write_synthetic_image_folder(dir_ / "many", 11, 1, 32);
  e = test::error_of([&] { evaluate_source_model("resnet20", weights, dir_ / "many", o); });
  const std::string many = dir_ / "many";
  EXPECT_TRUE(test::contains(e, "--data '" + many + "' has 11 classes, the source classifier has 10")) << e;
}

// options.max_pixels holds for the call alone: the process's limit returns.
TEST_F(RunEval, MaxPixelsHoldsForTheCallOnly) {
  const int64_t before = max_image_pixels();
  ImageEvalOptions o;
  o.max_pixels = 1000;  // the images are 32x32 = 1,024 pixels
  const auto got = predict_image_run(run_, {images_[0].first}, o);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(test::contains(got[0].error, "32x32")) << got[0].error;
  EXPECT_EQ(max_image_pixels(), before);
  o.max_pixels = 0;
  EXPECT_TRUE(predict_image_run(run_, {images_[0].first}, o)[0].error.empty());
}

// Text runs: the fixture's BERT pair classifier (random weights, its logits
// checked against PyTorch in text_model_test). Each line's labels are those
// of the model's logits for that line alone.
TEST(RunEvalText, PredictionsAreTheModelsLogitsPerLineAndTheCliPrintsThem) {
  if (!test::have_fixture("text_model/run/model.json")) GTEST_SKIP() << "no reference fixtures";
  const std::string run = test::fixture("text_model/run");
  test::TempDir dir;
  test::write_bytes(dir / "lines.txt", "w7 w8 w9\tw10\nw11 w12\tw13\r\none text only\n \tw5\nw20\tw21 w22\n");
  const std::vector<std::string> inputs = {dir / "lines.txt", dir / "missing.txt"};
  std::vector<std::string> order;
  const auto got = predict_text_run(run, inputs, 2, 64,
                                    [&](const InputPrediction& p) { order.push_back(p.input); });
  const std::string f = dir / "lines.txt";
  // Line 4 is blank (its first text is white space) and left out; errors
  // come to the callback first, the predictions after the one pass.
  EXPECT_EQ(order, (std::vector<std::string>{f + ":3", dir / "missing.txt", f + ":1", f + ":2", f + ":5"}));
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[2].input, f + ":3");
  EXPECT_EQ(got[2].error, f + ":3: no tab (the model reads text pairs: TEXT<TAB>TEXT)");
  EXPECT_TRUE(test::contains(got[4].error, "missing.txt' does not exist")) << got[4].error;
  const TextModel m = load_text_model(run);
  const std::vector<std::pair<size_t, std::pair<std::string, std::string>>> ok = {
      {0, {"w7 w8 w9", "w10"}}, {1, {"w11 w12", "w13"}}, {3, {"w20", "w21 w22"}}};
  for (const auto& [i, pair] : ok) {
    SCOPED_TRACE(got[i].input);
    ASSERT_TRUE(got[i].error.empty()) << got[i].error;
    EXPECT_EQ(*got[i].text, pair.first + "\t" + pair.second);
    const torch::Tensor p = torch::softmax(m.logits({m.encode(pair.first, pair.second)}, 1)[0], 0);
    auto [want_p, want_idx] = p.topk(2);
    ASSERT_EQ(got[i].top.size(), 2u);
    for (int64_t k = 0; k < 2; ++k) {
      EXPECT_EQ(got[i].top[k].label, m.info.classes[want_idx[k].item<int64_t>()]);
      EXPECT_NEAR(got[i].top[k].probability, want_p[k].item<double>(), 1e-5);
    }
  }
  test::CliResult cli = test::graft_cli({"predict", run, f, "--top-k", "2", "--json"});
  EXPECT_EQ(cli.code, 1);
  EXPECT_EQ(cli.err, "error: " + got[2].error + "\nerror: 1 inputs could not be read or classified\n");
  std::istringstream lines(cli.out);
  std::string line;
  for (const auto& [i, pair] : ok) {
    ASSERT_TRUE(std::getline(lines, line));
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["input"], got[i].input);
    EXPECT_EQ(j["text"], *got[i].text);
    for (size_t k = 0; k < 2; ++k)
      EXPECT_EQ(j["top"][k]["probability"].get<double>(), got[i].top[k].probability);
  }
  EXPECT_FALSE(std::getline(lines, line));
}

}  // namespace
}  // namespace graft
