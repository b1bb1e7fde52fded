// --precision int8 against PyTorch FX post-training quantisation of the same
// network with the same QConfig and engine (tests/reference/int8_fixtures.py).

#include "graft/models/int8.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/data/image_set.h"
#include "graft/data/transforms.h"
#include "graft/models/saved_model.h"
#include "graft/eval/infer.h"
#include "graft/eval/int8_run.h"
#include "graft/face/nets.h"
#include "graft/models/backbone.h"
#include "graft/models/fast.h"
#include "graft/models/registry.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

nlohmann::json read_json_fixture(const std::string& name) {
  return nlohmann::json::parse(read_regular_file(test::fixture(name)));
}

// The akamaster ResNet-20 with its published weights, in evaluation mode.
Backbone akamaster_resnet20(const std::string& weights) {
  Backbone m = find_backbone("resnet20").make(10);
  TensorList renamed;
  for (auto& [k, v] : read_weights(weights)) renamed.push_back({k.rfind("module.", 0) == 0 ? k.substr(7) : k, v});
  const LoadReport r = load_state_dict(*m, renamed);
  EXPECT_TRUE(r.clean()) << r.summary();
  m->eval();
  return m;
}

TEST(Int8, ObserversMatchPyTorchs) {
  if (!test::have_fixture("int8_qparams.json")) GTEST_SKIP() << "run tests/reference/make_fixtures.py";
  const nlohmann::json meta = read_json_fixture("int8_qparams.json");
  auto t = test::load_named(test::fixture("int8_qparams.safetensors"));
  for (const auto& c : meta["tensors"]) {
    const torch::Tensor x = t.at(c["name"].get<std::string>());
    const QuantPoint q = minmax_qparams(x.min().item<float>(), x.max().item<float>());
    // The same float32 arithmetic as MinMaxObserver: equal, not close.
    EXPECT_EQ(static_cast<float>(q.scale), c["scale"].get<float>()) << c["name"];
    EXPECT_EQ(q.zero_point, c["zero_point"].get<int64_t>()) << c["name"];
  }
  const torch::Tensor scales = per_channel_symmetric_scales(t.at("weight"));
  EXPECT_TRUE(torch::equal(scales, t.at("weight_scales"))) << scales << t.at("weight_scales");
  // A calibration survives its JSON form (the affine parameters are
  // recomputed from the ranges).
  Int8Calibration c;
  c.images = 3;
  c.points["a"] = minmax_qparams(-1.5f, 2.25f);
  const Int8Calibration back = int8_calibration_from_json(nlohmann::json::parse(to_json(c).dump()), "test");
  EXPECT_EQ(back.images, 3);
  EXPECT_EQ(back.points.at("a").scale, c.points.at("a").scale);
  EXPECT_EQ(back.points.at("a").zero_point, c.points.at("a").zero_point);
  EXPECT_TRUE(test::contains(test::error_of([] { int8_calibration_from_json(nlohmann::json::parse("{\"points\":{}}"), "f.json"); }),
                             "f.json"));
}

class Int8ResNet20 : public ::testing::Test {
 protected:
  void SetUp() override {
    weights_ = test::shared_data("pretrained/resnet_cifar10_akamaster/resnet20-12fca82f.th");
    images_ = test::shared_data("cifar10_test_jpg");
    if (weights_.empty() || images_.empty()) GTEST_SKIP() << "../shared/data is absent";
    if (!test::have_fixture("int8_resnet20.json")) GTEST_SKIP() << "run tests/reference/make_fixtures.py";
    meta_ = read_json_fixture("int8_resnet20.json");
    t_ = test::load_named(test::fixture("int8_resnet20.safetensors"));
  }
  std::string weights_, images_;
  nlohmann::json meta_;
  std::map<std::string, torch::Tensor> t_;
};

// Same inputs (the fixture's tensors), same calibration: every quantisation
// point's parameters equal FX's, and every int8 logit is within one output
// quantisation step of FX's.
TEST_F(Int8ResNet20, MatchesFxWithinOneQuantisationStep) {
  Backbone m = akamaster_resnet20(weights_);
  const Int8Calibration c = calibrate_int8(*m, {t_.at("calib")});
  EXPECT_EQ(c.images, 64);
  const nlohmann::json& fx = meta_["points"];
  EXPECT_EQ(c.points.size(), fx.size());
  for (auto it = fx.begin(); it != fx.end(); ++it) {
    ASSERT_TRUE(c.points.count(it.key())) << it.key();
    const QuantPoint& q = c.points.at(it.key());
    EXPECT_NEAR(q.scale, it.value()["scale"].get<double>(), 1e-6 * it.value()["scale"].get<double>()) << it.key();
    EXPECT_NEAR(q.zero_point, it.value()["zero_point"].get<int64_t>(), 1) << it.key();
  }
  m->set_int8(build_int8(*m, c));
  torch::InferenceMode guard;
  const torch::Tensor x = t_.at("test");
  const torch::Tensor out = m->forward(x), expected = t_.at("logits_int8");
  const double step = c.points.at("linear").scale;
  EXPECT_LE((out - expected).abs().max().item<double>(), step * 1.001);
  EXPECT_TRUE(torch::equal(out.argmax(1), expected.argmax(1)));
  // The same with the model and the input channels-last (as graft eval
  // prepares them); the int8 network is built before graft folds BatchNorm
  // (FoldedBatchNorm's float formula differs from FX's in the last bit, and
  // int8 rounding can amplify that), so building it on a folded model is
  // refused.
  Backbone cl = akamaster_resnet20(weights_);
  to_channels_last(*cl);
  cl->set_int8(build_int8(*cl, c));
  EXPECT_LE((cl->forward(channels_last(x)) - expected).abs().max().item<double>(), step * 1.001);
  FoldedBatchNorm fold(*cl, /*restore=*/false);
  const std::string e = test::error_of([&] { build_int8(*cl, c); });
  EXPECT_TRUE(test::contains(e, "before BatchNorm is folded")) << e;
  // Not a tautology: int8 differs from fp32 by more than one step somewhere.
  EXPECT_GT((t_.at("logits_fp32") - expected).abs().max().item<double>(), step);
  // features() is the dequantised pool, in float.
  const torch::Tensor f = m->features(x);
  EXPECT_EQ(f.scalar_type(), torch::kFloat32);
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{x.size(0), 64}));
}

// torchvision ResNet-18 (ImageNet stem with its max pool, projection
// shortcuts) with backbone_fixtures' weights: within one output step of FX.
TEST(Int8, ResNet18MatchesFx) {
  if (!test::have_fixture("int8_resnet18.safetensors")) GTEST_SKIP() << "run tests/reference/make_fixtures.py";
  auto t = test::load_named(test::fixture("int8_resnet18.safetensors"));
  Backbone m = find_backbone("resnet18").make(1000);
  const LoadReport r = load_state_dict(*m, read_weights(test::fixture("resnet18.weights.safetensors")));
  ASSERT_TRUE(r.clean()) << r.summary();
  m->eval();
  const Int8Calibration c = calibrate_int8(*m, {t.at("calib")});
  to_channels_last(*m);
  EXPECT_NEAR(c.points.at("fc").scale, t.at("fc_scale").item<double>(), 1e-6 * c.points.at("fc").scale);
  m->set_int8(build_int8(*m, c));
  torch::InferenceMode guard;
  const torch::Tensor out = m->forward(channels_last(t.at("test")));
  EXPECT_LE((out - t.at("logits_int8")).abs().max().item<double>(), c.points.at("fc").scale * 1.001);
}

// torchvision AlexNet and VGG-11 (no BatchNorm; max pools; fc6 and fc7 as
// Linear+ReLU) and GoogLeNet (transform_input: each input channel quantised
// on its own; inception branches sharing their concatenation's point) with
// backbone_fixtures' weights: every quantisation point has FX's scale and
// zero point, and the logits are within one output step.
TEST(Int8, AlexNetVggAndGoogLeNetMatchFx) {
  for (const std::string name : {"alexnet", "vgg11", "googlenet"}) {
    SCOPED_TRACE(name);
    if (!test::have_fixture("int8_" + name + ".json")) GTEST_SKIP() << "run tests/reference/make_fixtures.py";
    auto t = test::load_named(test::fixture("int8_" + name + ".safetensors"));
    const nlohmann::json fx = read_json_fixture("int8_" + name + ".json")["points"];
    Backbone m = find_backbone(name).make(1000);
    const LoadReport r = load_state_dict(*m, read_weights(test::fixture(name + ".weights.safetensors")));
    ASSERT_TRUE(r.clean()) << r.summary();
    m->eval();
    check_int8_supported(*m, name);
    const Int8Calibration c = calibrate_int8(*m, {t.at("calib")});
    EXPECT_EQ(c.points.size(), fx.size());
    for (auto it = fx.begin(); it != fx.end(); ++it) {
      SCOPED_TRACE(it.key());
      ASSERT_TRUE(c.points.count(it.key()));
      const QuantPoint& q = c.points.at(it.key());
      EXPECT_NEAR(q.scale, it.value()["scale"].get<double>(), 1e-6 * q.scale);
      EXPECT_EQ(q.zero_point, it.value()["zero_point"].get<int64_t>());
    }
    to_channels_last(*m);
    m->set_int8(build_int8(*m, c));
    torch::InferenceMode guard;
    const torch::Tensor x = channels_last(t.at("test"));
    const torch::Tensor out = m->forward(x);
    const double step = c.points.at(m->classifier_name()).scale;
    EXPECT_LE((out - t.at("logits_int8")).abs().max().item<double>(), step * 1.001);
    EXPECT_EQ(m->features(x).sizes(), (std::vector<int64_t>{x.size(0), name == "googlenet" ? 1024 : 4096}));
  }
}

// face-api's face embedder against FX on a PyTorch port of it
// (face_int8_fixtures.py), calibrated on the same 32 att_faces photos: the
// same points and scales, descriptors within one output step of FX's; the
// port's fp32 descriptors equal graft's (so the port is the same network).
TEST(Int8, FaceEmbedderMatchesFxOnItsPort) {
  if (!test::have_fixture("face_int8.json")) GTEST_SKIP() << "no face_int8.json (needs the face models and att_faces)";
  const nlohmann::json meta = read_json_fixture("face_int8.json");
  auto t = test::load_named(test::fixture("face_int8.safetensors"));
  FaceEmbedder net = load_face_embedder(meta["models"].get<std::string>());
  torch::InferenceMode guard;
  const torch::Tensor test_x = t.at("test");
  EXPECT_LT((net->forward(test_x) - t.at("descriptors_fp32")).abs().max().item<double>(), 1e-5);
  const Int8Calibration c = calibrate_face_int8(*net, {t.at("calib")});
  EXPECT_EQ(c.images, 32);
  const nlohmann::json& fx = meta["points"];
  EXPECT_EQ(c.points.size(), fx.size());
  for (auto it = fx.begin(); it != fx.end(); ++it) {
    SCOPED_TRACE(it.key());
    ASSERT_TRUE(c.points.count(it.key()));
    const QuantPoint& q = c.points.at(it.key());
    EXPECT_NEAR(q.scale, it.value()["scale"].get<double>(), 1e-5 * q.scale);
    EXPECT_EQ(q.zero_point, it.value()["zero_point"].get<int64_t>());
  }
  const auto int8 = build_face_int8(*net, c);
  const torch::Tensor got = int8->forward(test_x);
  const double step = c.points.at("fc").scale;
  const double diff = (got - t.at("descriptors_int8")).abs().max().item<double>();
  EXPECT_LE(diff, step * 1.001) << "one fc output step is " << step;
  const torch::Tensor cos = torch::cosine_similarity(got, net->forward(test_x), 1);
  EXPECT_GT(cos.min().item<double>(), 0.99);
  EXPECT_EQ(int8->features(test_x).sizes(), (std::vector<int64_t>{test_x.size(0), 256}));
  std::cout << "face int8 vs FX: max diff " << diff << " (fc step " << step << "), min cosine to fp32 "
            << cos.min().item<double>() << "\n";
}

// The whole test set, as graft eval reads it (OpenCV decoding), calibrated
// on the same 64 JPEGs as FX (PIL decoding): top-1 agrees with FX on at
// least 99.5% of the 10,000 images, and the accuracy is within 1 point of
// PyTorch's fp32.
TEST_F(Int8ResNet20, AgreesWithFxOnTheCifar10Jpegs) {
  test::TempDir dir;
  for (const auto& rel : meta_["calibration_files"]) {
    const fs::path to = fs::path(dir.path()) / "calib" / rel.get<std::string>();
    fs::create_directories(to.parent_path());
    fs::copy_file(fs::path(images_) / rel.get<std::string>(), to);
  }
  Backbone m = akamaster_resnet20(weights_);
  InferOptions o;
  o.calibration = 64;
  o.batch_size = 100;
  const InputSpec spec = find_backbone("resnet20").input;
  const Int8Calibration c = calibrate_int8(*m, calibration_batches(dir / "calib", spec, o, "--calibration-data"));
  EXPECT_EQ(c.images, 64);
  m->set_int8(build_int8(*m, c));
  o.precision = Precision::kInt8;
  const ImageSet set = open_image_set(images_);
  const Outputs out = infer(*m, set, spec, o, /*features=*/false);
  ASSERT_EQ(out.values.size(0), 10000);
  std::map<std::string, int64_t> fx;
  const torch::Tensor preds = t_.at("predictions");
  for (size_t i = 0; i < meta_["paths"].size(); ++i) fx[meta_["paths"][i].get<std::string>()] = preds[i].item<int64_t>();
  const torch::Tensor top1 = out.values.argmax(1);
  int64_t agree = 0, correct = 0;
  for (int64_t i = 0; i < top1.size(0); ++i) {
    const auto& s = set.samples[out.positions[i]];
    const std::string rel = fs::relative(s.path, images_).string();
    ASSERT_TRUE(fx.count(rel)) << rel;
    agree += fx[rel] == top1[i].item<int64_t>();
    correct += s.label == top1[i].item<int64_t>();
  }
  EXPECT_GE(agree, 9950) << "top-1 agreement with FX int8";
  const double accuracy = correct / 10000.0;
  if (test::have_fixture("akamaster_resnet20_accuracy.json")) {
    const double fp32 = read_json_fixture("akamaster_resnet20_accuracy.json")["accuracy"].get<double>();
    EXPECT_NEAR(accuracy, fp32, 0.01);
  }
  EXPECT_NEAR(accuracy, meta_["int8_accuracy"].get<double>(), 0.005);
}

TEST(Int8, RefusesWhatItCannotDo) {
  test::TempDir dir;
  const std::string run = test::resnet20_fixture_run(dir.path());
  test::write_synthetic_image_folder(dir / "few", 2, 4, 32);
  test::write_synthetic_image_folder(dir / "data", 2, 12, 32);
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  } cases[] = {
      {{"eval", run, "--data", dir / "data", "--precision", "int4"}, "expected fp32, bf16 or int8"},
      // The fixture run has no config.json naming its training data.
      {{"eval", run, "--data", dir / "data", "--precision", "int8"}, "--calibration-data"},
      {{"eval", run, "--data", dir / "data", "--precision", "int8", "--calibration", "8", "--calibration-data",
        dir / "data"},
       "--calibration: 8 images (expected at least 16)"},
      {{"eval", run, "--data", dir / "data", "--precision", "int8", "--calibration-data", dir / "few"},
       "gave 8 readable images"},
      {{"eval", run, "--data", dir / "data", "--precision", "int8", "--calibration-data", dir / "nowhere"},
       "does not exist"},
  };
  for (const auto& c : cases) {
    const test::CliResult r = test::graft_cli(c.args);
    EXPECT_EQ(r.code, 2) << c.expect << ": " << r.err;
    EXPECT_TRUE(test::contains(r.err, c.expect)) << r.err;
  }
  // Every registry family has an int8 path now; a layer that does not fit
  // one (here a dilated convolution) is named.
  Backbone resnet = find_backbone("resnet18").make(10);
  for (const auto& item : resnet->named_modules())
    if (item.key() == "layer1.0.conv1") item.value()->as<torch::nn::Conv2d>()->options.dilation(2);
  const std::string e = test::error_of([&] { check_int8_supported(*resnet, "resnet18"); });
  EXPECT_TRUE(test::contains(e, "layer 'layer1.0.conv1' is grouped or dilated (no int8 path)")) << e;
  EXPECT_TRUE(flags_have_vnni("fpu avx512f avx512_vnni"));
  EXPECT_FALSE(flags_have_vnni("fpu avx512f avx2"));
}

// graft eval --precision int8 on a run: the calibration is made once, kept in
// the run folder, and reused (same metrics); another --calibration makes a
// new one.
TEST(Int8, EvalKeepsAndReusesTheCalibration) {
  test::TempDir dir;
  const std::string run = test::resnet20_fixture_run(dir.path());
  test::write_synthetic_image_folder(dir / "data", 10, 4, 32);
  // The training data as graft train names it in config.json.
  write_file_atomic(run + "/config.json", nlohmann::json{{"options", {{"data", dir / "data"}}}}.dump());
  const std::vector<std::string> args = {"eval", run, "--data", dir / "data", "--precision", "int8",
                                         "--calibration", "32"};
  const test::CliResult first = test::graft_cli(args);
  ASSERT_EQ(first.code, 0) << first.err;
  const std::string file = run + "/" + kInt8CalibrationFile;
  ASSERT_TRUE(fs::exists(file));
  const std::string kept = read_regular_file(file);
  const nlohmann::json j = nlohmann::json::parse(kept);
  EXPECT_EQ(j["images"], 32);
  EXPECT_EQ(j["weights_sha256"], sha256_file(run + "/model.safetensors"));
  const test::CliResult second = test::graft_cli(args);
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_EQ(read_regular_file(file), kept);
  EXPECT_FALSE(test::contains(second.err, "calibrating again"));
  EXPECT_EQ(nlohmann::json::parse(first.out)["accuracy"], nlohmann::json::parse(second.out)["accuracy"]);
  // graft predict reuses it too: its probabilities are the softmax of the
  // int8 network built here from the kept calibration (the fixture run has
  // no calibrated temperature).
  const std::string image = dir / "data/class3/img0.png";
  ASSERT_TRUE(fs::exists(image));
  const test::CliResult p =
      test::graft_cli({"predict", run, image, "--json", "--top-k", "1", "--precision", "int8", "--calibration", "32"});
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(read_regular_file(file), kept);
  {
    LoadedModel loaded = load_model(run);
    loaded.model->eval();
    loaded.model->set_int8(build_int8(*loaded.model, int8_calibration_from_json(j, file)));
    torch::InferenceMode guard;
    const torch::Tensor x = eval_transform(load_image(image), loaded.info.input).unsqueeze(0);
    const torch::Tensor probs = torch::softmax(loaded.model->forward(x), 1)[0];
    const nlohmann::json top = nlohmann::json::parse(p.out)["top"][0];
    const int64_t k = probs.argmax().item<int64_t>();
    EXPECT_EQ(top["label"], loaded.info.classes[k]);
    EXPECT_NEAR(top["probability"].get<double>(), probs[k].item<double>(), 1e-5);
  }
  // Another --calibration makes a new one.
  std::vector<std::string> other = args;
  other[7] = "16";
  const test::CliResult third = test::graft_cli(other);
  ASSERT_EQ(third.code, 0) << third.err;
  EXPECT_EQ(nlohmann::json::parse(read_regular_file(file))["images"], 16);
}

}  // namespace
}  // namespace graft
