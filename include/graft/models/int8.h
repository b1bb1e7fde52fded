#pragma once
/// Post-training static int8 quantisation of a backbone (--precision int8),
/// through LibTorch's quantised operators on the onednn engine
/// (quantized::conv2d_prepack, quantized::conv2d(_relu), quantized::add_relu,
/// quantized::linear): no kernels of graft's own.
///
/// The recipe is PyTorch FX post-training quantisation's with this QConfig:
///  - weights: per-output-channel symmetric int8 (PerChannelMinMaxObserver,
///    qint8, per_channel_symmetric: scale = max|w| / 127.5, zero point 0),
///    after BatchNorm is folded into the convolution before it
///    (torch.nn.utils.fusion.fuse_conv_bn_weights' formula);
///  - activations: per-tensor affine uint8 with a min-max observer
///    (MinMaxObserver, quint8, reduce_range=False: the range always holds 0,
///    scale = (max - min) / 255, zero point = -round(min / scale));
///  - quantisation points where FX puts them: the input; each conv+BN(+ReLU)
///    output (ReLU fused into the convolution); a residual block's
///    add+ReLU output (quantized::add_relu); the CIFAR option-A shortcut,
///    which is computed in float (subsample, zero-pad) and quantised again;
///    the classifier's output. Max and average pooling run on the quantised
///    tensor and keep its scale.
/// The scales come from calibration: float forward passes of the folded
/// network over calibration images, observing each point's min and max.
/// The ResNet family (torchvision ResNet-18/34/50 and the CIFAR ResNets),
/// AlexNet, VGG-11/16 (with or without BatchNorm) and GoogLeNet have an int8
/// path (every registry family); other backbones are refused by name.
/// GoogLeNet's inception branches end at one point shared with their
/// concatenation ("inception3a", FX's shared observer); with
/// transform_input each input channel is a point ("input.0" ...), scaled and
/// shifted by quantized::mul and quantized::add with scalars as in FX. In AlexNet and VGG every
/// convolution(+BN)+ReLU and fc6/fc7 (Linear+ReLU, quantized::linear_relu)
/// are points named by their module ("features.0", "classifier.1"); the
/// max pools and the adaptive average pool keep their input's scale;
/// dropout is the identity. A classifier slot other than one Linear (an MLP
/// head) runs in float on the dequantised features.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace graft {

class BackboneImpl;
class FaceEmbedderImpl;

/// One quantisation point's observed range and its affine parameters.
struct QuantPoint {
  float min = 0, max = 0;
  double scale = 1;
  int64_t zero_point = 0;
};

/// The calibrated activation ranges of a network, by quantisation point name
/// ("input", "conv1", "layer1.0.conv1", "layer1.0" (the block's output),
/// "layer2.0.shortcut", "fc", ...).
struct Int8Calibration {
  std::map<std::string, QuantPoint> points;
  int64_t images = 0;  ///< how many images were observed
  std::string observer = "minmax";
};

nlohmann::ordered_json to_json(const Int8Calibration& c);
/// Throws graft::Error naming `source` when a field is missing or malformed.
Int8Calibration int8_calibration_from_json(const nlohmann::json& j, const std::string& source);

/// (scale, zero point) of a min-max observer over [min, max] for quint8,
/// computed in float32 as torch.ao.quantization.MinMaxObserver does.
QuantPoint minmax_qparams(float min, float max);

/// Per-output-channel symmetric int8 scales of `weight` (dimension 0), as
/// PerChannelMinMaxObserver(qint8, per_channel_symmetric): a float32 tensor.
torch::Tensor per_channel_symmetric_scales(const torch::Tensor& weight);

/// Throws graft::UsageError naming the backbone (and the layer, when one
/// part of it is what has no int8 path) when `model` cannot be quantised.
void check_int8_supported(BackboneImpl& model, const std::string& backbone_name);

/// Observes every quantisation point of `model` over `batches` (float
/// [N, 3, H, W] each, already normalised). The model is not changed; its
/// BatchNorms must not be folded by graft's FoldedBatchNorm yet (neither
/// here nor in build_int8: BatchNorm is folded as FX folds it).
Int8Calibration calibrate_int8(BackboneImpl& model, const std::vector<torch::Tensor>& batches);

/// The int8 network: built once from `model`'s float weights and a
/// calibration; forward/features are what BackboneImpl::forward/features
/// compute, in int8, with float output.
class Int8Network {
 public:
  virtual ~Int8Network() = default;
  /// Pooled features, dequantised: [N, feature_dim].
  virtual torch::Tensor features(const torch::Tensor& x) = 0;
  /// The classifier's output, dequantised.
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
};

/// Builds the int8 network; throws graft::Error naming the quantisation
/// point that `calibration` lacks.
std::shared_ptr<Int8Network> build_int8(BackboneImpl& model, const Int8Calibration& calibration);

/// face-api's face embedder (face/nets.h) in int8, as FX quantises a
/// PyTorch port of it (tests/reference/face_int8_fixtures.py): its folded
/// convolutions (ReLU fused), quantized::add_relu per block, the average
/// pool, the max pool and the final mean on the quantised tensor; a down
/// block's zero-padded shortcut ("<block>/shortcut") and zero-padded
/// convolution output ("<block>/padded") in float, quantised again; fc as
/// quantized::linear ("fc"). `batches`: chips as FaceEmbedder::forward takes
/// them ([N, 3, 150, 150], RGB 0..255; normalised inside).
Int8Calibration calibrate_face_int8(const FaceEmbedderImpl& net, const std::vector<torch::Tensor>& batches);
/// forward: the descriptors [N, 128] (not normalised, as FaceEmbedder's);
/// features: the mean-pooled map [N, 256].
std::shared_ptr<Int8Network> build_face_int8(const FaceEmbedderImpl& net, const Int8Calibration& calibration);

/// Dynamic int8 for Linear layers (BERT's, --precision int8 on a text run):
/// the weight quantised per output channel, symmetric (as
/// per_channel_dynamic_qconfig), packed with the float bias by
/// quantized::linear_prepack on the onednn engine...
c10::IValue prepack_dynamic_linear(const torch::Tensor& weight, const torch::Tensor& bias);
/// ...and run by quantized::linear_dynamic as torch.ao.nn.quantized.dynamic.
/// Linear runs it (the input quantised per tensor from its own range on
/// every call, reduce_range=True; float out; any leading dimensions).
torch::Tensor dynamic_linear(const torch::Tensor& x, const c10::IValue& packed);

/// True when the CPU flags include an int8 dot-product instruction set
/// (avx512_vnni, avx_vnni or amx_int8): without one the onednn int8 kernels
/// fall back and are slow.
bool flags_have_vnni(const std::string& cpu_flags);
bool cpu_has_vnni();

}  // namespace graft
