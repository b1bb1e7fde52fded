// The ONNX graph builder (onnx_graph.h) and what every export shares: the
// model's header, metadata, the checker, writing and reading the file.

#include "onnx_graph.h"

#include <onnx/checker.h>

#include <cmath>
#include <filesystem>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/export/onnx.h"
#include "graft/models/backbone.h"
#include "graft/models/fast.h"
#include "graft/models/head.h"

namespace graft::onnx_export {

std::string GraphWriter::unique(const std::string& hint) { return str_cat(hint, "_", counter_++); }

std::string GraphWriter::constant(const std::string& hint, const torch::Tensor& t) {
  onnx::TensorProto* p = graph_->add_initializer();
  const std::string name = unique(hint);
  p->set_name(name);
  torch::Tensor c;
  if (t.scalar_type() == torch::kInt64) {
    p->set_data_type(onnx::TensorProto::INT64);
    c = t.detach().to(torch::kCPU).contiguous();
  } else {
    GRAFT_CHECK(t.is_floating_point(), "ONNX export: initializer ", hint, " has dtype ", t.scalar_type(),
                " (expected a floating tensor or int64)");
    p->set_data_type(onnx::TensorProto::FLOAT);
    c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  }
  for (int64_t d : c.sizes()) p->add_dims(d);
  // Little-endian raw data, as ONNX stores it (x86-64 is little-endian).
  p->set_raw_data(std::string(static_cast<const char*>(c.data_ptr()), c.nbytes()));
  return name;
}

std::string GraphWriter::ints(const std::string& hint, const std::vector<int64_t>& v) {
  return constant(hint, torch::tensor(v, torch::kInt64));
}

std::string GraphWriter::scalar(const std::string& hint, float v) {
  return constant(hint, torch::tensor(v, torch::kFloat32));
}

onnx::NodeProto& GraphWriter::node(const std::string& op, const std::vector<std::string>& inputs,
                                   const std::string& hint) {
  onnx::NodeProto* n = graph_->add_node();
  n->set_op_type(op);
  const std::string out = unique(hint);
  n->set_name(out);
  for (const auto& i : inputs) n->add_input(i);
  n->add_output(out);
  return *n;
}

void set_attr(onnx::NodeProto& n, const std::string& name, int64_t v) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void set_attr(onnx::NodeProto& n, const std::string& name, float v) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

void set_attr(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void unsupported(const std::string& path, const torch::nn::Module& m) {
  throw Error(str_cat("ONNX export: layer '", path, "' (", m.name(),
                      ") has no ONNX form in graft's exporter (it writes Conv2d, BatchNorm2d, ReLU, MaxPool2d, "
                      "Dropout, Linear, the residual and Inception blocks, BERT's layers and the heads)"));
}

std::string linear_node(GraphWriter& g, const std::string& x, torch::nn::LinearImpl& l, const std::string& path) {
  const torch::Tensor bias = l.bias.defined() ? l.bias : torch::zeros({l.options.out_features()});
  auto& n = g.node("Gemm", {x, g.constant(path + ".weight", l.weight), g.constant(path + ".bias", bias)}, path);
  set_attr(n, "transB", int64_t{1});
  return n.output(0);
}

std::string head_nodes(GraphWriter& g, const std::string& x, torch::nn::Module& m, const std::string& path) {
  namespace nn = torch::nn;
  if (auto* l = m.as<nn::Linear>()) return linear_node(g, x, *l, path);
  if (auto* c = as_centroid(m)) {
    auto& norm = g.node("ReduceL2", {x}, path + ".norm");
    set_attr(norm, "axes", std::vector<int64_t>{1});
    set_attr(norm, "keepdims", int64_t{1});
    // F.normalize: x / max(|x|, 1e-12).
    const std::string unit = g.op(
        "Div", {x, g.op("Max", {norm.output(0), g.scalar(path + ".eps", 1e-12f)}, path + ".clamp")}, path + ".unit");
    const torch::Tensor rows = nn::functional::normalize(c->weight.detach().to(torch::kFloat32),
                                                         nn::functional::NormalizeFuncOptions().dim(1));
    const std::string cosine = g.op("MatMul", {unit, g.constant(path + ".centroids_t", rows.t())}, path + ".cosine");
    return g.op("Mul", {cosine, g.scalar(path + ".scale", static_cast<float>(kCentroidScale))}, path);
  }
  if (m.as<SequentialHead>()) {
    std::string y = x;
    for (const auto& item : m.named_children()) {
      nn::Module& layer = *item.value();
      const std::string name = path + "." + item.key();
      if (auto* l = layer.as<nn::Linear>()) y = linear_node(g, y, *l, name);
      else if (layer.as<nn::ReLU>()) y = g.op("Relu", {y}, name);
      else if (layer.as<nn::Dropout>() || layer.as<FastDropout>()) continue;
      else unsupported(name, layer);
    }
    return y;
  }
  unsupported(path, m);
}

void classifier_outputs(GraphWriter& g, const std::string& logits, int64_t classes, double temperature) {
  GRAFT_CHECK(temperature > 0 && std::isfinite(temperature), "ONNX export: temperature ", temperature,
              " (expected a positive number)");
  g.node("Identity", {logits}, "logits").set_output(0, "logits");
  const std::string scaled = g.op("Div", {logits, g.scalar("temperature", static_cast<float>(temperature))}, "scaled");
  auto& softmax = g.node("Softmax", {scaled}, "softmax");
  set_attr(softmax, "axis", int64_t{-1});
  softmax.set_output(0, "probabilities");
  add_value_info(g.graph()->add_output(), "logits", onnx::TensorProto::FLOAT, {-1, classes});
  add_value_info(g.graph()->add_output(), "probabilities", onnx::TensorProto::FLOAT, {-1, classes});
}

void add_value_info(onnx::ValueInfoProto* v, const std::string& name, int32_t elem_type,
                    const std::vector<int64_t>& dims) {
  v->set_name(name);
  onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem_type);
  onnx::TensorShapeProto* shape = t->mutable_shape();
  for (int64_t d : dims) {
    onnx::TensorShapeProto_Dimension* dim = shape->add_dim();
    if (d == -1) dim->set_dim_param("batch");
    else if (d == -2) dim->set_dim_param("sequence");
    else dim->set_dim_value(d);
  }
}

onnx::ModelProto new_model(const std::string& name) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("graft");
  model.set_producer_version(GRAFT_VERSION);
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  model.mutable_graph()->set_name(name);
  return model;
}

std::string finish_model(onnx::ModelProto& model,
                         const std::vector<std::pair<std::string, std::string>>& metadata) {
  for (const auto& [key, value] : metadata) {
    onnx::StringStringEntryProto* p = model.add_metadata_props();
    p->set_key(key);
    p->set_value(value);
  }
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(str_cat("ONNX export: the ONNX checker refused the graph: ", e.what()));
  }
  std::string bytes;
  GRAFT_CHECK(model.SerializeToString(&bytes), "ONNX export: the model could not be serialised (",
              model.ByteSizeLong(), " bytes; protobuf's limit is 2 GiB)");
  return bytes;
}

namespace {
onnx::ModelProto parse_onnx_file(const std::string& path) {
  check_input_file(path);
  const std::string bytes = read_file(path);
  onnx::ModelProto model;
  GRAFT_CHECK(model.ParseFromString(bytes), "'", path, "' is not an ONNX model (the protobuf does not parse)");
  return model;
}
}  // namespace

}  // namespace graft::onnx_export

namespace graft {

void write_onnx_file(const std::string& model_bytes, const std::string& out, bool overwrite) {
  GRAFT_CHECK_USAGE(overwrite || !std::filesystem::exists(out), "--out: '", out,
                    "' exists (expected a new path; --overwrite replaces it)");
  write_file_atomic(out, model_bytes);
}

std::map<std::string, std::string> read_onnx_metadata(const std::string& path) {
  onnx::ModelProto model = onnx_export::parse_onnx_file(path);
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(str_cat("'", path, "': the ONNX checker refused it: ", e.what()));
  }
  std::map<std::string, std::string> out;
  for (const auto& p : model.metadata_props()) out[p.key()] = p.value();
  return out;
}

std::vector<std::string> onnx_node_types(const std::string& path) {
  onnx::ModelProto model = onnx_export::parse_onnx_file(path);
  std::vector<std::string> out;
  for (const auto& n : model.graph().node()) out.push_back(n.op_type());
  return out;
}

}  // namespace graft
