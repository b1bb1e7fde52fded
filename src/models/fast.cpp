#include "graft/models/fast.h"
#include "graft/models/int8.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <fstream>
#include <mutex>
#include <ostream>
#include <sstream>

#include "graft/core/error.h"

namespace graft {

FoldableBatchNorm2dImpl::FoldableBatchNorm2dImpl(const torch::nn::BatchNorm2dOptions& o)
    : options(o) {
  GRAFT_CHECK(o.affine() && o.track_running_stats(),
              "FoldableBatchNorm2d: only affine BatchNorm with running statistics");
  reset();
}

void FoldableBatchNorm2dImpl::reset() {
  const int64_t n = options.num_features();
  weight = register_parameter("weight", torch::ones({n}));
  bias = register_parameter("bias", torch::zeros({n}));
  running_mean = register_buffer("running_mean", torch::zeros({n}));
  running_var = register_buffer("running_var", torch::ones({n}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::kLong));
}

torch::Tensor FoldableBatchNorm2dImpl::forward(const torch::Tensor& x) {
  if (bypass_) return x;
  GRAFT_CHECK(x.dim() == 4, "BatchNorm2d: expected a 4-d input, got ", x.dim(), " dimensions");
  // As torch::nn::BatchNorm2d with momentum set (the default 0.1).
  if (is_training()) {
    torch::NoGradGuard no_grad;
    num_batches_tracked += 1;
  }
  const double momentum = options.momentum().has_value() ? *options.momentum() : 0.1;
  return torch::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum,
                           options.eps(), at::globalContext().userEnabledCuDNN());
}

void FoldableBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "graft::FoldableBatchNorm2d(" << options.num_features() << ", eps=" << options.eps()
         << (bypass_ ? ", folded" : "") << ")";
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
  for (auto& b : module.buffers())
    if (b.dim() == 4) b.set_data(b.contiguous(torch::MemoryFormat::ChannelsLast));
}

torch::Tensor channels_last(const torch::Tensor& x) {
  return x.dim() == 4 ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
}

FoldedBatchNorm::FoldedBatchNorm(torch::nn::Module& root, bool restore) : restore_(restore) {
  torch::NoGradGuard no_grad;
  for (const auto& parent : root.modules(/*include_self=*/true)) {
    torch::nn::Conv2dImpl* previous = nullptr;
    for (const auto& child : parent->children()) {
      auto* bn = dynamic_cast<FoldableBatchNorm2dImpl*>(child.get());
      if (bn && previous && !bn->is_training() && !bn->bypassed() &&
          previous->options.out_channels() == bn->options.num_features()) {
        Pair p{previous, bn, previous->weight, previous->bias};
        const auto scale = bn->weight / torch::sqrt(bn->running_var + bn->options.eps());
        const auto format = p.weight.suggest_memory_format();
        if (restore)
          previous->weight = (p.weight * scale.view({-1, 1, 1, 1})).contiguous(format);
        else
          previous->weight.mul_(scale.view({-1, 1, 1, 1}));
        auto shift = bn->bias - bn->running_mean * scale;
        if (p.bias.defined()) shift = shift + p.bias * scale;
        previous->bias = shift;
        bn->set_bypass(true);
        pairs_.push_back(std::move(p));
      }
      previous = dynamic_cast<torch::nn::Conv2dImpl*>(child.get());
    }
  }
}

FoldedBatchNorm::~FoldedBatchNorm() {
  if (!restore_) return;
  for (auto& p : pairs_) {
    p.conv->weight = p.weight;
    p.conv->bias = p.bias;
    p.bn->set_bypass(false);
  }
}

namespace {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t draw_seed() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
}

}  // namespace

torch::Tensor fast_dropout(const torch::Tensor& x, double p, bool train) {
  GRAFT_CHECK(p >= 0 && p < 1, "dropout probability ", p, " (expected 0 <= p < 1)");
  if (!train || p == 0 || x.numel() == 0) return x;
  // Kept when the 32-bit draw is at least p * 2^32.
  const uint64_t threshold = static_cast<uint64_t>(p * 4294967296.0 + 0.5);
  const uint64_t seed = splitmix64(draw_seed());
  torch::Tensor mask = torch::empty(x.sizes(), x.options().memory_format(x.suggest_memory_format()));
  const int64_t n = mask.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, mask.scalar_type(), "fast_dropout", [&] {
    scalar_t* m = mask.data_ptr<scalar_t>();
    const scalar_t keep = static_cast<scalar_t>(1.0 / (1.0 - p)), drop = static_cast<scalar_t>(0);
    // One 64-bit draw gives two elements their 32 bits.
    at::parallel_for(0, (n + 1) / 2, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const uint64_t r = splitmix64(seed ^ (static_cast<uint64_t>(i) * 0xd1342543de82ef95ULL));
        m[2 * i] = (r & 0xffffffffULL) >= threshold ? keep : drop;
        if (2 * i + 1 < n) m[2 * i + 1] = (r >> 32) >= threshold ? keep : drop;
      }
    });
  });
  return x * mask;
}

namespace {

torch::Tensor batched_matmul_raw(const torch::Tensor& a, const torch::Tensor& b) {
  GRAFT_CHECK(a.dim() >= 3 && a.dim() == b.dim() && a.size(-1) == b.size(-2) &&
                  a.sizes().slice(0, a.dim() - 2) == b.sizes().slice(0, b.dim() - 2),
              "batched_matmul: shapes ", a.sizes(), " and ", b.sizes(),
              " (expected [..., n, k] and [..., k, m] with the same leading dimensions)");
  const torch::Tensor a3 = a.reshape({-1, a.size(-2), a.size(-1)});
  const torch::Tensor b3 = b.reshape({-1, b.size(-2), b.size(-1)});
  std::vector<int64_t> shape(a.sizes().begin(), a.sizes().end() - 1);
  shape.push_back(b.size(-1));
  // The result is returned as allocated (not a view), so that callers may
  // update it in place.
  torch::Tensor out = torch::empty(shape, a3.options());
  torch::Tensor out3 = out.view({a3.size(0), a3.size(1), b3.size(2)});
  // Inside the parallel region ATen and OpenBLAS's OpenMP build run each
  // product on the calling thread.
  at::parallel_for(0, a3.size(0), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      torch::Tensor o = out3.select(0, i);
      at::mm_out(o, a3.select(0, i), b3.select(0, i));
    }
  });
  return out;
}

struct BatchedMatmulFunction : public torch::autograd::Function<BatchedMatmulFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a,
                               const torch::Tensor& b) {
    ctx->save_for_backward({a, b});
    return batched_matmul_raw(a, b);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& g = grads[0];
    return {batched_matmul_raw(g, saved[1].transpose(-1, -2)),
            batched_matmul_raw(saved[0].transpose(-1, -2), g)};
  }
};

}  // namespace

torch::Tensor batched_matmul(const torch::Tensor& a_in, const torch::Tensor& b_in) {
  torch::Tensor a = a_in, b = b_in;
  if (at::autocast::is_cpu_enabled()) {
    const auto dtype = at::autocast::get_autocast_cpu_dtype();
    if (a.is_floating_point() && a.scalar_type() != dtype) a = a.to(dtype);
    if (b.is_floating_point() && b.scalar_type() != dtype) b = b.to(dtype);
  }
  // Reduced precision: ATen's batched product goes to oneDNN in one call,
  // which beats one product per matrix.
  if (a.scalar_type() != b.scalar_type() ||
      (a.scalar_type() != torch::kFloat32 && a.scalar_type() != torch::kFloat64))
    return torch::matmul(a, b);
  if (torch::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad()))
    return BatchedMatmulFunction::apply(a, b);
  return batched_matmul_raw(a, b);
}

FastDropoutImpl::FastDropoutImpl(double p_) : p(p_) {
  GRAFT_CHECK(p >= 0 && p < 1, "dropout probability ", p, " (expected 0 <= p < 1)");
}

void FastDropoutImpl::pretty_print(std::ostream& stream) const {
  stream << "graft::FastDropout(p=" << p << ")";
}

Precision parse_precision(const std::string& name, const std::string& option) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "int8") return Precision::kInt8;
  throw UsageError(str_cat(option, ": '", name, "' is not a precision (expected fp32, bf16 or int8)"));
}

const char* precision_name(Precision p) {
  return p == Precision::kBf16 ? "bf16" : p == Precision::kInt8 ? "int8" : "fp32";
}

bool flags_have_any(const std::string& flags, std::initializer_list<const char*> names) {
  std::istringstream in(flags);
  std::string f;
  while (in >> f)
    for (const char* n : names)
      if (f == n) return true;
  return false;
}

std::string cpu_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0) return line.substr(line.find(':') + 1);
  return "";
}

bool flags_have_bf16(const std::string& flags) { return flags_have_any(flags, {"avx512_bf16", "amx_bf16"}); }

bool cpu_has_bf16() { return flags_have_bf16(cpu_flags()); }

Precision resolve_precision(Precision requested, std::ostream& warn) {
  if (requested == Precision::kInt8) {
    if (!cpu_has_vnni())
      warn << "warning: --precision int8: this CPU has no VNNI (no avx512_vnni, avx_vnni or amx_int8 in "
              "/proc/cpuinfo); int8 runs, but its kernels fall back and may be slower than fp32\n";
    return requested;
  }
  if (requested != Precision::kBf16 || cpu_has_bf16()) return requested;
  warn << "warning: --precision bf16: this CPU has neither AVX512-BF16 nor AMX-BF16 "
          "(no avx512_bf16 or amx_bf16 in /proc/cpuinfo); running in fp32\n";
  return Precision::kFp32;
}

Autocast::Autocast(Precision p) : active_(p == Precision::kBf16) {
  if (!active_) return;
  was_enabled_ = at::autocast::is_cpu_enabled();
  was_dtype_ = at::autocast::get_autocast_cpu_dtype();
  at::autocast::set_cpu_enabled(true);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::increment_nesting();
}

Autocast::~Autocast() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_cpu_enabled(was_enabled_);
  at::autocast::set_autocast_cpu_dtype(was_dtype_);
}

}  // namespace graft
