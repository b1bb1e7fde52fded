// Learning from unlabelled target data (issue 19): the losses of
// train/adapt.h against references, a synthetic two-domain problem, the
// image task's --adapt run resumed, and the usage errors.

#include "graft/train/adapt.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "graft/train/strategy.h"
#include "graft/train/trainer.h"
#include "graft/weights/safetensors.h"
#include "test_util.h"

namespace graft {
namespace {

TEST(Adapt, ReverseGradientIsTheIdentityForwardAndMinusLambdaBackward) {
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({5, 7}, torch::kFloat64).requires_grad_(true);
  torch::Tensor w = torch::randn({5, 7}, torch::kFloat64);
  torch::Tensor y = reverse_gradient(x, 0.7);
  EXPECT_TRUE(torch::equal(y, x));
  (y * w).sum().backward();
  // d(sum(y * w))/dx would be w; reversed and scaled: -0.7 w.
  EXPECT_TRUE(torch::allclose(x.grad(), -0.7 * w, 0, 1e-15));
  // Ganin's schedule: 0 at the start, tanh(5p) in closed form, -> 1.
  EXPECT_EQ(grl_lambda(0.0), 0.0);
  for (double p : {0.1, 0.5, 1.0}) EXPECT_NEAR(grl_lambda(p), std::tanh(5.0 * p), 1e-15);
}

TEST(Adapt, AnnealedScheduleIsTheDannPapers) {
  // mu_p = mu_0 / (1 + 10 p)^0.75 (Ganin et al. 2016, section 5.2.2), p the run's progress.
  for (int64_t step : {0, 25, 50, 99})
    EXPECT_NEAR(lr_factor("annealed", step, 100, 0, 0, 0.1), std::pow(1.0 + 10.0 * step / 100.0, -0.75), 1e-15);
  // After a warmup, p counts from its end.
  EXPECT_NEAR(lr_factor("annealed", 30, 100, 10, 0, 0.1), std::pow(1.0 + 10.0 * 20.0 / 90.0, -0.75), 1e-15);
}

class AdaptReference : public test::ReferenceTest {
 protected:
  AdaptReference() : ReferenceTest("adapt/cases.safetensors", "adapt/expected.json", "no adapt fixtures") {}
};

TEST_F(AdaptReference, MultiKernelMmdEqualsABruteForceRecomputation) {
  torch::Tensor x = at("mmd.x").to(torch::kFloat64), y = at("mmd.y").to(torch::kFloat64);
  EXPECT_NEAR(median_squared_distance(x, y).item<double>(), json_["median"].get<double>(), 1e-9);
  EXPECT_NEAR(mk_mmd(x, y).item<double>(), json_["mmd"].get<double>(), 1e-10);
  EXPECT_NEAR(mk_mmd(x.narrow(0, 0, 20), x.narrow(0, 20, 20)).item<double>(), json_["mmd_same"].get<double>(),
              1e-10);
  // In float32, as training computes it.
  EXPECT_NEAR(mk_mmd(at("mmd.x"), at("mmd.y")).item<double>(), json_["mmd"].get<double>(), 1e-5);
}

TEST_F(AdaptReference, CdanLossAndReversedGradientEqualTLlibsFormula) {
  AdaptSpec spec;
  spec.method = "cdan";
  spec.feature_dim = 4;
  spec.classes = 3;
  spec.hidden = 8;
  DomainAdapter adapter(spec);
  adapter->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : adapter->named_parameters()) p.value().copy_(at("cdan." + p.key()));
  }
  torch::Tensor f_s = at("cdan.f_s").to(torch::kFloat64).requires_grad_(true);
  AdaptLoss a = adapter->loss(f_s, at("cdan.f_t").to(torch::kFloat64), at("cdan.g_s").to(torch::kFloat64),
                              at("cdan.g_t").to(torch::kFloat64), 0.3);
  const auto& e = json_["cdan"];
  EXPECT_NEAR(a.loss.item<double>(), e["loss"].get<double>(), 1e-12);
  EXPECT_EQ(a.domain_correct, e["correct"].get<int64_t>());
  EXPECT_EQ(a.domain_count, 11);
  a.loss.backward();
  torch::Tensor want = torch::tensor(e["grad_f_s"].get<std::vector<double>>(), torch::kFloat64);
  EXPECT_TRUE(torch::allclose(f_s.grad().flatten(), want, 0, 1e-12)) << f_s.grad();
}

TEST(Adapt, ConfidentLabelLossCountsOnlyRowsOverTheThreshold) {
  torch::Tensor guess = torch::tensor({{4.0, 0.0}, {0.1, 0.0}, {0.0, 5.0}});  // confident, not, confident
  torch::Tensor learn = torch::tensor({{0.5, 0.2}, {1.0, -1.0}, {0.3, 0.0}}).requires_grad_(true);
  SelfTrainLoss l = confident_label_loss(guess, learn, 0.95);
  EXPECT_EQ(l.kept, 2);
  // Brute force: rows 0 (label 0) and 2 (label 1), divided by all 3 rows.
  auto ce = [](double a, double b, int label) {
    const double z = std::log(std::exp(a) + std::exp(b));
    return z - (label == 0 ? a : b);
  };
  EXPECT_NEAR(l.loss.item<double>(), (ce(0.5, 0.2, 0) + ce(0.3, 0.0, 1)) / 3.0, 1e-6);
  EXPECT_NEAR(rampup_weight(0, 4), std::exp(-5.0), 1e-15);
  EXPECT_EQ(rampup_weight(4, 4), 1.0);
  EXPECT_EQ(rampup_weight(1, 0), 1.0);
}

// A shifted Gaussian mixture: two classes at (-1,-1) and (1,1) in the source,
// the target shifted by (0, 3). Both coordinates separate the source classes,
// so a source-only classifier uses both and calls every target point class 1;
// a feature that ignores the shifted coordinate aligns the domains and
// still separates the classes, and that is what DANN and DAN must find.
struct TwoDomains {
  torch::Tensor xs, ys, xt, yt;
};

TwoDomains two_domains(uint64_t seed) {
  torch::manual_seed(seed);
  auto draw = [](double shift) {
    torch::Tensor y = torch::randint(0, 2, {512}, torch::kInt64);
    torch::Tensor mu = y.to(torch::kFloat32).mul(2).sub(1).unsqueeze(1).expand({512, 2}).clone();
    mu.select(1, 1).add_(shift);
    return std::make_pair(mu + 0.35 * torch::randn({512, 2}), y);
  };
  TwoDomains d;
  std::tie(d.xs, d.ys) = draw(0);
  std::tie(d.xt, d.yt) = draw(3);
  return d;
}

// Target accuracy of a small MLP trained with the image task's losses
// (the cross-entropy + DomainAdapter::loss), 400 Adam steps at 0.01.
double target_accuracy(const std::string& method, const TwoDomains& d, uint64_t seed) {
  torch::manual_seed(seed);
  torch::nn::Sequential feat(torch::nn::Linear(2, 16), torch::nn::ReLU(), torch::nn::Linear(16, 8));
  torch::nn::Linear cls(8, 2);
  std::vector<torch::Tensor> params = feat->parameters();
  for (auto& p : cls->parameters()) params.push_back(p);
  DomainAdapter adapter{nullptr};
  if (method != "none") {
    AdaptSpec spec;
    spec.method = method;
    spec.feature_dim = 8;
    spec.classes = 2;
    spec.hidden = 32;
    adapter = DomainAdapter(spec);
    for (auto& p : adapter->parameters()) params.push_back(p);
  }
  torch::optim::Adam opt(params, torch::optim::AdamOptions(0.01));
  const int steps = 400;
  for (int t = 0; t < steps; ++t) {
    torch::Tensor i = torch::randint(0, 512, {64}, torch::kInt64), j = torch::randint(0, 512, {64}, torch::kInt64);
    torch::Tensor f = feat->forward(torch::cat({d.xs.index_select(0, i), d.xt.index_select(0, j)}));
    torch::Tensor logits = cls->forward(f);
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits.narrow(0, 0, 64), d.ys.index_select(0, i));
    if (adapter)
      loss = loss + adapter->loss(f.narrow(0, 0, 64), f.narrow(0, 64, 64), logits.narrow(0, 0, 64),
                                  logits.narrow(0, 64, 64), double(t) / steps).loss;
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  torch::NoGradGuard no_grad;
  return cls->forward(feat->forward(d.xt)).argmax(1).eq(d.yt).to(torch::kFloat64).mean().item<double>();
}

// The median over three seeds (data and initialisation): adversarial
// training and marginal alignment each fail now and then on their own (a
// PyTorch prototype of this test over 8 seeds: source-only 0.48-0.80, DANN
// 0.93-1.0, DAN 0.98-1.0 but 0.0 in 2 of 8, where it aligned the two classes
// crosswise, which matching marginals cannot tell from the right way).
double median_target_accuracy(const std::string& method) {
  std::vector<double> acc;
  for (uint64_t seed : {1, 2, 3}) acc.push_back(target_accuracy(method, two_domains(100 + seed), seed));
  std::sort(acc.begin(), acc.end());
  std::cout << "  " << method << " target accuracy over 3 seeds: " << acc[0] << " " << acc[1] << " " << acc[2]
            << "\n";
  return acc[1];
}

TEST(Adapt, DannAndDanSucceedOnAShiftedMixtureWhereSourceOnlyFails) {
  const int threads = at::get_num_threads();
  at::set_num_threads(1);  // tiny matrices: threads only cost time
  const double none = median_target_accuracy("none"), dann = median_target_accuracy("dann"),
               dan = median_target_accuracy("dan");
  at::set_num_threads(threads);
  EXPECT_LT(none, 0.65);
  EXPECT_GT(dann, 0.8);
  EXPECT_GT(dan, 0.9);
  EXPECT_GT(dann - none, 0.25);
  EXPECT_GT(dan - none, 0.25);
}

// ---- The image task (train/image_train.cpp) ----

TrainOptions adapt_run(const test::TempDir& dir) {
  test::write_synthetic_image_folder(dir / "data", 2, 6, 32);
  // Target images nested in folders the task does not read as classes.
  test::write_synthetic_image_folder(dir / "target", 2, 5, 32, 3, 7);
  TrainOptions o;
  o.data = dir / "data";
  o.val = dir / "data";
  o.unlabeled = dir / "target";
  o.backbone = "resnet20";
  o.weights = "none";
  o.strategy = "full";
  o.batch_size = 8;
  o.augment = "light";
  o.workers = 2;
  o.cache_dir = dir / "cache";
  o.quiet = true;
  o.epochs = 4;
  o.optimizer = "adamw";
  o.lr = 0.01;
  o.adapt = "dann";
  o.domain_hidden = 16;
  return o;
}

TEST(Adapt, ResumedDannRunEqualsAnUninterruptedOne) {
  test::TempDir dir;
  TrainOptions o = adapt_run(dir);
  o.out = dir / "whole";
  train(o);
  // The domain classifier's accuracy per epoch is in metrics.csv.
  const std::string csv = read_file(dir / "whole/metrics.csv");
  EXPECT_TRUE(test::contains(csv.substr(0, csv.find('\n')), ",domain_accuracy")) << csv;
  // ... and a line of report.html's accuracy chart.
  EXPECT_TRUE(test::contains(read_file(dir / "whole/report.html"), "data-series=\"domain classifier\""));

  o.out = dir / "interrupted";
  // 12 labelled images in batches of 8: 2 steps an epoch. Stop in the
  // middle of epoch 2, and once more at the end of epoch 3.
  const auto s = test::train_stopped_twice(o, [](int64_t step) { return step == 3 || step == 6; });
  EXPECT_EQ(s[1].epochs_run, 3);
  EXPECT_EQ(s[2].epochs_run, 4);
  EXPECT_EQ(read_file(dir / "whole/model.safetensors"), read_file(dir / "interrupted/model.safetensors"));
  // The last state, the domain classifier included, is the same too.
  bool has_domain = false;
  for (const auto& name : test::expect_same_last_state(dir / "whole", dir / "interrupted"))
    has_domain = has_domain || test::contains(name, "adapter.domain");
  EXPECT_TRUE(has_domain);
}

// Each bad combination is a usage error (exit 2) naming the option and value.
TEST(Adapt, BadUnlabelledOptionsAreUsageErrors) {
  test::TempDir dir;
  test::write_synthetic_image_folder(dir / "data", 2, 3, 32);
  std::filesystem::create_directories(dir / "empty");
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"train", "--data", dir / "data", "--out", dir / "run", "--backbone", "resnet20",
                                     "--epochs", "1", "--quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::graft_cli(args);
  };
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--adapt", "dann", "--unlabeled", dir / "missing"}, "--unlabeled: '" + dir / "missing" + "' does not exist"},
      {{"--adapt", "dan", "--unlabeled", dir / "empty"}, "--unlabeled: '" + dir / "empty" + "' is an empty folder"},
      {{"--adapt", "dann"}, "--adapt dann needs target images"},
      {{"--unlabeled", dir / "data"}, "--unlabeled '" + dir / "data" + "' is read only with --adapt or --self-train"},
      {{"--self-train", "fixmatch", "--augment", "none", "--unlabeled", dir / "data"},
       "--self-train fixmatch with --augment none"},
      {{"--adapt", "cdan", "--strategy", "linear", "--unlabeled", dir / "data"}, "--adapt cdan with --strategy linear"},
      {{"--adapt", "dann", "--self-train", "pseudo", "--unlabeled", dir / "data"}, "choose one"},
      {{"--adapt", "mmd", "--unlabeled", dir / "data"}, "--adapt"},
  };
  for (const Case& c : cases) {
    test::CliResult r = run(c.args);
    EXPECT_EQ(r.code, 2) << c.says << "\n" << r.err;
    EXPECT_TRUE(test::contains(r.err, c.says)) << r.err;
  }
  // --self-train needs labelled data: without --data.
  test::CliResult r = test::graft_cli({"train", "--self-train", "pseudo", "--unlabeled", dir / "data", "--out",
                                       dir / "run2", "--quiet"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(test::contains(r.err, "--self-train pseudo needs the target's labelled images")) << r.err;
  // Another task than image: the flag is not the face task's.
  r = test::graft_cli({"train", "--task", "face", "--data", dir / "data", "--adapt", "dann", "--out", dir / "run3"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(test::contains(r.err, "--adapt")) << r.err;
  // Through a config file too (a --config may hold any option).
  write_file_atomic(dir / "face.json", R"({"task": "face", "adapt": "dann"})");
  TrainOptions face = train_options_from_json(nlohmann::json::parse(read_file(dir / "face.json")), "face.json");
  face.data = dir / "data";
  face.out = dir / "run4";
  EXPECT_TRUE(test::contains(test::error_of([&] { validate(face); }), "--adapt dann with --task face"));
}

}  // namespace
}  // namespace graft
