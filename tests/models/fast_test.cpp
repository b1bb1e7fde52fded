// The speed settings of graft/models/fast.h against what they replace:
// FoldableBatchNorm2d against LibTorch's BatchNorm2d, folded and channels-last
// models against the plain model, bf16 autocast against fp32. (Parity of the
// fast path with PyTorch itself is in registry_test.cpp.)

#include "graft/models/fast.h"

#include <gtest/gtest.h>

#include <ATen/autocast_mode.h>

#include <sstream>

#include "graft/core/error.h"
#include "graft/models/registry.h"
#include "test_util.h"

namespace graft {
namespace {

namespace nn = torch::nn;

TEST(FoldableBatchNorm, MatchesLibTorchBatchNorm2dInTrainingAndEvaluation) {
  torch::manual_seed(3);
  nn::BatchNorm2d ref(nn::BatchNorm2dOptions(6).eps(1e-3));
  FoldableBatchNorm2d bn(nn::BatchNorm2dOptions(6).eps(1e-3));
  {
    torch::NoGradGuard g;
    ref->weight.uniform_(0.5, 1.5);
    ref->bias.normal_();
    bn->weight.copy_(ref->weight);
    bn->bias.copy_(ref->bias);
  }
  std::vector<std::string> names, ref_names;
  for (const auto& p : bn->named_parameters()) names.push_back(p.key());
  for (const auto& p : bn->named_buffers()) names.push_back(p.key());
  for (const auto& p : ref->named_parameters()) ref_names.push_back(p.key());
  for (const auto& p : ref->named_buffers()) ref_names.push_back(p.key());
  EXPECT_EQ(names, ref_names);
  for (int step = 0; step < 3; ++step) {
    torch::Tensor x = torch::randn({4, 6, 5, 5}) * 2 + 1;
    torch::Tensor a = ref(x), b = bn(x);
    EXPECT_LE(test::rel_error(b, a), 1e-6);
    // The gradients flow the same way.
    torch::Tensor ga = torch::autograd::grad({a.pow(2).sum()}, {ref->weight})[0];
    torch::Tensor gb = torch::autograd::grad({b.pow(2).sum()}, {bn->weight})[0];
    EXPECT_LE(test::rel_error(gb, ga), 1e-5);
  }
  EXPECT_LE(test::rel_error(bn->running_mean, ref->running_mean), 1e-6);
  EXPECT_LE(test::rel_error(bn->running_var, ref->running_var), 1e-6);
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), ref->num_batches_tracked.item<int64_t>());
  ref->eval();
  bn->eval();
  torch::Tensor x = torch::randn({2, 6, 3, 3});
  EXPECT_LE(test::rel_error(bn(x), ref(x)), 1e-6);
}

/// A ResNet-18 with non-trivial BatchNorm statistics (random weights, a few
/// training-mode batches), then in evaluation mode.
Backbone trained_resnet(const std::string& name, int64_t side) {
  torch::manual_seed(5);
  const BackboneSpec& row = find_backbone(name);
  Backbone model = row.make(10);
  model->train();
  torch::NoGradGuard g;
  for (int i = 0; i < 2; ++i) model->forward(torch::randn({4, 3, side, side}));
  model->eval();
  return model;
}

TEST(FoldedBatchNorm, FoldsEveryBatchNormOfAResNetAndRestoresIt) {
  Backbone model = trained_resnet("resnet18", 64);
  torch::NoGradGuard g;
  torch::Tensor x = torch::randn({2, 3, 64, 64});
  const torch::Tensor plain = model->forward(x);
  std::vector<void*> before;
  for (const auto& p : model->parameters()) before.push_back(p.data_ptr());
  {
    FoldedBatchNorm fold(*model);
    EXPECT_EQ(fold.folded(), 20u);  // stem, 16 in the blocks, 3 downsample
    EXPECT_LE(test::rel_error(model->forward(x), plain), 1e-5);
  }
  EXPECT_LE(test::rel_error(model->forward(x), plain), 1e-6);
  std::vector<void*> after;
  for (const auto& p : model->parameters()) after.push_back(p.data_ptr());
  EXPECT_EQ(after, before);
  model->train();
  {
    FoldedBatchNorm none(*model);
    EXPECT_EQ(none.folded(), 0u) << "BatchNorm in training mode must not be folded";
  }
  // One way (graft eval, predict): the weights are scaled in place, the fold
  // outlives the object and a second fold finds nothing left to fold.
  model->eval();
  const torch::Tensor conv1 = model->named_parameters()["conv1.weight"].clone();
  { FoldedBatchNorm once(*model, /*restore=*/false); }
  EXPECT_LE(test::rel_error(model->forward(x), plain), 1e-5);
  EXPECT_FALSE(torch::equal(model->named_parameters()["conv1.weight"], conv1));
  FoldedBatchNorm again(*model);
  EXPECT_EQ(again.folded(), 0u);
}

TEST(ChannelsLast, TrainingStepEqualsTheContiguousOne) {
  Backbone a = trained_resnet("resnet20", 32), b = trained_resnet("resnet20", 32);
  a->train();
  b->train();
  to_channels_last(*b);
  for (const auto& p : b->named_parameters())
    if (p.value().dim() == 4)
      EXPECT_TRUE(p.value().is_contiguous(torch::MemoryFormat::ChannelsLast)) << p.key();
  torch::Tensor x = torch::randn({8, 3, 32, 32});
  torch::Tensor y = torch::randint(0, 10, {8}, torch::kInt64);
  torch::Tensor la = torch::nn::functional::cross_entropy(a->forward(x), y);
  torch::Tensor lb = torch::nn::functional::cross_entropy(b->forward(channels_last(x)), y);
  la.backward();
  lb.backward();
  EXPECT_NEAR(lb.item<double>(), la.item<double>(), 1e-5);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa)
    EXPECT_LE(test::rel_error(pb[p.key()].grad(), p.value().grad()), 1e-4) << p.key();
}

TEST(Precision, ParsesTheNamesAndNamesTheOptionOtherwise) {
  EXPECT_EQ(parse_precision("fp32"), Precision::kFp32);
  EXPECT_EQ(parse_precision("bf16"), Precision::kBf16);
  EXPECT_EQ(parse_precision("int8"), Precision::kInt8);
  try {
    parse_precision("fp16");
    FAIL() << "fp16 accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--precision: 'fp16'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fp32, bf16 or int8"), std::string::npos) << e.what();
  }
}

TEST(Precision, Bf16NeedsAvx512Bf16OrAmx) {
  EXPECT_TRUE(flags_have_bf16("fpu sse avx512f avx512_bf16 avx512_vnni"));
  EXPECT_TRUE(flags_have_bf16("fpu amx_tile amx_bf16"));
  EXPECT_FALSE(flags_have_bf16("fpu sse avx2 avx512f avx512_vnni"));
  EXPECT_FALSE(flags_have_bf16("avx512_bf16x"));
  std::ostringstream warn;
  EXPECT_EQ(resolve_precision(Precision::kFp32, warn), Precision::kFp32);
  EXPECT_EQ(warn.str(), "");
  const Precision got = resolve_precision(Precision::kBf16, warn);
  EXPECT_EQ(got, cpu_has_bf16() ? Precision::kBf16 : Precision::kFp32);
  EXPECT_EQ(warn.str().empty(), cpu_has_bf16()) << warn.str();
}

TEST(Precision, Bf16AutocastIsCloseToFp32AndEndsWithItsScope) {
  Backbone model = trained_resnet("resnet18", 64);
  torch::InferenceMode g;
  torch::Tensor x = torch::randn({2, 3, 64, 64});
  const torch::Tensor fp32 = model->features(x);
  torch::Tensor bf16;
  {
    Autocast autocast(Precision::kBf16);
    EXPECT_TRUE(at::autocast::is_cpu_enabled());
    bf16 = model->features(x);
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  EXPECT_EQ(bf16.scalar_type(), torch::kBFloat16);
  // bfloat16 keeps 8 bits of mantissa: about 0.4% per rounding, a few percent
  // after 20 layers; far from the difference between two inputs.
  const double err = test::rel_error(bf16.to(torch::kFloat32), fp32);
  EXPECT_LE(err, 0.05);
  EXPECT_GT(err, 0.0);
  const double other = test::rel_error(model->features(torch::randn({2, 3, 64, 64})), fp32);
  EXPECT_GT(other, 10 * err);
  {
    Autocast off(Precision::kFp32);
    EXPECT_FALSE(at::autocast::is_cpu_enabled());
  }
}

}  // namespace
}  // namespace graft

namespace graft {
namespace {

TEST(FastDropout, KeepsOneMinusPScaledAndIsReproducible) {
  const double p = 0.1;
  torch::Tensor x = torch::rand({1000, 1000}) + 0.5;
  torch::manual_seed(11);
  torch::Tensor a = fast_dropout(x, p, true);
  torch::manual_seed(11);
  torch::Tensor b = fast_dropout(x, p, true);
  torch::Tensor c = fast_dropout(x, p, true);
  EXPECT_TRUE(torch::equal(a, b)) << "the same seed must give the same mask";
  EXPECT_FALSE(torch::equal(b, c)) << "successive calls must draw new masks";
  const torch::Tensor kept = a.ne(0);
  const double n = static_cast<double>(x.numel());
  const double keep_rate = kept.sum().item<double>() / n;
  // Binomial(n, 0.9): the standard deviation of the rate is 3e-4.
  EXPECT_NEAR(keep_rate, 1 - p, 5 * std::sqrt(p * (1 - p) / n));
  EXPECT_TRUE(torch::allclose(a.masked_select(kept), x.masked_select(kept) / (1 - p), 1e-6, 0));
  // Neighbouring elements (the two halves of one 64-bit draw, and rows) are
  // independent: P(both dropped) = p^2.
  const torch::Tensor d = a.eq(0).to(torch::kFloat64);
  const double both = (d.flatten().slice(0, 0, -1) * d.flatten().slice(0, 1)).mean().item<double>();
  EXPECT_NEAR(both, p * p, 5 * std::sqrt(p * p * (1 - p * p) / n));
  // torch::nn::Dropout's contract: identity in evaluation and for p = 0.
  EXPECT_TRUE(fast_dropout(x, p, false).is_same(x));
  EXPECT_TRUE(fast_dropout(x, 0.0, true).is_same(x));
  EXPECT_THROW(fast_dropout(x, 1.0, true), Error);
}

TEST(FastDropout, GradientIsTheMaskAndDtypeIsKept) {
  torch::manual_seed(2);
  torch::Tensor x = torch::randn({64, 33}).requires_grad_(true);
  torch::Tensor y = fast_dropout(x, 0.3, true);
  y.sum().backward();
  const torch::Tensor expected = y.detach().ne(0).to(torch::kFloat32) / 0.7;
  EXPECT_TRUE(torch::allclose(x.grad(), expected, 1e-6, 1e-7));
  torch::Tensor h = torch::ones({16, 16}, torch::kBFloat16);
  EXPECT_EQ(fast_dropout(h, 0.5, true).scalar_type(), torch::kBFloat16);
  FastDropout module(0.25);
  module->eval();
  EXPECT_TRUE(module(x).is_same(x));
}

}  // namespace
}  // namespace graft

namespace graft {
namespace {

TEST(BatchedMatmul, EqualsMatmulWithGradientsOnStridedInputs) {
  torch::manual_seed(4);
  // As BERT's attention: [b, heads, t, d] views of a [b, t, 3, heads, d] tensor.
  torch::Tensor qkv = torch::randn({3, 17, 3, 4, 8}, torch::requires_grad());
  torch::Tensor q = qkv.select(2, 0).transpose(1, 2), k = qkv.select(2, 1).transpose(1, 2);
  torch::Tensor mine = batched_matmul(q, k.transpose(-1, -2));
  torch::Tensor ref = torch::matmul(q, k.transpose(-1, -2));
  ASSERT_EQ(mine.sizes(), ref.sizes());
  EXPECT_LE(test::rel_error(mine, ref), 1e-6);
  const torch::Tensor w = torch::randn(ref.sizes());
  const torch::Tensor g_mine = torch::autograd::grad({(mine * w).sum()}, {qkv})[0];
  const torch::Tensor g_ref = torch::autograd::grad({(ref * w).sum()}, {qkv})[0];
  EXPECT_LE(test::rel_error(g_mine, g_ref), 1e-6);
  {
    torch::InferenceMode guard;
    torch::Tensor a = torch::randn({5, 6, 7}), b = torch::randn({5, 7, 2});
    EXPECT_LE(test::rel_error(batched_matmul(a, b), torch::matmul(a, b)), 1e-6);
    Autocast autocast(Precision::kBf16);
    EXPECT_EQ(batched_matmul(a, b).scalar_type(), torch::kBFloat16);
  }
  EXPECT_THROW(batched_matmul(torch::randn({2, 3, 4}), torch::randn({3, 4, 5})), Error);
  EXPECT_THROW(batched_matmul(torch::randn({2, 3, 4}), torch::randn({2, 5, 4})), Error);
}

}  // namespace
}  // namespace graft
