#include "graft/models/registry.h"

#include <ATen/record_function.h>

#include <cstring>

#include "graft/core/error.h"
#include "graft/models/families.h"

namespace graft {
namespace {

InputSpec imagenet_input() { return InputSpec{}; }

InputSpec cifar_input() {
  InputSpec spec;
  spec.size = 32;
  spec.resize = 32;
  return spec;
}

BackboneSpec imagenet_row(std::string name, std::string family, std::string description,
                          int64_t feature_dim, std::function<Backbone(int64_t)> make) {
  BackboneSpec row;
  row.name = std::move(name);
  row.family = std::move(family);
  row.description = std::move(description);
  row.feature_dim = feature_dim;
  row.source_classes = 1000;
  row.input = imagenet_input();
  row.make = std::move(make);
  return row;
}

// As googlenet(weights=IMAGENET1K_V1) builds it: transform_input, whether or
// not the run starts from those weights (one network per row). The input
// spec stays ImageNet's mean/std; the network converts.
BackboneSpec googlenet_row() {
  BackboneSpec row = imagenet_row(
      "googlenet", "googlenet", "GoogLeNet / Inception v1 (torchvision, no aux heads, transform_input)",
      1024, [](int64_t n) { return make_googlenet(n, /*transform_input=*/true); });
  row.transform_input = true;
  return row;
}

BackboneSpec cifar_row(int depth) {
  BackboneSpec row;
  row.name = "resnet" + std::to_string(depth);
  row.family = "cifar_resnet";
  row.description = "CIFAR-10 ResNet-" + std::to_string(depth) + " (He et al. 2016), 32x32 input";
  row.feature_dim = 64;
  row.source_classes = 10;
  row.input = cifar_input();
  row.make = [depth](int64_t n) { return make_cifar_resnet(depth, n); };
  return row;
}

}  // namespace

const std::vector<BackboneSpec>& backbone_registry() {
  static const std::vector<BackboneSpec> rows = {
      imagenet_row("resnet18", "resnet", "ResNet-18 (torchvision)", 512,
                   [](int64_t n) { return make_resnet(18, n); }),
      imagenet_row("resnet34", "resnet", "ResNet-34 (torchvision)", 512,
                   [](int64_t n) { return make_resnet(34, n); }),
      imagenet_row("resnet50", "resnet", "ResNet-50 v1.5 (torchvision)", 2048,
                   [](int64_t n) { return make_resnet(50, n); }),
      imagenet_row("alexnet", "alexnet", "AlexNet (torchvision)", 4096,
                   [](int64_t n) { return make_alexnet(n); }),
      imagenet_row("vgg11", "vgg", "VGG-11 (torchvision)", 4096,
                   [](int64_t n) { return make_vgg(11, false, n); }),
      imagenet_row("vgg11_bn", "vgg", "VGG-11 with BatchNorm (torchvision)", 4096,
                   [](int64_t n) { return make_vgg(11, true, n); }),
      imagenet_row("vgg16", "vgg", "VGG-16 (torchvision)", 4096,
                   [](int64_t n) { return make_vgg(16, false, n); }),
      imagenet_row("vgg16_bn", "vgg", "VGG-16 with BatchNorm (torchvision)", 4096,
                   [](int64_t n) { return make_vgg(16, true, n); }),
      googlenet_row(),
      cifar_row(20),
      cifar_row(32),
      cifar_row(44),
      cifar_row(56),
  };
  return rows;
}

const BackboneSpec& find_backbone(const std::string& name) {
  for (const auto& row : backbone_registry())
    if (row.name == name) return row;
  throw UsageError(str_cat("--backbone: unknown backbone '", name,
                           "' (expected one of: ", backbone_names(), ")"));
}

Backbone make_backbone(const BackboneSpec& row, int64_t num_classes, bool transform_input) {
  if (transform_input == row.transform_input) return row.make(num_classes);
  GRAFT_CHECK(row.family == "googlenet", row.name, " has no transform_input");
  return make_googlenet(num_classes, transform_input);
}

std::string backbone_key(const std::string& name, bool transform_input) {
  return transform_input ? name + "+transform_input" : name;
}

std::string backbone_names() {
  std::string out;
  for (const auto& row : backbone_registry()) out += (out.empty() ? "" : ", ") + row.name;
  return out;
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

namespace {

// RecordFunction callbacks are plain function pointers, so the count lives in
// thread-local state; the callbacks are thread-local too, so work on other
// threads is not counted.
thread_local int64_t tls_macs = 0;
thread_local int tls_depth = 0;  // nesting of counted ops (linear -> addmm)

bool is_counted(const char* name) {
  static const char* const kOps[] = {"aten::convolution", "aten::_convolution", "aten::linear",
                                     "aten::addmm",       "aten::mm",           "aten::bmm"};
  for (const char* op : kOps)
    if (std::strcmp(name, op) == 0) return true;
  return false;
}

std::vector<int64_t> int_list(const c10::IValue& v) {
  return v.isIntList() ? v.toIntVector() : std::vector<int64_t>{};
}

int64_t convolution_macs(c10::ArrayRef<const c10::IValue> in) {
  // (input, weight, bias, stride, padding, dilation, transposed, ...)
  if (in.size() < 7 || !in[0].isTensor() || !in[1].isTensor()) return 0;
  const auto x = in[0].toTensor().sizes();
  const auto w = in[1].toTensor().sizes();
  const int64_t spatial = static_cast<int64_t>(w.size()) - 2;
  if (spatial < 1 || static_cast<int64_t>(x.size()) != spatial + 2) return 0;
  const bool transposed = in[6].isBool() && in[6].toBool();
  const auto stride = int_list(in[3]), padding = int_list(in[4]), dilation = int_list(in[5]);
  auto at = [](const std::vector<int64_t>& v, int64_t i, int64_t dflt) {
    return v.empty() ? dflt : v[std::min<size_t>(i, v.size() - 1)];
  };
  // Each output position of a convolution (each input position of a
  // transposed one) costs one MAC per weight element.
  int64_t positions = x[0];
  for (int64_t d = 0; d < spatial; ++d) {
    const int64_t size = x[2 + d];
    positions *= transposed ? size
                            : (size + 2 * at(padding, d, 0) - at(dilation, d, 1) * (w[2 + d] - 1) -
                               1) / at(stride, d, 1) +
                                  1;
  }
  int64_t weights = 1;
  for (int64_t s : w) weights *= s;
  return positions * weights;
}

int64_t matmul_macs(const std::string& op, c10::ArrayRef<const c10::IValue> in) {
  if (op == "aten::linear") {
    // (input [..., in], weight [out, in], bias)
    if (in.size() < 2 || !in[0].isTensor() || !in[1].isTensor()) return 0;
    const auto& x = in[0].toTensor();
    const auto& w = in[1].toTensor();
    return x.dim() == 0 ? 0 : x.numel() / x.size(-1) * w.numel();
  }
  // addmm(bias, a, b) and mm(a, b) / bmm(a, b): a [.., n, k], b [.., k, m].
  const size_t first = op == "aten::addmm" ? 1 : 0;
  if (in.size() < first + 2 || !in[first].isTensor() || !in[first + 1].isTensor()) return 0;
  const auto& a = in[first].toTensor();
  const auto& b = in[first + 1].toTensor();
  return a.dim() < 2 || b.dim() < 2 ? 0 : a.numel() * b.size(-1);
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  const char* name = fn.name();
  if (!is_counted(name)) return nullptr;
  if (tls_depth++ == 0) {
    const std::string op = name;
    tls_macs += (op == "aten::convolution" || op == "aten::_convolution")
                    ? convolution_macs(fn.inputs())
                    : matmul_macs(op, fn.inputs());
  }
  return nullptr;
}

void on_end(const at::RecordFunction& fn, at::ObserverContext*) {
  if (is_counted(fn.name())) --tls_depth;
}

}  // namespace

int64_t count_macs(BackboneImpl& model, const InputSpec& spec) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  auto params = model.parameters();
  auto options = torch::TensorOptions().dtype(torch::kFloat32);
  if (!params.empty())
    options = options.device(params.front().device()).dtype(params.front().dtype());
  torch::Tensor x = torch::zeros({1, spec.channels, spec.size, spec.size}, options);

  tls_macs = 0;
  tls_depth = 0;
  auto handle =
      at::addThreadLocalCallback(at::RecordFunctionCallback(on_start, on_end).needsInputs(true));
  try {
    model.forward(x);
  } catch (...) {
    at::removeCallback(handle);
    model.train(was_training);
    throw;
  }
  at::removeCallback(handle);
  model.train(was_training);
  return tls_macs;
}

}  // namespace graft
