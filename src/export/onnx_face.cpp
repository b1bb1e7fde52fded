// ONNX export of face-api's recognition net as graft runs it (FaceEmbedder,
// src/face/nets.cpp: convolution + bias + scale layers folded into one Conv,
// residual blocks with face-api's zero padding) and of a face run: the
// embedder, L2 normalisation and the run's head.

#include "graft/core/error.h"
#include "graft/export/onnx.h"
#include "graft/face/face_train.h"
#include "graft/face/nets.h"
#include "graft/face/pipeline.h"
#include "onnx_graph.h"

namespace graft {
namespace {

using onnx_export::GraphWriter;
using onnx_export::set_attr;

/// A value and its spatial size (the input is fixed at 150x150).
struct FaceValue {
  std::string name;
  int64_t c = 0, side = 0;
};

class FaceOnnxWriter {
 public:
  FaceOnnxWriter(GraphWriter& g, FaceEmbedderImpl& net) : g_(g) {
    for (const auto& p : net.named_parameters()) params_[p.key()] = p.value().detach();
  }

  torch::Tensor param(const std::string& name) const {
    auto it = params_.find(name);
    GRAFT_CHECK(it != params_.end(), "ONNX export: the face embedder has no parameter '", name, "'");
    return it->second;
  }

  /// (conv(x) + bias) * scale + shift, as one Conv: stride 1 pads "same"
  /// (k/2 each side), stride 2 is "valid".
  FaceValue conv(const FaceValue& x, const std::string& prefix, int64_t stride, bool relu) {
    const torch::Tensor w = param(prefix + "/conv/filters").to(torch::kFloat64);
    const torch::Tensor scale = param(prefix + "/scale/weights").to(torch::kFloat64);
    const torch::Tensor b = param(prefix + "/conv/bias").to(torch::kFloat64) * scale +
                            param(prefix + "/scale/biases").to(torch::kFloat64);
    const int64_t k = w.size(2), pad = stride == 1 ? k / 2 : 0;
    auto& n = g_.node("Conv",
                      {x.name, g_.constant(prefix + ".weight", w * scale.view({-1, 1, 1, 1})),
                       g_.constant(prefix + ".bias", b)},
                      prefix);
    set_attr(n, "kernel_shape", std::vector<int64_t>{k, k});
    set_attr(n, "strides", std::vector<int64_t>{stride, stride});
    set_attr(n, "pads", std::vector<int64_t>{pad, pad, pad, pad});
    FaceValue out{n.output(0), w.size(0), (x.side + 2 * pad - k) / stride + 1};
    if (relu) out.name = g_.op("Relu", {out.name}, prefix + ".relu");
    return out;
  }

  FaceValue residual(const FaceValue& x, const std::string& prefix) {
    FaceValue out = conv(conv(x, prefix + "/conv1", 1, true), prefix + "/conv2", 1, false);
    return {g_.op("Relu", {g_.op("Add", {out.name, x.name}, prefix + ".add")}, prefix + ".relu"), out.c, out.side};
  }

  FaceValue residual_down(const FaceValue& x, const std::string& prefix) {
    FaceValue out = conv(conv(x, prefix + "/conv1", 2, true), prefix + "/conv2", 1, false);
    auto& pool = g_.node("AveragePool", {x.name}, prefix + ".pool");
    set_attr(pool, "kernel_shape", std::vector<int64_t>{2, 2});
    set_attr(pool, "strides", std::vector<int64_t>{2, 2});
    FaceValue pooled{pool.output(0), x.c, x.side / 2};
    // face-api: a zero row and column after the convolution's output when it
    // is smaller than the pool's, zero channels after the shortcut's.
    const int64_t d = pooled.side - out.side;
    if (d > 0) {
      out.name = g_.op("Pad", {out.name, g_.ints(prefix + ".pads", {0, 0, 0, 0, 0, 0, d, d})}, prefix + ".pad");
      out.side = pooled.side;
    }
    const int64_t dc = out.c - pooled.c;
    if (dc > 0) {
      pooled.name =
          g_.op("Pad", {pooled.name, g_.ints(prefix + ".channel_pads", {0, 0, 0, 0, 0, dc, 0, 0})}, prefix + ".widen");
      pooled.c = out.c;
    }
    GRAFT_CHECK(out.side == pooled.side && out.c == pooled.c, "ONNX export: face embedder block ", prefix,
                " has shortcut ", pooled.c, "x", pooled.side, " and output ", out.c, "x", out.side);
    return {g_.op("Relu", {g_.op("Add", {pooled.name, out.name}, prefix + ".add")}, prefix + ".relu"), out.c,
            out.side};
  }

 private:
  GraphWriter& g_;
  std::map<std::string, torch::Tensor> params_;
};

/// The embedder's nodes from "input" [batch, 3, 150, 150] (RGB 0..255) to its
/// 128-d descriptor (not normalised).
std::string embedder_nodes(GraphWriter& g, FaceEmbedderImpl& net) {
  FaceOnnxWriter w(g, net);
  const std::string centred = g.op(
      "Sub", {"input", g.constant("mean", torch::tensor({122.782f, 117.001f, 104.298f}).view({1, 3, 1, 1}))}, "centre");
  FaceValue x{g.op("Div", {centred, g.scalar("255", 255.0f)}, "normalise"), 3, 150};
  x = w.conv(x, "conv32_down", 2, true);
  auto& pool = g.node("MaxPool", {x.name}, "maxpool");
  set_attr(pool, "kernel_shape", std::vector<int64_t>{3, 3});
  set_attr(pool, "strides", std::vector<int64_t>{2, 2});
  x = {pool.output(0), x.c, (x.side - 3) / 2 + 1};
  for (const char* n : {"conv32_1", "conv32_2", "conv32_3"}) x = w.residual(x, n);
  x = w.residual_down(x, "conv64_down");
  for (const char* n : {"conv64_1", "conv64_2", "conv64_3"}) x = w.residual(x, n);
  x = w.residual_down(x, "conv128_down");
  for (const char* n : {"conv128_1", "conv128_2"}) x = w.residual(x, n);
  x = w.residual_down(x, "conv256_down");
  for (const char* n : {"conv256_1", "conv256_2"}) x = w.residual(x, n);
  x = w.residual_down(x, "conv256_down_out");
  const std::string pooled = g.op("Flatten", {g.op("GlobalAveragePool", {x.name}, "avgpool")}, "flatten");
  return g.op("MatMul", {pooled, g.constant("fc", w.param("fc"))}, "fc");
}

}  // namespace

std::string face_embedder_onnx(FaceEmbedderImpl& net, const FaceClassifier* classifier,
                               const std::vector<std::pair<std::string, std::string>>& metadata) {
  torch::NoGradGuard no_grad;
  onnx::ModelProto proto = onnx_export::new_model("graft_face_embedder");
  onnx::GraphProto* graph = proto.mutable_graph();
  GraphWriter g(graph);
  onnx_export::add_value_info(graph->add_input(), "input", onnx::TensorProto::FLOAT, {-1, 3, 150, 150});
  const std::string descriptor = embedder_nodes(g, net);
  g.node("Identity", {descriptor}, "embeddings").set_output(0, "embeddings");
  onnx_export::add_value_info(graph->add_output(), "embeddings", onnx::TensorProto::FLOAT, {-1, 128});
  std::vector<std::pair<std::string, std::string>> meta = {
      {"graft_version", GRAFT_VERSION},
      {"task", "face"},
      {"embedder", kFaceEmbedderName},
      {"input_layout", "NCHW float32, RGB 0..255"},
      {"input_size", "150"},
      {"preprocessing", "the aligned face chip of graft's face pipeline, padded square (centred) and resized to "
                        "150x150 with TF's bilinear resize (face_net_input), RGB 0..255; the graph subtracts "
                        "face-api's mean and divides by 255"},
      {"outputs", "embeddings [batch, 128]: face-api's descriptor, not normalised"},
  };
  if (classifier) {
    const torch::Tensor& weight = classifier->weight;
    const int64_t classes = static_cast<int64_t>(classifier->classes.size());
    auto& norm = g.node("ReduceL2", {descriptor}, "norm");
    set_attr(norm, "axes", std::vector<int64_t>{1});
    set_attr(norm, "keepdims", int64_t{1});
    const std::string unit =
        g.op("Div", {descriptor, g.op("Max", {norm.output(0), g.scalar("eps", 1e-12f)}, "clamp")}, "unit");
    std::string scores;
    if (classifier->head == "centroid") {
      // -|e - c| for each class centroid c: [batch, 1, 128] - [classes, 128].
      const std::string diff = g.op(
          "Sub", {g.op("Unsqueeze", {unit, g.ints("axis1", {1})}, "unit3"), g.constant("centroids", weight)}, "diff");
      auto& dist = g.node("ReduceL2", {diff}, "distance");
      set_attr(dist, "axes", std::vector<int64_t>{2});
      set_attr(dist, "keepdims", int64_t{0});
      scores = g.op("Neg", {dist.output(0)}, "neg_distance");
    } else {
      auto& gemm = g.node("Gemm", {unit, g.constant("head.weight", weight), g.constant("head.bias", classifier->bias)},
                          "head");
      set_attr(gemm, "transB", int64_t{1});
      scores = gemm.output(0);
    }
    g.node("Identity", {scores}, "scores").set_output(0, "scores");
    onnx_export::add_value_info(graph->add_output(), "scores", onnx::TensorProto::FLOAT, {-1, classes});
    meta.push_back({"head", classifier->head});
    meta.push_back({"classes", nlohmann::json(classifier->classes).dump()});
    meta.push_back({"scores", classifier->head == "centroid"
                                  ? "scores [batch, classes]: minus the Euclidean distance of the L2-normalised "
                                    "embedding to each identity's centroid"
                                  : "scores [batch, classes]: the linear head's logits of the L2-normalised embedding"});
  }
  meta.insert(meta.end(), metadata.begin(), metadata.end());
  return onnx_export::finish_model(proto, meta);
}

std::string face_run_onnx(const std::string& run) {
  const FaceClassifier classifier = load_face_classifier(run);
  FaceOptions options = face_run_options(run);
  options.detect = false;  // only the embedder is exported
  FacePipeline pipeline(options);
  // issue 18: a run on MobileFaceNet (graft train --task face --embedder
  // mobilefacenet) has no ONNX writer for its graph.
  if (pipeline.is_mobilefacenet())
    throw UsageError(str_cat("graft export: ", run, " was trained on the embedder ", pipeline.embedder_name(),
                             " (--embedder mobilefacenet), which --format onnx does not export (it writes face "
                             "runs of face-api's dlib-style embedder, --embedder dlib)"));
  pipeline.embedder()->eval();
  return face_embedder_onnx(*pipeline.embedder(), &classifier,
                            {{"run", run}, {"embedder_sha256", pipeline.embedder_sha256()}});
}

}  // namespace graft
