#pragma once
/// What makes CPU inference and training fast, kept out of the model code:
/// the channels-last memory format, BatchNorm folded into the convolution
/// before it for evaluation, and bfloat16 autocast (--precision bf16).

#include <initializer_list>
#include <iosfwd>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace graft {

/// BatchNorm2d as torch::nn::BatchNorm2d computes it (batch statistics and a
/// running-average update in training, running statistics in evaluation),
/// which FoldedBatchNorm can switch off after folding its affine map into the
/// preceding convolution. Parameter and buffer names are BatchNorm2d's
/// (weight, bias, running_mean, running_var, num_batches_tracked), so
/// torchvision checkpoints load unchanged. (LibTorch does not export
/// BatchNorm2dImpl's base, so it cannot be subclassed outside the library.)
class FoldableBatchNorm2dImpl : public torch::nn::Cloneable<FoldableBatchNorm2dImpl> {
 public:
  explicit FoldableBatchNorm2dImpl(int64_t num_features)
      : FoldableBatchNorm2dImpl(torch::nn::BatchNorm2dOptions(num_features)) {}
  explicit FoldableBatchNorm2dImpl(const torch::nn::BatchNorm2dOptions& options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  void pretty_print(std::ostream& stream) const override;
  void set_bypass(bool bypass) { bypass_ = bypass; }
  bool bypassed() const { return bypass_; }

  torch::nn::BatchNorm2dOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  bool bypass_ = false;
};
TORCH_MODULE(FoldableBatchNorm2d);

/// Every 4-d parameter and buffer of `module` in channels-last (NHWC) layout,
/// the layout oneDNN's convolutions run natively: no reorder per call.
/// Idempotent; names and values are unchanged.
void to_channels_last(torch::nn::Module& module);

/// A 4-d batch in channels-last layout (other tensors unchanged).
torch::Tensor channels_last(const torch::Tensor& x);

/// While alive, every FoldableBatchNorm2d in evaluation mode that directly
/// follows a Conv2d among its siblings (conv1/bn1, downsample.0/.1,
/// features.N/N+1, conv/bn) is folded into that convolution: the convolution
/// runs with weight*scale and a bias, and the BatchNorm passes its input
/// through. The registered parameters are not touched (state dicts and
/// checkpoints are unaffected); the destructor restores the forward. Only for
/// evaluation: the model must not be trained while folded.
/// With restore = false (processes that only evaluate and never save the
/// model: graft eval and predict), the convolutions' weights are scaled in
/// place instead of copied, so no second copy of them is held, and the fold
/// outlives this object.
class FoldedBatchNorm {
 public:
  explicit FoldedBatchNorm(torch::nn::Module& root, bool restore = true);
  ~FoldedBatchNorm();
  FoldedBatchNorm(const FoldedBatchNorm&) = delete;
  FoldedBatchNorm& operator=(const FoldedBatchNorm&) = delete;
  /// Number of BatchNorms folded.
  size_t folded() const { return pairs_.size(); }

 private:
  struct Pair {
    torch::nn::Conv2dImpl* conv;
    FoldableBatchNorm2dImpl* bn;
    torch::Tensor weight, bias;  // the convolution's own members, restored at the end
  };
  std::vector<Pair> pairs_;
  bool restore_ = true;
};

/// Dropout (inverted, as torch::nn::Dropout: an element is kept with
/// probability 1 - p and scaled by 1 / (1 - p)) whose mask comes from a
/// counter-based generator: splitmix64 of a seed drawn from LibTorch's default
/// generator and the element's index, 32 bits per element, filled in
/// parallel. ATen's CPU dropout draws every element through bernoulli_ from
/// one mt19937 and was 9% of a BERT-mini fine-tune step here. Reproducible
/// under torch::manual_seed; identity when !train or p == 0.
torch::Tensor fast_dropout(const torch::Tensor& x, double p, bool train);

class FastDropoutImpl : public torch::nn::Cloneable<FastDropoutImpl> {
 public:
  explicit FastDropoutImpl(double p = 0.5);
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& x) { return fast_dropout(x, p, is_training()); }
  void pretty_print(std::ostream& stream) const override;
  double p;
};
TORCH_MODULE(FastDropout);

/// torch::matmul for batches of small matrices, a [..., n, k] x b [..., k, m]
/// (the same leading dimensions, no broadcasting): one single-threaded BLAS
/// product per matrix, the matrices spread over the intra-op threads.
/// torch::matmul hands each small product to the multi-threaded BLAS in turn
/// (BERT's attention: 128 products of 128x64x128 per layer and batch, where
/// the threads' start-up costs as much as the work). Differentiable; under
/// CPU autocast both sides are cast to its dtype, as matmul would be.
torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b);

/// kInt8: post-training static int8 for inference (models/int8.h,
/// eval/int8_run.h), dynamic int8 for BERT's Linear layers; training takes
/// it only for a linear probe's features.
enum class Precision { kFp32, kBf16, kInt8 };

/// "fp32", "bf16" or "int8"; throws graft::UsageError naming `option` otherwise.
Precision parse_precision(const std::string& name, const std::string& option = "--precision");
const char* precision_name(Precision p);

/// True when the CPU flags (as in /proc/cpuinfo's "flags" line, words
/// separated by spaces) include any of `names`.
bool flags_have_any(const std::string& cpu_flags, std::initializer_list<const char*> names);
/// This machine's /proc/cpuinfo "flags" line (after the colon; "" if none).
std::string cpu_flags();

/// True when the CPU flags (as in /proc/cpuinfo's "flags" line) include
/// avx512_bf16 or amx_bf16: bfloat16 matrix products run in hardware.
bool flags_have_bf16(const std::string& cpu_flags);
/// flags_have_bf16 of this machine's /proc/cpuinfo.
bool cpu_has_bf16();

/// `requested`, or fp32 with a message on `warn` when bf16 was requested on
/// a CPU without bfloat16 instructions (emulated bf16 is slower than fp32).
/// int8 stays int8, with a message on a CPU without VNNI (its kernels fall
/// back and are slow).
Precision resolve_precision(Precision requested, std::ostream& warn);

/// While alive with bf16: CPU autocast to bfloat16 (matrix products and
/// convolutions in bf16, reductions and losses in fp32; the weights stay
/// fp32). With fp32 or int8 (the model's int8 network does that): nothing.
class Autocast {
 public:
  explicit Autocast(Precision p);
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  bool active_ = false;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};

}  // namespace graft
