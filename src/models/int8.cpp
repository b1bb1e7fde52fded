// Post-training static int8 (see include/graft/models/int8.h): each family's
// network read from its module tree into a plain description (a plan:
// folded convolutions, blocks, the classifier slot), run either in float
// with observers (calibration) or through LibTorch's quantised operators.
// Plans: the ResNet family, AlexNet/VGG, GoogLeNet, face-api's embedder.

#include "graft/models/int8.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "graft/core/error.h"
#include "graft/face/nets.h"
#include "graft/models/backbone.h"
#include "graft/models/families.h"
#include "graft/models/fast.h"

namespace graft {
namespace {

namespace nn = torch::nn;
using torch::indexing::None;
using torch::indexing::Slice;

/// A convolution with its BatchNorm folded in, and whether a ReLU follows.
struct Int8Conv {
  std::string name;  // the quantisation point of its output
  torch::Tensor weight, bias;
  int64_t stride = 1, padding = 0;
  bool relu = false;
  c10::IValue packed;  // quantized::conv2d_prepack's result (int8 only)
  QuantPoint out;      // its output's quantisation (int8 only)
};

/// A Linear (fc6, fc7, the classifier slot), with whether a ReLU follows.
struct Int8Linear {
  std::string name;
  torch::Tensor weight, bias;
  bool relu = false;
  c10::IValue packed;
  QuantPoint out;
};

struct Int8Block {
  std::string name;
  std::vector<Int8Conv> convs;
  bool has_downsample = false;
  Int8Conv downsample;
  /// Option A: zero channels added on each side after subsampling by `subsample`.
  int64_t pad = 0, subsample = 1;
  QuantPoint shortcut_q, out_q;  // the requantised option-A shortcut; the add+ReLU output (int8 only)
};

struct Int8Plan {
  Int8Conv stem;
  bool max_pool = false;
  std::vector<Int8Block> blocks;
  std::optional<Int8Linear> head;  // the classifier slot, when one Linear (its name is its point)
};

std::shared_ptr<nn::Module> child(const nn::Module& m, const std::string& name) {
  for (const auto& item : m.named_children())
    if (item.key() == name) return item.value();
  return nullptr;
}

bool is_resnet(const nn::Module& m) {
  return child(m, "conv1") && child(m, "bn1") && child(m, "layer1") &&
         child(m, "conv1")->as<nn::Conv2d>() && child(m, "bn1")->as<FoldableBatchNorm2d>();
}

int64_t conv_padding(const nn::Conv2dImpl& conv, const std::string& name) {
  const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&conv.options.padding());
  GRAFT_CHECK(pad && (*pad)->at(0) == (*pad)->at(1) && conv.options.stride()->at(0) == conv.options.stride()->at(1),
              "--precision int8: layer '", name, "' has uneven or named padding or stride (no int8 path)");
  return (*pad)->at(0);
}

Int8Linear linear_of(const nn::Module& m, const std::string& name, bool relu) {
  const auto* l = m.as<nn::Linear>();
  GRAFT_CHECK(l, "--precision int8: layer '", name, "' is not a Linear");
  Int8Linear out;
  out.name = name;
  out.relu = relu;
  out.weight = l->weight.detach().contiguous();
  out.bias = l->bias.defined() ? l->bias.detach() : torch::zeros({out.weight.size(0)});
  return out;
}

// The classifier slot when it is one Linear (quantised as the network's
// output point, named by the slot), else none: the model's own head then
// runs in float on the dequantised features.
std::optional<Int8Linear> linear_head(BackboneImpl& model) {
  for (const auto& item : model.named_modules())
    if (item.key() == model.classifier_name() && item.value()->as<nn::Linear>())
      return linear_of(*item.value(), item.key(), false);
  return std::nullopt;
}

// A convolution without BatchNorm (AlexNet, VGG), as it is.
Int8Conv plain(const nn::Module& conv_module, const std::string& name, bool relu) {
  const auto* conv = conv_module.as<nn::Conv2d>();
  GRAFT_CHECK(conv, "--precision int8: layer '", name, "' is not a convolution");
  GRAFT_CHECK(conv->options.groups() == 1 && conv->options.dilation()->at(0) == 1,
              "--precision int8: layer '", name, "' is grouped or dilated (no int8 path)");
  Int8Conv c;
  c.name = name;
  c.relu = relu;
  c.stride = conv->options.stride()->at(0);
  c.padding = conv_padding(*conv, name);
  torch::NoGradGuard no_grad;
  c.weight = conv->weight.detach().contiguous();
  c.bias = conv->bias.defined() ? conv->bias.detach() : torch::zeros({c.weight.size(0)});
  return c;
}

// conv followed by bn, folded as torch.nn.utils.fusion.fuse_conv_bn_weights
// does.
Int8Conv fold(const nn::Module& conv_module, const nn::Module& bn_module, const std::string& name, bool relu) {
  const auto* bn = bn_module.as<FoldableBatchNorm2d>();
  GRAFT_CHECK(conv_module.as<nn::Conv2d>() && bn, "--precision int8: layer '", name,
              "' is not a convolution followed by a BatchNorm");
  Int8Conv c = plain(conv_module, name, relu);
  torch::NoGradGuard no_grad;
  const torch::Tensor w = c.weight;
  // FX's formula, which the parity rests on: a model folded by graft's
  // FoldedBatchNorm (the same map, rounded otherwise) is refused.
  GRAFT_CHECK(!bn->bypassed(), "--precision int8: layer '", name,
              "': the int8 network must be built before BatchNorm is folded into the convolutions");
  const torch::Tensor b = c.bias;  // zeros for a convolution without bias
  const torch::Tensor rsqrt = torch::rsqrt(bn->running_var + bn->options.eps());
  c.weight = (w * (bn->weight * rsqrt).reshape({-1, 1, 1, 1})).contiguous();
  c.bias = (b - bn->running_mean) * rsqrt * bn->weight + bn->bias;
  return c;
}

Int8Plan read_plan(BackboneImpl& model) {
  GRAFT_CHECK(is_resnet(model), "--precision int8: this backbone has no int8 path (only the ResNet family)");
  Int8Plan p;
  p.stem = fold(*child(model, "conv1"), *child(model, "bn1"), "conv1", true);
  p.max_pool = child(model, "conv1")->as<nn::Conv2d>()->options.kernel_size()->at(0) == 7;
  for (int stage = 1;; ++stage) {
    auto layer = child(model, "layer" + std::to_string(stage));
    if (!layer) break;
    for (const auto& item : layer->named_children()) {
      const nn::Module& block = *item.value();
      Int8Block b;
      b.name = "layer" + std::to_string(stage) + "." + item.key();
      for (int k = 1;; ++k) {
        auto conv = child(block, "conv" + std::to_string(k));
        if (!conv) break;
        auto bn = child(block, "bn" + std::to_string(k));
        GRAFT_CHECK(bn, "--precision int8: block '", b.name, "' has conv", k, " but no bn", k);
        b.convs.push_back(fold(*conv, *bn, b.name + ".conv" + std::to_string(k), true));
      }
      GRAFT_CHECK(!b.convs.empty(), "--precision int8: '", b.name, "' is not a residual block");
      b.convs.back().relu = false;
      if (auto ds = child(block, "downsample")) {
        b.has_downsample = true;
        b.downsample = fold(*child(*ds, "0"), *child(*ds, "1"), b.name + ".downsample", false);
      } else {
        const int64_t in = b.convs.front().weight.size(1), out = b.convs.back().weight.size(0);
        b.subsample = b.convs.front().stride;
        if (in != out) {
          GRAFT_CHECK(out > in && (out - in) % 2 == 0, "--precision int8: block '", b.name, "' maps ", in,
                      " channels to ", out, " without a downsample");
          b.pad = (out - in) / 2;
        }
      }
      p.blocks.push_back(std::move(b));
    }
  }
  GRAFT_CHECK(!p.blocks.empty(), "--precision int8: the backbone has no residual blocks");
  p.head = linear_head(model);
  return p;
}

// ---- float forward with observers (calibration) ----

struct MinMax {
  std::map<std::string, std::pair<float, float>> seen;
  void observe(const std::string& name, const torch::Tensor& x) {
    const float lo = x.min().item<float>(), hi = x.max().item<float>();
    auto it = seen.find(name);
    if (it == seen.end()) {
      seen[name] = {lo, hi};
    } else {
      it->second.first = std::min(it->second.first, lo);
      it->second.second = std::max(it->second.second, hi);
    }
  }
};

torch::Tensor float_conv(const Int8Conv& c, const torch::Tensor& x) {
  torch::Tensor y = torch::conv2d(x, c.weight, c.bias, c.stride, c.padding);
  return c.relu ? torch::relu(y) : y;
}

torch::Tensor option_a(const Int8Block& b, const torch::Tensor& x) {
  torch::Tensor s = x.index({Slice(), Slice(), Slice(None, None, b.subsample), Slice(None, None, b.subsample)});
  return torch::constant_pad_nd(s, {0, 0, 0, 0, b.pad, b.pad}, 0);
}

void observe_plan(const Int8Plan& p, const torch::Tensor& input, MinMax& obs) {
  obs.observe("input", input);
  torch::Tensor x = float_conv(p.stem, input);
  obs.observe(p.stem.name, x);
  if (p.max_pool) x = torch::max_pool2d(x, {3, 3}, {2, 2}, {1, 1}, {1, 1});
  for (const auto& b : p.blocks) {
    torch::Tensor out = x;
    for (const auto& c : b.convs) {
      out = float_conv(c, out);
      obs.observe(c.name, out);
    }
    torch::Tensor shortcut = x;
    if (b.has_downsample) {
      shortcut = float_conv(b.downsample, x);
      obs.observe(b.downsample.name, shortcut);
    } else if (b.pad > 0 || b.subsample > 1) {
      shortcut = option_a(b, x);
      obs.observe(b.name + ".shortcut", shortcut);
    }
    x = torch::relu(out + shortcut);
    obs.observe(b.name, x);
  }
  if (p.head) {
    const torch::Tensor f = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    obs.observe(p.head->name, torch::linear(f, p.head->weight, p.head->bias));
  }
}

// ---- the quantised operators, through the dispatcher ----

c10::OperatorHandle op(const char* name, const char* overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
}

c10::IValue call(const c10::OperatorHandle& handle, torch::jit::Stack stack) {
  handle.callBoxed(&stack);
  return std::move(stack.at(0));
}

torch::Tensor quantize_weight(const torch::Tensor& w) {
  const torch::Tensor scales = per_channel_symmetric_scales(w);
  return torch::quantize_per_channel(w, scales.to(torch::kDouble), torch::zeros({w.size(0)}, torch::kLong), 0,
                                     torch::kQInt8);
}

const QuantPoint& point(const Int8Calibration& c, const std::string& name) {
  auto it = c.points.find(name);
  GRAFT_CHECK(it != c.points.end(), "int8 calibration: no quantisation point '", name,
              "' (the calibration was made for another network; calibrate again)");
  return it->second;
}

// quantized::linear_prepack of a Linear's weight, quantised per output
// channel (symmetric int8), with its float bias (or None).
c10::IValue pack_linear(const torch::Tensor& weight, const c10::IValue& bias) {
  static const c10::OperatorHandle prepack = op("quantized::linear_prepack", "");
  return call(prepack, {quantize_weight(weight), bias});
}

// A convolution packed for quantized::conv2d(_relu), its output at its
// calibrated point.
void pack_conv(Int8Conv& c, const Int8Calibration& calibration) {
  c.out = point(calibration, c.name);
  static const c10::OperatorHandle prepack = op("quantized::conv2d_prepack", "");
  const std::vector<int64_t> stride{c.stride, c.stride}, padding{c.padding, c.padding}, dilation{1, 1};
  c.packed = call(prepack, {quantize_weight(c.weight), c.bias, stride, padding, dilation, int64_t{1}});
}

torch::Tensor run_conv(const Int8Conv& c, const torch::Tensor& q) {
  static const c10::OperatorHandle plain = op("quantized::conv2d", "new");
  static const c10::OperatorHandle relu = op("quantized::conv2d_relu", "new");
  return call(c.relu ? relu : plain, {q, c.packed, c.out.scale, c.out.zero_point}).toTensor();
}

// Packs `l` for quantized::linear(_relu), its output at its calibrated point.
void pack_linear_at(Int8Linear& l, const Int8Calibration& calibration) {
  l.out = point(calibration, l.name);
  l.packed = pack_linear(l.weight, l.bias);
}

torch::Tensor run_linear(const Int8Linear& l, const torch::Tensor& q) {
  static const c10::OperatorHandle plain_op = op("quantized::linear", "");
  static const c10::OperatorHandle relu_op = op("quantized::linear_relu", "");
  return call(l.relu ? relu_op : plain_op, {q, l.packed, l.out.scale, l.out.zero_point}).toTensor();
}

// An int8 backbone: its pooled features (still quantised) from pooled(),
// then the classifier slot quantised when it is one Linear, else the
// model's own head in float on the dequantised features.
class PooledInt8 : public Int8Network {
 public:
  torch::Tensor features(const torch::Tensor& x) override { return pooled(x).dequantize().to(torch::kFloat32); }

  torch::Tensor forward(const torch::Tensor& x) override {
    const torch::Tensor q = pooled(x);
    return head_ ? run_linear(*head_, q).dequantize() : model_.classify(q.dequantize());
  }

 protected:
  PooledInt8(BackboneImpl& model, std::optional<Int8Linear> head, const Int8Calibration& calibration)
      : model_(model), head_(std::move(head)) {
    if (head_) pack_linear_at(*head_, calibration);
  }
  virtual torch::Tensor pooled(const torch::Tensor& input) const = 0;

 private:
  BackboneImpl& model_;
  std::optional<Int8Linear> head_;
};

class ResNetInt8 : public PooledInt8 {
 public:
  ResNetInt8(BackboneImpl& model, Int8Plan plan, const Int8Calibration& calibration)
      : PooledInt8(model, plan.head, calibration), p_(std::move(plan)), c_(calibration) {
    pack_conv(p_.stem, c_);
    for (auto& b : p_.blocks) {
      for (auto& conv : b.convs) pack_conv(conv, c_);
      if (b.has_downsample) pack_conv(b.downsample, c_);
      if (!b.has_downsample && (b.pad > 0 || b.subsample > 1)) b.shortcut_q = point(c_, b.name + ".shortcut");
      b.out_q = point(c_, b.name);
    }
    input_q_ = point(c_, "input");
  }

 private:
  // Flattened average-pooled features, still quantised.
  torch::Tensor pooled(const torch::Tensor& input) const override {
    torch::Tensor x =
        torch::quantize_per_tensor(input.to(torch::kFloat32), input_q_.scale, input_q_.zero_point, torch::kQUInt8);
    x = run_conv(p_.stem, x);
    if (p_.max_pool) x = torch::max_pool2d(x, {3, 3}, {2, 2}, {1, 1}, {1, 1});
    static const c10::OperatorHandle add_relu = op("quantized::add_relu", "");
    for (const auto& b : p_.blocks) {
      torch::Tensor out = x;
      for (const auto& c : b.convs) out = run_conv(c, out);
      torch::Tensor shortcut = x;
      if (b.has_downsample) {
        shortcut = run_conv(b.downsample, x);
      } else if (b.pad > 0 || b.subsample > 1) {
        shortcut = torch::quantize_per_tensor(option_a(b, x.dequantize()), b.shortcut_q.scale,
                                              b.shortcut_q.zero_point, torch::kQUInt8);
      }
      x = call(add_relu, {out, shortcut, b.out_q.scale, b.out_q.zero_point}).toTensor();
    }
    return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  }

  Int8Plan p_;
  Int8Calibration c_;
  QuantPoint input_q_;  // resolved once: no name lookups per forward
};

// ---- AlexNet and VGG: convolutions and max pools, an adaptive average pool,
// two Linear+ReLU, the classifier slot ----

bool is_plain_net(const nn::Module& m) {
  auto features = child(m, "features"), avgpool = child(m, "avgpool"), classifier = child(m, "classifier");
  return features && avgpool && classifier && features->as<nn::Sequential>() &&
         avgpool->as<nn::AdaptiveAvgPool2d>();
}

struct PlainLayer {
  bool max_pool = false;
  Int8Conv conv;                               // when not a pool
  int64_t kernel = 0, stride = 0, padding = 0;  // when a pool
  bool ceil_mode = false;
};

struct PlainPlan {
  std::vector<PlainLayer> layers;
  std::vector<int64_t> pool_size;  // the adaptive average pool's output
  std::vector<Int8Linear> fcs;     // fc6, fc7 (each with its ReLU)
  std::optional<Int8Linear> head;  // the classifier slot, when one Linear
};


// The point names are the modules' (FX's fused modules keep them):
// "features.0", "classifier.1", ... and the classifier slot's.
PlainPlan read_plain_plan(BackboneImpl& model) {
  PlainPlan p;
  const auto features = child(model, "features")->as<nn::Sequential>();
  std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>> items;
  for (const auto& item : features->named_children()) items.emplace_back(item.key(), item.value());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string name = "features." + items[i].first;
    const nn::Module& m = *items[i].second;
    if (const auto* pool = m.as<nn::MaxPool2d>()) {
      GRAFT_CHECK(pool->options.dilation()->at(0) == 1, "--precision int8: layer '", name, "' is dilated");
      PlainLayer l;
      l.max_pool = true;
      l.kernel = pool->options.kernel_size()->at(0);
      l.stride = pool->options.stride()->at(0);
      l.padding = pool->options.padding()->at(0);
      l.ceil_mode = pool->options.ceil_mode();
      p.layers.push_back(l);
      continue;
    }
    GRAFT_CHECK(m.as<nn::Conv2d>(), "--precision int8: layer '", name,
                "' is neither a convolution nor a max pool (no int8 path)");
    size_t next = i + 1;
    const bool bn = next < items.size() && items[next].second->as<FoldableBatchNorm2d>();
    if (bn) ++next;
    GRAFT_CHECK(next < items.size() && items[next].second->as<nn::ReLU>(), "--precision int8: convolution '",
                name, "' is not followed by a ReLU (no int8 path)");
    PlainLayer l;
    l.conv = bn ? fold(m, *items[i + 1].second, name, true) : plain(m, name, true);
    p.layers.push_back(std::move(l));
    i = next;
  }
  const auto* avgpool = child(model, "avgpool")->as<nn::AdaptiveAvgPool2d>();
  p.pool_size = {avgpool->options.output_size()->at(0).value(), avgpool->options.output_size()->at(1).value()};
  const auto classifier = child(model, "classifier");
  for (const auto& item : classifier->named_children()) {
    const std::string name = "classifier." + item.key();
    if (name == model.classifier_name()) continue;
    if (item.value()->as<nn::Linear>()) p.fcs.push_back(linear_of(*item.value(), name, true));
    else GRAFT_CHECK(item.value()->as<nn::ReLU>() || item.value()->as<nn::Dropout>(), "--precision int8: layer '",
                     name, "' has no int8 path");
  }
  GRAFT_CHECK(!p.layers.empty() && !p.fcs.empty(), "--precision int8: the backbone has no convolutions or fc layers");
  p.head = linear_head(model);
  return p;
}

torch::Tensor max_pool(const PlainLayer& l, const torch::Tensor& x) {
  return torch::max_pool2d(x, {l.kernel, l.kernel}, {l.stride, l.stride}, {l.padding, l.padding}, {1, 1},
                           l.ceil_mode);
}

void observe_plain(const PlainPlan& p, const torch::Tensor& input, MinMax& obs) {
  obs.observe("input", input);
  torch::Tensor x = input;
  for (const auto& l : p.layers) {
    if (l.max_pool) {
      x = max_pool(l, x);
    } else {
      x = float_conv(l.conv, x);
      obs.observe(l.conv.name, x);
    }
  }
  x = torch::adaptive_avg_pool2d(x, p.pool_size).flatten(1);
  for (const auto& fc : p.fcs) {
    x = torch::relu(torch::linear(x, fc.weight, fc.bias));
    obs.observe(fc.name, x);
  }
  if (p.head) obs.observe(p.head->name, torch::linear(x, p.head->weight, p.head->bias));
}

class PlainInt8 : public PooledInt8 {
 public:
  PlainInt8(BackboneImpl& model, PlainPlan plan, const Int8Calibration& calibration)
      : PooledInt8(model, plan.head, calibration), p_(std::move(plan)) {
    input_q_ = point(calibration, "input");
    for (auto& l : p_.layers)
      if (!l.max_pool) pack_conv(l.conv, calibration);
    for (auto& fc : p_.fcs) pack_linear_at(fc, calibration);
  }

 private:
  // fc7's output, still quantised.
  torch::Tensor pooled(const torch::Tensor& input) const override {
    torch::Tensor x =
        torch::quantize_per_tensor(input.to(torch::kFloat32), input_q_.scale, input_q_.zero_point, torch::kQUInt8);
    for (const auto& l : p_.layers) x = l.max_pool ? max_pool(l, x) : run_conv(l.conv, x);
    x = torch::adaptive_avg_pool2d(x, p_.pool_size).flatten(1);
    for (const auto& fc : p_.fcs) x = run_linear(fc, x);
    return x;
  }

  PlainPlan p_;
  QuantPoint input_q_;
};

// ---- GoogLeNet (torchvision's, without the auxiliary classifiers) ----
//
// Points as FX places them: with transform_input each input channel on its
// own ("input.0", "input.1", "input.2": FX slices them, then runs the
// per-channel scale and shift as quantized::mul/add with scalars and
// concatenates), else "input"; each BasicConv2d (conv+BN+ReLU) by its
// convolution's module ("conv1.conv", "inception3a.branch2.0.conv"); the
// four branch outputs of an inception block share one point with their
// concatenation, named by the block ("inception3a"), so the concatenation
// needs no requantisation; the classifier's output. The max pools (ceil
// mode) and the average pool keep their input's scale.

struct InceptionPlan {
  std::string name;
  Int8Conv branch1, branch2_0, branch2_1, branch3_0, branch3_1, branch4;
};

struct GoogLeNetPlan {
  bool transform_input = false;
  Int8Conv conv1, conv2, conv3;
  std::vector<InceptionPlan> stage3, stage4, stage5;
  std::optional<Int8Linear> head;  // the classifier slot, when one Linear
};

// torchvision's _transform_input, per channel: x_c * scale_c + shift_c with
// the constants computed in double as Python does.
constexpr double kGoogLeNetScale[3] = {0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5};
constexpr double kGoogLeNetShift[3] = {(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5};

Int8Conv basic_conv(const nn::Module& parent, const std::string& path, const std::string& point) {
  std::shared_ptr<nn::Module> m;
  for (const auto& item : parent.named_modules())
    if (item.key() == path) m = item.value();
  GRAFT_CHECK(m && child(*m, "conv") && child(*m, "bn"), "--precision int8: layer '", path,
              "' is not a convolution with BatchNorm (no int8 path)");
  return fold(*child(*m, "conv"), *child(*m, "bn"), point, true);
}

// Reads a convolution's stride and padding as they are: GoogLeNet's 7x7
// stem has padding 3, its 3x3s padding 1.
GoogLeNetPlan read_googlenet_plan(BackboneImpl& model) {
  GoogLeNetPlan p;
  p.transform_input = googlenet_transforms_input(model);
  p.conv1 = basic_conv(model, "conv1", "conv1.conv");
  p.conv2 = basic_conv(model, "conv2", "conv2.conv");
  p.conv3 = basic_conv(model, "conv3", "conv3.conv");
  auto inception = [&](const std::string& name) {
    InceptionPlan i;
    i.name = name;
    i.branch1 = basic_conv(model, name + ".branch1", name);
    i.branch2_0 = basic_conv(model, name + ".branch2.0", name + ".branch2.0.conv");
    i.branch2_1 = basic_conv(model, name + ".branch2.1", name);
    i.branch3_0 = basic_conv(model, name + ".branch3.0", name + ".branch3.0.conv");
    i.branch3_1 = basic_conv(model, name + ".branch3.1", name);
    i.branch4 = basic_conv(model, name + ".branch4.1", name);
    return i;
  };
  for (const char* n : {"3a", "3b"}) p.stage3.push_back(inception(std::string("inception") + n));
  for (const char* n : {"4a", "4b", "4c", "4d", "4e"}) p.stage4.push_back(inception(std::string("inception") + n));
  for (const char* n : {"5a", "5b"}) p.stage5.push_back(inception(std::string("inception") + n));
  p.head = linear_head(model);
  return p;
}

torch::Tensor ceil_max_pool(const torch::Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0) {
  return torch::max_pool2d(x, {kernel, kernel}, {stride, stride}, {padding, padding}, {1, 1}, /*ceil_mode=*/true);
}

// The network's trunk up to the pooled features, with `conv` running one
// convolution and `input` turning the input into the first convolution's,
// in float (calibration) or int8.
template <typename Conv>
torch::Tensor googlenet_trunk(const GoogLeNetPlan& p, torch::Tensor x, const Conv& conv) {
  x = ceil_max_pool(conv(p.conv1, x), 3, 2);
  x = ceil_max_pool(conv(p.conv3, conv(p.conv2, x)), 3, 2);
  auto run = [&](const std::vector<InceptionPlan>& stage, torch::Tensor in) {
    for (const auto& i : stage) {
      in = torch::cat({conv(i.branch1, in), conv(i.branch2_1, conv(i.branch2_0, in)),
                       conv(i.branch3_1, conv(i.branch3_0, in)), conv(i.branch4, ceil_max_pool(in, 3, 1, 1))},
                      1);
    }
    return in;
  };
  x = ceil_max_pool(run(p.stage3, x), 3, 2);
  x = ceil_max_pool(run(p.stage4, x), 2, 2);
  x = run(p.stage5, x);
  return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
}

void observe_googlenet(const GoogLeNetPlan& p, const torch::Tensor& input, MinMax& obs) {
  torch::Tensor x = input;
  if (p.transform_input) {
    std::vector<torch::Tensor> channels;
    for (int64_t c = 0; c < 3; ++c) {
      const torch::Tensor xc = x.select(1, c);
      obs.observe("input." + std::to_string(c), xc);
      channels.push_back(xc.unsqueeze(1) * kGoogLeNetScale[c] + kGoogLeNetShift[c]);
    }
    x = torch::cat(channels, 1);
  } else {
    obs.observe("input", x);
  }
  const torch::Tensor pooled = googlenet_trunk(p, x, [&](const Int8Conv& c, const torch::Tensor& in) {
    torch::Tensor out = float_conv(c, in);
    obs.observe(c.name, out);
    return out;
  });
  if (p.head) obs.observe(p.head->name, torch::linear(pooled, p.head->weight, p.head->bias));
}

class GoogLeNetInt8 : public PooledInt8 {
 public:
  GoogLeNetInt8(BackboneImpl& model, GoogLeNetPlan plan, const Int8Calibration& calibration)
      : PooledInt8(model, plan.head, calibration), p_(std::move(plan)) {
    if (p_.transform_input) {
      for (int c = 0; c < 3; ++c) inputs_.push_back(point(calibration, "input." + std::to_string(c)));
    } else {
      inputs_.push_back(point(calibration, "input"));
    }
    for (Int8Conv* c : {&p_.conv1, &p_.conv2, &p_.conv3}) pack_conv(*c, calibration);
    for (auto* stage : {&p_.stage3, &p_.stage4, &p_.stage5})
      for (auto& i : *stage)
        for (Int8Conv* c : {&i.branch1, &i.branch2_0, &i.branch2_1, &i.branch3_0, &i.branch3_1, &i.branch4})
          pack_conv(*c, calibration);
  }

 private:
  torch::Tensor pooled(const torch::Tensor& input) const override {
    const torch::Tensor x = input.to(torch::kFloat32);
    torch::Tensor q;
    if (p_.transform_input) {
      // FX's graph of _transform_input: each channel quantised, then
      // quantized::mul and quantized::add with the scalars, concatenated.
      static const c10::OperatorHandle mul = op("quantized::mul", "Scalar");
      static const c10::OperatorHandle add = op("quantized::add", "Scalar");
      std::vector<torch::Tensor> channels;
      for (int64_t c = 0; c < 3; ++c) {
        torch::Tensor qc = torch::quantize_per_tensor(x.select(1, c).contiguous(), inputs_[c].scale,
                                                      inputs_[c].zero_point, torch::kQUInt8)
                               .unsqueeze(1);
        qc = call(mul, {qc, c10::Scalar(kGoogLeNetScale[c])}).toTensor();
        channels.push_back(call(add, {qc, c10::Scalar(kGoogLeNetShift[c])}).toTensor());
      }
      q = torch::cat(channels, 1);
    } else {
      q = torch::quantize_per_tensor(x, inputs_[0].scale, inputs_[0].zero_point, torch::kQUInt8);
    }
    return googlenet_trunk(p_, q, [](const Int8Conv& c, const torch::Tensor& in) { return run_conv(c, in); });
  }

  GoogLeNetPlan p_;
  std::vector<QuantPoint> inputs_;
};

// ---- face-api's face embedder: the dlib-style ResNet (src/face/nets.cpp) ----
//
// The points, as FX places them on tests/reference/face_int8_fixtures.py's
// port: "input" (after the normalisation), each convolution by its face-api
// prefix, each block's add+ReLU by the block's name, and in a down block the
// zero-padded tensors, which FX computes in float and quantises again:
// "<block>/shortcut" (the pooled shortcut with zero channels appended) and
// "<block>/padded" (the convolution's output with a zero row and column
// appended where it comes out one smaller than the pool); "fc".

struct FaceBlockPlan {
  std::string name;
  Int8Conv conv1, conv2;
  bool down = false;
  int64_t extra_channels = 0;  // zero channels appended to a down block's shortcut
  QuantPoint out_q, shortcut_q, padded_q;
  bool has_padded = false;  // the calibration saw the padded output
};

struct FacePlan {
  Int8Conv stem;
  std::vector<FaceBlockPlan> blocks;
  torch::Tensor fc_weight;  // [128, 256]: nn.Linear's layout of fc
  c10::IValue fc_packed;
  QuantPoint fc_q;
};

Int8Conv face_conv(const FaceEmbedderImpl& net, const std::string& prefix, int64_t stride, bool relu) {
  auto [weight, bias] = net.folded(prefix);
  Int8Conv c;
  c.name = prefix;
  c.weight = weight.contiguous();
  c.bias = bias;
  c.stride = stride;
  c.padding = stride == 1 ? weight.size(2) / 2 : 0;  // TF "same" at stride 1, "valid" at stride 2
  c.relu = relu;
  return c;
}

FacePlan read_face_plan(const FaceEmbedderImpl& net) {
  FacePlan p;
  p.stem = face_conv(net, "conv32_down", 2, true);
  for (const auto& b : FaceEmbedderImpl::blocks()) {
    FaceBlockPlan f;
    f.name = b.name;
    f.down = b.down;
    f.extra_channels = b.out - b.in;
    f.conv1 = face_conv(net, f.name + "/conv1", b.down ? 2 : 1, true);
    f.conv2 = face_conv(net, f.name + "/conv2", 1, false);
    p.blocks.push_back(std::move(f));
  }
  torch::NoGradGuard no_grad;
  p.fc_weight = net.fc().detach().t().contiguous();
  return p;
}

// A down block's zero padding: `rows` bottom rows and right columns, or
// `channels` channels after the last.
torch::Tensor pad_zeros(const torch::Tensor& x, int64_t rows, int64_t channels) {
  return torch::constant_pad_nd(x, {0, rows, 0, rows, 0, channels}, 0);
}

void observe_face(const FacePlan& p, const torch::Tensor& input, MinMax& obs) {
  torch::Tensor x = face_net_normalise(input.to(torch::kFloat32));
  obs.observe("input", x);
  x = float_conv(p.stem, x);
  obs.observe(p.stem.name, x);
  x = torch::max_pool2d(x, {3, 3}, {2, 2}, {0, 0}, {1, 1});
  for (const auto& b : p.blocks) {
    torch::Tensor out = float_conv(b.conv1, x);
    obs.observe(b.conv1.name, out);
    out = float_conv(b.conv2, out);
    obs.observe(b.conv2.name, out);
    torch::Tensor shortcut = x;
    if (b.down) {
      shortcut = torch::avg_pool2d(x, {2, 2}, {2, 2});
      const int64_t rows = shortcut.size(2) - out.size(2);
      if (rows > 0) {
        out = pad_zeros(out, rows, 0);
        obs.observe(b.name + "/padded", out);
      }
      if (b.extra_channels > 0) {
        shortcut = pad_zeros(shortcut, 0, b.extra_channels);
        obs.observe(b.name + "/shortcut", shortcut);
      }
    }
    x = torch::relu(out + shortcut);
    obs.observe(b.name, x);
  }
  obs.observe("fc", torch::linear(x.mean({2, 3}), p.fc_weight));
}

class FaceInt8 : public Int8Network {
 public:
  FaceInt8(FacePlan plan, const Int8Calibration& calibration) : p_(std::move(plan)) {
    input_q_ = point(calibration, "input");
    pack_conv(p_.stem, calibration);
    for (auto& b : p_.blocks) {
      pack_conv(b.conv1, calibration);
      pack_conv(b.conv2, calibration);
      b.out_q = point(calibration, b.name);
      if (b.down && b.extra_channels > 0) b.shortcut_q = point(calibration, b.name + "/shortcut");
      b.has_padded = calibration.points.count(b.name + "/padded") > 0;
      if (b.has_padded) b.padded_q = point(calibration, b.name + "/padded");
    }
    p_.fc_q = point(calibration, "fc");
    p_.fc_packed = pack_linear(p_.fc_weight, c10::IValue());
  }

  // The mean-pooled map, dequantised: [N, 256].
  torch::Tensor features(const torch::Tensor& x) override { return pooled(x).dequantize().to(torch::kFloat32); }

  // The descriptors, not normalised: [N, 128].
  torch::Tensor forward(const torch::Tensor& x) override {
    static const c10::OperatorHandle linear = op("quantized::linear", "");
    return call(linear, {pooled(x), p_.fc_packed, p_.fc_q.scale, p_.fc_q.zero_point}).toTensor().dequantize();
  }

 private:
  static torch::Tensor requantize(const torch::Tensor& padded_float, const QuantPoint& q) {
    return torch::quantize_per_tensor(padded_float, q.scale, q.zero_point, torch::kQUInt8);
  }

  torch::Tensor pooled(const torch::Tensor& input) const {
    GRAFT_CHECK(input.dim() == 4 && input.size(1) == 3 && input.size(2) == 150 && input.size(3) == 150,
                "face embedder (int8): input has shape ", input.sizes(), ", expected [N, 3, 150, 150]");
    torch::Tensor x = requantize(face_net_normalise(input.to(torch::kFloat32)), input_q_);
    x = run_conv(p_.stem, x);
    x = torch::max_pool2d(x, {3, 3}, {2, 2}, {0, 0}, {1, 1});
    static const c10::OperatorHandle add_relu = op("quantized::add_relu", "");
    for (const auto& b : p_.blocks) {
      torch::Tensor out = run_conv(b.conv2, run_conv(b.conv1, x));
      if (!b.down) {
        x = call(add_relu, {out, x, b.out_q.scale, b.out_q.zero_point}).toTensor();
        continue;
      }
      torch::Tensor shortcut = torch::avg_pool2d(x, {2, 2}, {2, 2});
      const int64_t rows = shortcut.size(2) - out.size(2);
      if (rows > 0) {
        GRAFT_CHECK(b.has_padded, "int8 calibration: no quantisation point '", b.name,
                    "/padded' (the calibration was made for another network; calibrate again)");
        out = requantize(pad_zeros(out.dequantize(), rows, 0), b.padded_q);
      }
      if (b.extra_channels > 0)
        shortcut = requantize(pad_zeros(shortcut.dequantize(), 0, b.extra_channels), b.shortcut_q);
      // FX's argument order: the shortcut first.
      x = call(add_relu, {shortcut, out, b.out_q.scale, b.out_q.zero_point}).toTensor();
    }
    return x.mean({2, 3});
  }

  FacePlan p_;
  QuantPoint input_q_;
};

void use_onednn() {
  auto& ctx = at::globalContext();
  const auto engines = ctx.supportedQEngines();
  GRAFT_CHECK(std::find(engines.begin(), engines.end(), at::QEngine::ONEDNN) != engines.end(),
              "--precision int8: this LibTorch has no onednn quantised engine");
  if (ctx.qEngine() != at::QEngine::ONEDNN) ctx.setQEngine(at::QEngine::ONEDNN);
}

}  // namespace

QuantPoint minmax_qparams(float min, float max) {
  // MinMaxObserver._calculate_qparams for quint8 [0, 255], per tensor affine,
  // in float32 tensors as there.
  const torch::Tensor lo = torch::minimum(torch::tensor(min), torch::zeros({}));
  const torch::Tensor hi = torch::maximum(torch::tensor(max), torch::zeros({}));
  torch::Tensor scale = (hi - lo) / 255.0;
  scale = torch::maximum(scale, torch::tensor(std::numeric_limits<float>::epsilon()));
  torch::Tensor zp = 0 - torch::round(lo / scale).to(torch::kInt);
  zp = torch::clamp(zp, 0, 255);
  QuantPoint q;
  q.min = min;
  q.max = max;
  q.scale = scale.item<float>();
  q.zero_point = zp.item<int64_t>();
  return q;
}

torch::Tensor per_channel_symmetric_scales(const torch::Tensor& weight) {
  torch::NoGradGuard no_grad;
  const torch::Tensor flat = weight.detach().reshape({weight.size(0), -1}).to(torch::kFloat32);
  const torch::Tensor lo = torch::minimum(std::get<0>(flat.min(1)), torch::zeros({}));
  const torch::Tensor hi = torch::maximum(std::get<0>(flat.max(1)), torch::zeros({}));
  torch::Tensor scale = torch::maximum(-lo, hi) / (255.0 / 2);
  return torch::maximum(scale, torch::tensor(std::numeric_limits<float>::epsilon()));
}

nlohmann::ordered_json to_json(const Int8Calibration& c) {
  nlohmann::ordered_json j;
  j["observer"] = c.observer;
  j["images"] = c.images;
  nlohmann::ordered_json points = nlohmann::ordered_json::object();
  for (const auto& [name, q] : c.points)
    points[name] = {{"min", q.min}, {"max", q.max}, {"scale", q.scale}, {"zero_point", q.zero_point}};
  j["points"] = points;
  return j;
}

Int8Calibration int8_calibration_from_json(const nlohmann::json& j, const std::string& source) {
  GRAFT_CHECK(j.is_object() && j.contains("points") && j["points"].is_object() && j.contains("images") &&
                  j["images"].is_number_integer(),
              source, ": not an int8 calibration (expected an object with \"points\" and \"images\")");
  Int8Calibration c;
  c.images = j["images"].get<int64_t>();
  c.observer = j.value("observer", "minmax");
  GRAFT_CHECK(c.observer == "minmax", source, ": observer '", c.observer, "' (expected minmax)");
  const nlohmann::json& points = j["points"];
  for (auto it = points.begin(); it != points.end(); ++it) {
    const nlohmann::json& v = it.value();
    GRAFT_CHECK(v.is_object() && v.contains("min") && v.contains("max") && v["min"].is_number() &&
                    v["max"].is_number(),
                source, ": point '", it.key(), "' has no numeric min and max");
    // The affine parameters are recomputed from the range, so an edited
    // scale cannot disagree with it.
    c.points[it.key()] = minmax_qparams(v["min"].get<float>(), v["max"].get<float>());
  }
  return c;
}

void check_int8_supported(BackboneImpl& model, const std::string& backbone_name) {
  GRAFT_CHECK_USAGE(is_resnet(model) || is_plain_net(model) || is_googlenet(model), "--precision int8: backbone '",
                    backbone_name, "' has no int8 path yet (these have: resnet18, resnet34, resnet50, resnet20, "
                    "resnet32, resnet44, resnet56, alexnet, vgg11, vgg11_bn, vgg16, vgg16_bn, googlenet)");
  // names the layer that does not fit
  if (is_resnet(model)) (void)read_plan(model);
  else if (is_googlenet(model)) (void)read_googlenet_plan(model);
  else (void)read_plain_plan(model);
}

Int8Calibration calibrate_int8(BackboneImpl& model, const std::vector<torch::Tensor>& batches) {
  GRAFT_CHECK(!batches.empty(), "int8 calibration: no images");
  torch::InferenceMode guard;
  MinMax obs;
  Int8Calibration c;
  if (is_googlenet(model)) {
    const GoogLeNetPlan plan = read_googlenet_plan(model);
    for (const auto& b : batches) {
      observe_googlenet(plan, b.to(torch::kFloat32), obs);
      c.images += b.size(0);
    }
  } else if (is_plain_net(model)) {
    const PlainPlan plan = read_plain_plan(model);
    for (const auto& b : batches) {
      observe_plain(plan, b.to(torch::kFloat32), obs);
      c.images += b.size(0);
    }
  } else {
    const Int8Plan plan = read_plan(model);
    for (const auto& b : batches) {
      observe_plan(plan, b.to(torch::kFloat32), obs);
      c.images += b.size(0);
    }
  }
  for (const auto& [name, range] : obs.seen) c.points[name] = minmax_qparams(range.first, range.second);
  return c;
}

std::shared_ptr<Int8Network> build_int8(BackboneImpl& model, const Int8Calibration& calibration) {
  use_onednn();
  torch::InferenceMode guard;
  if (is_googlenet(model)) return std::make_shared<GoogLeNetInt8>(model, read_googlenet_plan(model), calibration);
  if (is_plain_net(model)) return std::make_shared<PlainInt8>(model, read_plain_plan(model), calibration);
  return std::make_shared<ResNetInt8>(model, read_plan(model), calibration);
}

Int8Calibration calibrate_face_int8(const FaceEmbedderImpl& net, const std::vector<torch::Tensor>& batches) {
  GRAFT_CHECK(!batches.empty(), "int8 calibration: no face chips");
  torch::InferenceMode guard;
  const FacePlan plan = read_face_plan(net);
  MinMax obs;
  Int8Calibration c;
  for (const auto& b : batches) {
    observe_face(plan, b, obs);
    c.images += b.size(0);
  }
  for (const auto& [name, range] : obs.seen) c.points[name] = minmax_qparams(range.first, range.second);
  return c;
}

std::shared_ptr<Int8Network> build_face_int8(const FaceEmbedderImpl& net, const Int8Calibration& calibration) {
  use_onednn();
  torch::InferenceMode guard;
  return std::make_shared<FaceInt8>(read_face_plan(net), calibration);
}

c10::IValue prepack_dynamic_linear(const torch::Tensor& weight, const torch::Tensor& bias) {
  use_onednn();
  torch::NoGradGuard no_grad;
  return pack_linear(weight.detach().to(torch::kFloat32).contiguous(),
                     bias.defined() ? c10::IValue(bias.detach().to(torch::kFloat32)) : c10::IValue());
}

torch::Tensor dynamic_linear(const torch::Tensor& x, const c10::IValue& packed) {
  static const c10::OperatorHandle linear = op("quantized::linear_dynamic", "");
  return call(linear, {x.to(torch::kFloat32).contiguous(), packed, true}).toTensor();
}

bool flags_have_vnni(const std::string& flags) {
  return flags_have_any(flags, {"avx512_vnni", "avx_vnni", "amx_int8"});
}

bool cpu_has_vnni() { return flags_have_vnni(cpu_flags()); }

}  // namespace graft
