// Fine-tuning the face embedder's last stage: only it changes, the trunk is
// bitwise unchanged, a saved embedder reloads to identical embeddings; and
// the seeded face augmentation.
#include <filesystem>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "graft/face/augment.h"
#include "graft/face/finetune.h"
#include "graft/face/nets.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

class FaceFinetune : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = test::face_data_missing(); !why.empty()) GTEST_SKIP() << why;
    const std::string att = test::shared_data("att_faces");
    torch::set_num_threads(1);
    // 4 people x 2 photos, stretched to the chip size (alignment is not
    // what is tested here).
    for (int s = 1; s <= 4; ++s) {
      for (int i = 1; i <= 2; ++i) {
        cv::Mat grey = cv::imread(att + "/s" + std::to_string(s) + "/" + std::to_string(i) + ".pgm", cv::IMREAD_GRAYSCALE), chip;
        cv::resize(grey, chip, {150, 150}, 0, 0, cv::INTER_LINEAR);
        chips_.push_back(chip);
        labels_.push_back(s - 1);
      }
    }
    net_ = load_face_embedder(default_face_models_dir());
  }
  torch::Tensor inputs() {
    std::vector<torch::Tensor> xs;
    for (const auto& c : chips_) xs.push_back(face_net_input(c, 150));
    return torch::stack(xs);
  }
  std::map<std::string, torch::Tensor> snapshot() {
    std::map<std::string, torch::Tensor> m;
    for (const auto& p : net_->named_parameters()) m[p.key()] = p.value().detach().clone();
    return m;
  }
  // The loop's settings for `o`, writing into a fresh folder.
  TrainOptions loop_options(const FaceFinetuneOptions& o, const std::string& name) {
    TrainOptions t = finetune_loop_options(TrainOptions{}, o);
    t.out = runs_ / name;
    t.quiet = true;
    fs::create_directories(t.out);
    return t;
  }
  std::vector<cv::Mat> chips_;
  std::vector<int64_t> labels_;
  FaceEmbedder net_{nullptr};
  test::TempDir runs_;
};

TEST_F(FaceFinetune, OneStepChangesOnlyTheLastStage) {
  torch::Tensor centres;
  {
    torch::NoGradGuard g;
    centres = torch::nn::functional::normalize(net_->forward(inputs()).view({4, 2, 128}).mean(1),
                                               torch::nn::functional::NormalizeFuncOptions().dim(1));
  }
  for (const std::string loss : {"arcface", "triplet"}) {
    const auto before = snapshot();
    FaceFinetuneOptions o;
    o.loss = loss;
    o.epochs = 1;
    o.batch_size = 8;
    o.margin = loss == "triplet" ? 0.2 : 0.5;
    o.scale = 30;
    o.augment = loss == "arcface";  // both paths: augmented views and the cached trunk
    o.lr = 0.05;
    const auto stats = finetune_face_embedder(net_, chips_, labels_, 4, centres, o, loop_options(o, loss));
    EXPECT_EQ(stats.steps, 1) << loss;
    EXPECT_EQ(stats.epochs_run, 1) << loss;
    int changed = 0, last = 0;
    for (const auto& p : net_->named_parameters()) {
      EXPECT_FALSE(p.value().requires_grad()) << p.key();
      const bool same = torch::equal(p.value(), before.at(p.key()));
      if (FaceEmbedderImpl::in_last_stage(p.key())) {
        ++last;
        changed += !same;
      } else {
        EXPECT_TRUE(same) << loss << ": frozen " << p.key() << " changed";
      }
    }
    EXPECT_EQ(last, 9);  // conv1 and conv2 (filters, bias, scale, shift) and fc
    EXPECT_EQ(changed, last) << loss << ": every last-stage tensor should have moved";
  }
}

TEST_F(FaceFinetune, SavedEmbedderReloadsToIdenticalEmbeddings) {
  FaceFinetuneOptions o;
  o.loss = "cosface";
  o.epochs = 1;
  o.batch_size = 4;
  o.margin = 0.35;
  o.scale = 30;
  o.augment = false;
  const auto centres = torch::nn::functional::normalize(torch::randn({4, 128}),
                                                        torch::nn::functional::NormalizeFuncOptions().dim(1));
  finetune_face_embedder(net_, chips_, labels_, 4, centres, o, loop_options(o, "cosface"));
  test::TempDir dir;
  save_face_embedder_weights(net_, dir / "e.safetensors");
  FaceEmbedder fresh = load_face_embedder(default_face_models_dir());
  torch::NoGradGuard g;
  const auto x = inputs();
  const auto pretrained = fresh->forward(x);
  load_face_embedder_weights(fresh, dir / "e.safetensors");
  const auto tuned = net_->forward(x), reloaded = fresh->forward(x);
  EXPECT_TRUE(torch::equal(tuned, reloaded));
  EXPECT_FALSE(torch::equal(tuned, pretrained));

  // A file that lacks a tensor or holds another shape is refused by name.
  TensorList partial;
  for (const auto& p : net_->named_parameters())
    if (p.key() != "fc") partial.push_back({p.key(), p.value()});
  save_safetensors(dir / "partial.safetensors", partial);
  EXPECT_NE(test::error_of([&] { load_face_embedder_weights(fresh, dir / "partial.safetensors"); }).find("no tensor \"fc\""),
            std::string::npos);
  partial.push_back({"fc", torch::zeros({128, 256})});
  save_safetensors(dir / "shape.safetensors", partial);
  EXPECT_NE(test::error_of([&] { load_face_embedder_weights(fresh, dir / "shape.safetensors"); }).find("expected Float [256, 128]"),
            std::string::npos);
}

TEST(FaceAugment, SeededAndEachTransformDoesWhatItSays) {
  cv::Mat chip(150, 150, CV_8UC3);
  cv::randu(chip, 0, 255);
  cv::GaussianBlur(chip, chip, {9, 9}, 3);
  const cv::Mat a = augment_face_chip(chip, 7), b = augment_face_chip(chip, 7), c = augment_face_chip(chip, 8);
  EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0.0);
  EXPECT_GT(cv::norm(a, c, cv::NORM_INF), 0.0);
  EXPECT_EQ(a.size(), chip.size());
  EXPECT_EQ(a.type(), chip.type());

  FaceAugmentOptions none;
  none.flip = 0;
  none.rotate_degrees = none.scale = none.brightness = 0;
  EXPECT_EQ(cv::norm(augment_face_chip(chip, 3, none), chip, cv::NORM_INF), 0.0);
  FaceAugmentOptions flip = none;
  flip.flip = 1;
  cv::Mat mirrored;
  cv::flip(chip, mirrored, 1);
  EXPECT_EQ(cv::norm(augment_face_chip(chip, 3, flip), mirrored, cv::NORM_INF), 0.0);
  FaceAugmentOptions bright = none;
  bright.brightness = 0.2;
  int brighter = 0, darker = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const double ratio = cv::mean(augment_face_chip(chip, seed, bright))[0] / cv::mean(chip)[0];
    EXPECT_GE(ratio, 0.79);
    EXPECT_LE(ratio, 1.21);
    brighter += ratio > 1.01;
    darker += ratio < 0.99;
  }
  EXPECT_GT(brighter, 0);
  EXPECT_GT(darker, 0);
  // Rotation and zoom keep the centre pixel (the fixed point) close.
  FaceAugmentOptions geo = none;
  geo.rotate_degrees = 10;
  geo.scale = 0.1;
  const cv::Mat g = augment_face_chip(chip, 11, geo);
  EXPECT_GT(cv::norm(g, chip, cv::NORM_L1), 0.0);
  EXPECT_LE(std::abs(g.at<cv::Vec3b>(75, 75)[0] - chip.at<cv::Vec3b>(75, 75)[0]), 8);
}

}  // namespace
}  // namespace graft
