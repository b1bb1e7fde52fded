#pragma once
// Private to src/export/: a small builder of an ONNX GraphProto over Debian's
// libonnx protobuf classes (onnx headers stay inside src/export/), and what
// every exported model shares (opset, batch axis, metadata, checker).

// The definitions of libonnx's CMake target (CMakeLists.txt links its files).
#ifndef ONNX_NAMESPACE
#define ONNX_NAMESPACE onnx
#endif
#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#include <onnx/onnx_pb.h>

#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace graft::onnx_export {

/// Nodes and initializers with unique names built from hints.
class GraphWriter {
 public:
  explicit GraphWriter(onnx::GraphProto* graph) : graph_(graph) {}

  /// A float32 (any floating tensor is converted) or int64 initializer.
  std::string constant(const std::string& hint, const torch::Tensor& t);
  /// A 1-d int64 initializer.
  std::string ints(const std::string& hint, const std::vector<int64_t>& v);
  /// A float32 scalar (0-d) initializer.
  std::string scalar(const std::string& hint, float v);

  /// Appends node `op` on `inputs`; its one output is named from `hint`.
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::string& hint);
  /// node(...)'s output name.
  std::string op(const std::string& op, const std::vector<std::string>& inputs, const std::string& hint) {
    return node(op, inputs, hint).output(0);
  }
  onnx::GraphProto* graph() { return graph_; }

 private:
  std::string unique(const std::string& hint);
  onnx::GraphProto* graph_;
  int64_t counter_ = 0;
};

void set_attr(onnx::NodeProto& n, const std::string& name, int64_t v);
void set_attr(onnx::NodeProto& n, const std::string& name, float v);
void set_attr(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v);

/// graft::Error: layer `path` (of type m.name()) has no ONNX form here.
[[noreturn]] void unsupported(const std::string& path, const torch::nn::Module& m);

/// x [batch, in] through a Linear (Gemm).
std::string linear_node(GraphWriter& g, const std::string& x, torch::nn::LinearImpl& l, const std::string& path);

/// x [batch, features] through a head of make_head: a Linear, an MLP head
/// (SequentialHead of Linear, ReLU, Dropout, Linear) or a centroid head
/// (16 x the cosine with each class's unit row).
std::string head_nodes(GraphWriter& g, const std::string& x, torch::nn::Module& m, const std::string& path);

/// Graph outputs "logits" (Identity of `logits`) and "probabilities" =
/// softmax(logits / temperature), both [batch, classes].
void classifier_outputs(GraphWriter& g, const std::string& logits, int64_t classes, double temperature);

/// A graph input or output value: float32 or int64, dims where -1 is the
/// dynamic axis "batch" and -2 the dynamic axis "sequence".
void add_value_info(onnx::ValueInfoProto* v, const std::string& name, int32_t elem_type,
                    const std::vector<int64_t>& dims);

/// A new ModelProto (IR 8, opset kOnnxOpset, producer graft) with graph `name`.
onnx::ModelProto new_model(const std::string& name);

/// Adds metadata_props, runs onnx::checker::check_model (graft::Error with
/// its message otherwise) and serialises.
std::string finish_model(onnx::ModelProto& model,
                         const std::vector<std::pair<std::string, std::string>>& metadata);

}  // namespace graft::onnx_export
