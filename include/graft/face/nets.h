#pragma once
/// face-api's networks (npm @vladmandic/face-api@1.7.15) re-implemented in
/// LibTorch, with their TF.js weights read by parse_tfjs_weights:
///  - FaceEmbedder: faceRecognitionNet, the dlib-style ResNet (29 conv layers,
///    conv + bias + per-channel scale, TF "valid" strided convolutions) that
///    maps a 150x150 RGB face chip to a 128-d descriptor;
///  - FaceLandmarkNet: faceLandmark68Net, four dense blocks of separable
///    convolutions and a linear layer giving 68 (x, y) points for a 112x112
///    input.
/// Both take NCHW float RGB in 0..255 (face-api subtracts the mean RGB
/// [122.782, 117.001, 104.298] and divides by 255 inside the net; so do these).
/// Parity with face-api on TF.js's CPU backend: tests/face/nets_test.cpp.

#include <string>

#include <opencv2/core.hpp>
#include <torch/torch.h>

#include "graft/weights/safetensors.h"

namespace graft {

/// The face-api model folder: $GRAFT_CACHE_DIR/face-api-1.7.15/model, else
/// ~/.cache/graft/face-api-1.7.15/model (filled by scripts/face_models.sh).
std::string default_face_models_dir();

/// TensorFlow's "same" padding for a k x k kernel at `stride` on an NCHW
/// tensor: out = ceil(in / stride), the total padding split with the odd
/// pixel after (bottom / right), unlike PyTorch's symmetric padding. Used by
/// every face-api network (detector, landmarks, embedder).
torch::Tensor pad_same(const torch::Tensor& x, int64_t k, int64_t stride);

/// face-api's input normalisation, inside both nets: (x - mean RGB) / 255.
torch::Tensor face_net_normalise(const torch::Tensor& x);

class FaceEmbedderImpl : public torch::nn::Module {
 public:
  /// Takes the tensors of face_recognition_model-weights_manifest.json (TF
  /// layouts, TF names). Throws graft::Error naming `source` and the tensor
  /// when one is missing or has another shape.
  FaceEmbedderImpl(const TensorList& tfjs_weights, const std::string& source);
  /// [N, 3, 150, 150] RGB 0..255 -> [N, 128] descriptors, not normalised (as
  /// face-api's computeFaceDescriptor; their norms are about 1.3-1.5).
  torch::Tensor forward(torch::Tensor x);

  /// The network in two parts, forward(x) == forward_last_stage(forward_trunk(x)):
  /// the trunk (conv32_down to conv256_2) gives [N, 256, 4, 4]; the last
  /// stage is dlib's last level (the residual block conv256_down_out, "level0"
  /// in dlib's dnn_face_recognition_ex.cpp), the average pool and the fc to
  /// 128-d. Fine-tuning trains the last stage only.
  torch::Tensor forward_trunk(torch::Tensor x);
  torch::Tensor forward_last_stage(torch::Tensor trunk);

  /// The fast path (issue 21), on by default: each convolution's bias and
  /// per-channel scale and shift folded into its filters and bias (one
  /// convolution, w * s and b * s + t, instead of a convolution and three
  /// element-wise passes; BatchNorm folding for this net) and the activations
  /// channels-last. Off: the TF.js graph op for op (graft_bench face
  /// measures both). Gradients flow through the folding either way.
  void set_fast(bool fast) { fast_ = fast; }
  bool fast() const { return fast_; }

  /// The residual blocks in order (the trunk's, then the last stage's): a
  /// down block's first convolution has stride 2 ("valid") and its shortcut
  /// is a 2x2 average pool with zero channels appended up to `out`.
  struct Block {
    const char* name;
    int64_t in, out;
    bool down;
  };
  static const std::vector<Block>& blocks();
  /// A convolution ("conv32_down", "conv64_down/conv1", ...) with its bias,
  /// scale and shift folded in as the fast path folds them (w * s, b * s + t),
  /// detached: {filters OIHW, bias}. The int8 network is built from these.
  std::pair<torch::Tensor, torch::Tensor> folded(const std::string& prefix) const;
  /// The final projection, [256, 128] (descriptor = mean-pooled map x fc).
  const torch::Tensor& fc() const { return fc_; }

  /// Whether a parameter (by its registered name) belongs to the last stage.
  static bool in_last_stage(const std::string& name);
  /// requires_grad on the last stage's parameters (all others stay frozen).
  void set_last_stage_trainable(bool trainable);
  /// The last stage's parameters, in registration order.
  std::vector<torch::Tensor> last_stage_parameters();

 private:
  struct ConvScale {
    torch::Tensor filters, bias, scale, shift;  // filters OIHW
  };
  torch::Tensor apply(const ConvScale& p, torch::Tensor x, int stride, bool relu) const;
  torch::Tensor residual(const std::string& prefix, torch::Tensor x);
  torch::Tensor residual_down(const std::string& prefix, torch::Tensor x);

  std::map<std::string, torch::Tensor> tf_;  // by TF name, for the checks
  std::map<std::string, ConvScale> convs_;
  torch::Tensor fc_;  // [256, 128]
  bool fast_ = true;
};
TORCH_MODULE(FaceEmbedder);

class FaceLandmarkNetImpl : public torch::nn::Module {
 public:
  /// Takes the tensors of face_landmark_68_model-weights_manifest.json.
  FaceLandmarkNetImpl(const TensorList& tfjs_weights, const std::string& source);
  /// [N, 3, 112, 112] RGB 0..255 -> [N, 136]: x0, y0, x1, ... as fractions of
  /// the input's width and height.
  torch::Tensor forward(torch::Tensor x);

 private:
  struct SepConv {
    torch::Tensor depthwise, pointwise, bias;  // [C,1,3,3], [Cout,C,1,1]
  };
  torch::Tensor dense_block(int block, torch::Tensor x, bool first);
  torch::Tensor sep_conv(const SepConv& p, torch::Tensor x, int stride) const;

  torch::Tensor conv0_filters_, conv0_bias_;  // dense0/conv0, a plain conv
  std::map<std::string, SepConv> seps_;
  torch::Tensor fc_weights_, fc_bias_;
};
TORCH_MODULE(FaceLandmarkNet);

/// Loads face_recognition_model / face_landmark_68_model from `models_dir`.
/// Throws graft::Error naming the manifest when it is missing or malformed.
FaceEmbedder load_face_embedder(const std::string& models_dir);
FaceLandmarkNet load_face_landmark_net(const std::string& models_dir);

/// Writes every parameter of `net` (registered names, OIHW filters) to a
/// safetensors file, atomically.
void save_face_embedder_weights(FaceEmbedder& net, const std::string& path);
/// Replaces the parameters of `net` by those of a file written by
/// save_face_embedder_weights. Throws graft::Error naming the file and the
/// tensor when one is missing, unexpected or has another shape or dtype.
void load_face_embedder_weights(FaceEmbedder& net, const std::string& path);

/// sha256 of a model's manifest and its shards, in manifest order (what a
/// gallery records to refuse descriptors from other weights).
std::string face_model_sha256(const std::string& models_dir, const std::string& model);

/// face-api's input preparation (NetInput.toBatchTensor with centring): the
/// 8-bit grey or RGB image is zero-padded to a square (the odd pixel of an odd
/// difference goes after the image), then, if its side differs from `size`,
/// resized with TF's bilinear resize (align_corners and half_pixel_centers
/// false). Returns float [3, size, size], RGB 0..255 (grey replicated).
/// `centre` false pads only after the image (right or bottom), as face-api's
/// detector input does.
torch::Tensor face_net_input(const cv::Mat& image, int size, bool centre = true);

/// face-api's detectLandmarks on a whole image (or a face crop): the net on
/// face_net_input(image, 112), its output mapped back to the image's pixels
/// (undoing the padding and the scale). 68 points in iBUG 300-W order.
std::vector<cv::Point2f> face_landmarks(FaceLandmarkNet& net, const cv::Mat& image);

}  // namespace graft
