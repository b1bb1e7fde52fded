// The C++ API (include/graft/graft.h) against references: the library calls
// behind graft predict / eval (whose own tests check them against PyTorch),
// an independent forward pass of the same weights, and the run folder fit()
// wrote. tests/install/consumers.sh checks the installed libgraft.so.

#include "graft/graft.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include "graft/core/files.h"
#include "graft/core/progress.h"
#include "graft/data/transforms.h"
#include "graft/eval/run_eval.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/text/text_eval.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

// A run of PyTorch's resnet20 fixture weights with a linear head over
// class0..class9 (as tests/eval/run_eval_test.cpp makes it).
std::string api_fixture_run(const test::TempDir& dir) {
  ModelInfo info;
  info.backbone = "resnet20";
  for (int c = 0; c < 10; ++c) info.classes.push_back("class" + std::to_string(c));
  info.input = find_backbone("resnet20").input;
  info.source_weights = "fixture";
  const std::string run = dir / "run";
  make_dirs(run);
  write_file_atomic(run + "/model.json", to_json(info).dump(2) + "\n");
  fs::copy_file(test::fixture("resnet20.weights.safetensors"), run + "/model.safetensors");
  return run;
}

std::vector<std::string> api_images(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& f : fs::recursive_directory_iterator(root))
    if (f.is_regular_file()) out.push_back(f.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

class ApiImage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_fixture("resnet20.weights.safetensors"))
      GTEST_SKIP() << "resnet20 fixtures missing: run tests/reference/make_fixtures.py";
    run_ = api_fixture_run(dir_);
    test::write_synthetic_image_folder(dir_ / "test", 3, 3, 32, 3, 7);
    images_ = api_images(dir_ / "test");
  }
  test::TempDir dir_;
  std::string run_;
  std::vector<std::string> images_;
};

// Model::predict_files gives graft predict's answers (predict_image_run),
// and the same images as cv::Mat in OpenCV's BGR order give the same again.
TEST_F(ApiImage, PredictEqualsGraftPredictForFilesAndMats) {
  const Model model = Model::load(run_);
  EXPECT_EQ(model.task(), "image");
  EXPECT_EQ(model.classes().size(), 10u);
  EXPECT_EQ(model.input_size(), 32);
  EXPECT_EQ(model.embedding_size(), 64);
  ImageEvalOptions o;
  o.top_k = 4;
  const std::vector<InputPrediction> want = predict_image_run(run_, images_, o);
  const std::vector<Prediction> files = model.predict_files(images_, 4);
  std::vector<cv::Mat> mats;
  for (const auto& path : images_) mats.push_back(cv::imread(path, cv::IMREAD_UNCHANGED));
  const std::vector<Prediction> from_mats = model.predict(mats, 4);
  ASSERT_EQ(files.size(), want.size());
  ASSERT_EQ(from_mats.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(files[i].input, images_[i]);
    EXPECT_EQ(from_mats[i].input, "#" + std::to_string(i));
    ASSERT_EQ(files[i].top.size(), 4u);
    ASSERT_EQ(from_mats[i].top.size(), 4u);
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_EQ(files[i].top[k].label, want[i].top[k].label);
      EXPECT_NEAR(files[i].top[k].probability, want[i].top[k].probability, 1e-6);
      EXPECT_EQ(from_mats[i].top[k].label, want[i].top[k].label);
      EXPECT_NEAR(from_mats[i].top[k].probability, want[i].top[k].probability, 1e-6);
    }
    EXPECT_EQ(files[i].answer(), want[i].top[0].label);
  }
}

// embed() rows are the pooled features of the same weights in plain
// evaluation mode (no folded BatchNorm, no channels-last), on pixels
// decoded and normalised here.
TEST_F(ApiImage, EmbedEqualsAnIndependentForwardPass) {
  torch::NoGradGuard no_grad;
  const BackboneSpec& spec = find_backbone("resnet20");
  Backbone ref = spec.make(10);
  ASSERT_TRUE(load_state_dict(*ref, read_weights(test::fixture("resnet20.weights.safetensors"))).clean());
  ref->eval();
  std::vector<cv::Mat> mats;
  std::vector<torch::Tensor> xs;
  for (const auto& path : images_) {
    cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
    mats.push_back(bgr);
    torch::Tensor x = torch::from_blob(bgr.data, {32, 32, 3}, torch::kUInt8).flip({2}).to(torch::kFloat32) / 255;
    x = x.permute({2, 0, 1}).contiguous();
    for (int c = 0; c < 3; ++c) x[c] = (x[c] - spec.input.mean[c]) / spec.input.std[c];
    xs.push_back(x);
  }
  const torch::Tensor want = ref->features(torch::stack(xs));
  const auto got = Model::load(run_).embed(mats);
  ASSERT_EQ(got.size(), images_.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(static_cast<int64_t>(got[i].size()), want.size(1));
    const torch::Tensor row = torch::tensor(got[i]);
    EXPECT_LT((row - want[static_cast<int64_t>(i)]).abs().max().item<double>(), 1e-4) << images_[i];
  }
}

// An unreadable input is an error of its own Prediction, naming it; the
// others are answered. Calls that do not fit the run are usage errors.
TEST_F(ApiImage, BadInputsAreNamedAndTheRestAnswered) {
  const Model model = Model::load(run_);
  write_file_atomic(dir_ / "broken.jpg", "\xff\xd8\xff not a jpeg");
  const auto got = model.predict_files({images_[0], dir_ / "broken.jpg", dir_ / "missing.png"}, 1);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[0].error.empty());
  EXPECT_NE(got[1].error.find("broken.jpg"), std::string::npos) << got[1].error;
  EXPECT_NE(got[2].error.find("missing.png"), std::string::npos) << got[2].error;
  EXPECT_EQ(got[1].answer(), "");
  const auto empty = model.predict({cv::Mat()}, 1);
  EXPECT_NE(empty[0].error.find("#0"), std::string::npos) << empty[0].error;
  EXPECT_THROW(model.predict_texts({"a text"}), UsageError);
  Model copy = model;
  EXPECT_THROW(copy.set_reject_below(1.5), UsageError);
  copy.set_reject_below(0.999999);  // copies share the network, and the threshold
  EXPECT_EQ(model.predict_files({images_[0]}, 1)[0].answer(), "unknown");
  try {
    Model::load(dir_ / "test");
    ADD_FAILURE() << "a folder of images loaded as a run";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir_ / "test"), std::string::npos) << e.what();
  }
}

// fit(): the run it writes is graft train's (metrics.csv holds the rows
// on_epoch saw), evaluate() is graft eval's, and the caller's thread count,
// random state and log silence are as they were.
TEST(ApiFit, ProgressIsMetricsCsvAndProcessStateIsKept) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "data", 2, 8, 32, 3, 3);
  torch::set_num_threads(1);
  set_quiet(false);
  torch::manual_seed(42);
  const torch::Tensor expected_draw = torch::rand({4});
  torch::manual_seed(42);
  FitOptions o;
  o.data = dir / "data";
  o.out = dir / "run";
  o.backbone = "resnet20";
  o.epochs = 3;
  o.batch_size = 4;
  o.val_split = 0.25;
  o.threads = 2;
  o.options = {{"augment", "\"none\""}};
  std::vector<EpochProgress> seen;
  const FitResult r = fit(o, [&](const EpochProgress& e) { seen.push_back(e); });
  EXPECT_EQ(torch::get_num_threads(), 1);
  EXPECT_FALSE(is_quiet());
  EXPECT_TRUE(torch::equal(torch::rand({4}), expected_draw));
  EXPECT_EQ(r.out, o.out);
  EXPECT_EQ(r.epochs_run, 3);
  EXPECT_FALSE(r.interrupted);
  ASSERT_EQ(seen.size(), 3u);
  std::istringstream csv(read_file(o.out + "/metrics.csv"));
  std::string line;
  std::getline(csv, line);  // header: epoch,train_loss,train_accuracy,val_loss,val_accuracy,...
  for (const EpochProgress& e : seen) {
    ASSERT_TRUE(std::getline(csv, line));
    std::vector<double> v;
    std::stringstream cells(line);
    for (std::string c; std::getline(cells, c, ',');) v.push_back(std::stod(c));
    EXPECT_EQ(e.epochs, 3);
    EXPECT_EQ(e.epoch, static_cast<int64_t>(v[0]));
    EXPECT_NEAR(e.train_loss, v[1], 1e-5 * std::max(1.0, v[1]));
    EXPECT_NEAR(e.val_accuracy, v[4], 1e-6);
  }
  const Evaluation ev = evaluate(o.out, o.data);
  ImageEvalOptions io;
  io.device = torch::kCPU;
  const ImageEvaluation want = evaluate_image_run(o.out, o.data, io);
  EXPECT_EQ(ev.count, want.metrics.count);
  EXPECT_DOUBLE_EQ(ev.accuracy, want.metrics.accuracy);
  EXPECT_DOUBLE_EQ(ev.loss, want.metrics.loss);
  EXPECT_EQ(ev.confusion, want.metrics.confusion);
}

// A StopToken ends the run at its next step (checkpointed: resume goes on
// to the end); bad options are usage errors naming the key.
TEST(ApiFit, StopTokenInterruptsAndResumeFinishes) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "data", 2, 6, 32, 3, 4);
  FitOptions o;
  o.data = dir / "data";
  o.out = dir / "run";
  o.backbone = "resnet20";
  o.epochs = 2;
  o.batch_size = 4;
  o.val_split = 0;
  o.threads = 1;
  StopToken stop;
  stop.request_stop();
  const FitResult first = fit(o, {}, stop);
  EXPECT_TRUE(first.interrupted);
  EXPECT_FALSE(fs::exists(o.out + "/model.safetensors"));
  o.resume = true;
  const FitResult second = fit(o);
  EXPECT_FALSE(second.interrupted);
  EXPECT_EQ(second.epochs_run, 2);
  EXPECT_TRUE(fs::exists(o.out + "/model.safetensors"));

  FitOptions bad = o;
  bad.resume = false;
  bad.overwrite = true;
  bad.options = {{"augment", "light"}};
  try {
    fit(bad);
    ADD_FAILURE() << "a value that is not JSON was taken";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'augment'"), std::string::npos) << e.what();
  }
  bad.options = {{"no_such_option", "1"}};
  try {
    fit(bad);
    ADD_FAILURE() << "an unknown option was taken";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_option"), std::string::npos) << e.what();
  }
  bad.options = {{"epochs", "3"}};
  EXPECT_THROW(fit(bad), UsageError);  // a field of FitOptions
}

// Text runs: predict_texts gives graft predict's answers (predict_text_run
// on a file of the same lines).
TEST(ApiText, PredictTextsEqualsGraftPredict) {
  const std::string sst2 = test::shared_data("sst2/train.tsv");
  const std::string vocab = test::shared_data("bert_vocab/vocab.txt");
  if (sst2.empty() || vocab.empty()) GTEST_SKIP() << "../shared/data (SST-2, BERT vocabulary) absent";
  test::TempDir dir;
  std::ifstream in(sst2);
  std::ofstream train(dir / "train.tsv"), texts(dir / "texts.txt");
  std::vector<std::string> lines;
  std::string line;
  for (int n = 0; std::getline(in, line) && n <= 240; ++n) {
    train << line << "\n";
    if (n > 200) {
      lines.push_back(line.substr(0, line.find('\t')));
      texts << lines.back() << "\n";
    }
  }
  train.close();
  texts.close();
  FitOptions o;
  o.task = "text";
  o.backbone = "tfidf";
  o.data = dir / "train.tsv";
  o.out = dir / "run";
  o.epochs = 3;
  o.lr = 0.1;
  o.threads = 1;
  o.options = {{"vocab", nlohmann::json(vocab).dump()}};
  fit(o);
  const Model model = Model::load(o.out);
  EXPECT_EQ(model.task(), "text");
  EXPECT_EQ(model.classes(), (std::vector<std::string>{"0", "1"}));
  const auto got = model.predict_texts(lines, 2);
  const auto want = predict_text_run(o.out, {dir / "texts.txt"}, 2);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].top.size(), 2u) << got[i].error;
    for (size_t k = 0; k < 2; ++k) {
      EXPECT_EQ(got[i].top[k].label, want[i].top[k].label);
      EXPECT_NEAR(got[i].top[k].probability, want[i].top[k].probability, 1e-6);
    }
  }
  EXPECT_THROW(model.embed_texts(lines), UsageError);  // TF-IDF has no features
  EXPECT_THROW(model.predict_files({"x.jpg"}), UsageError);
}

TEST(ApiVersion, IsTheProjectVersion) {
  EXPECT_EQ(version(), GRAFT_VERSION);
  EXPECT_EQ(version_major(), GRAFT_API_VERSION_MAJOR);
  EXPECT_NO_THROW(check_version());
}

}  // namespace
}  // namespace graft
