// ONNX export of text runs: the BERT classifier (embeddings, encoder layers
// with LayerNormalization (opset 17), erf/tanh GELU or ReLU, the tanh pooler,
// the head) by Hugging Face's parameter names, and the TF-IDF classifier's
// linear layer over the TF-IDF vector.

#include <cmath>
#include <limits>
#include <map>

#include "graft/core/error.h"
#include "graft/eval/calibration.h"
#include "graft/export/onnx.h"
#include "graft/text/text_model.h"
#include "onnx_graph.h"

namespace graft {
namespace {

using onnx_export::GraphWriter;
using onnx_export::set_attr;

class BertOnnxWriter {
 public:
  BertOnnxWriter(GraphWriter& g, BertClassifierImpl& model) : g_(g) {
    for (const auto& p : model.named_parameters()) params_[p.key()] = p.value().detach();
  }

  torch::Tensor param(const std::string& name) const {
    auto it = params_.find(name);
    GRAFT_CHECK(it != params_.end(), "ONNX export: the BERT classifier has no parameter '", name, "'");
    return it->second;
  }

  /// x [..., in] @ (scale * W)^T + scale * b for the Linear `prefix`.
  std::string dense(const std::string& x, const std::string& prefix, double scale = 1.0) {
    const std::string xw =
        g_.op("MatMul", {x, g_.constant(prefix + ".weight_t", param(prefix + ".weight").t() * scale)}, prefix);
    return g_.op("Add", {xw, g_.constant(prefix + ".bias", param(prefix + ".bias") * scale)}, prefix + ".add");
  }

  std::string layer_norm(const std::string& x, const std::string& prefix, double eps) {
    auto& n = g_.node("LayerNormalization",
                      {x, g_.constant(prefix + ".weight", param(prefix + ".weight")),
                       g_.constant(prefix + ".bias", param(prefix + ".bias"))},
                      prefix);
    set_attr(n, "axis", int64_t{-1});
    set_attr(n, "epsilon", static_cast<float>(eps));
    return n.output(0);
  }

  std::string activation(const std::string& x, const std::string& act, const std::string& path) {
    if (act == "relu") return g_.op("Relu", {x}, path + ".relu");
    const std::string half_x = g_.op("Mul", {x, g_.scalar(path + ".half", 0.5f)}, path + ".half_x");
    std::string inner;
    if (act == "gelu") {
      // 0.5 x (1 + erf(x / sqrt 2))
      inner = g_.op("Erf", {g_.op("Mul", {x, g_.scalar(path + ".rsqrt2", static_cast<float>(1.0 / std::sqrt(2.0)))},
                                  path + ".scaled")},
                    path + ".erf");
    } else {
      // gelu_new / gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const std::string cube = g_.op("Mul", {x, g_.op("Mul", {x, x}, path + ".sq")}, path + ".cube");
      const std::string sum =
          g_.op("Add", {x, g_.op("Mul", {cube, g_.scalar(path + ".c", 0.044715f)}, path + ".c_cube")}, path + ".sum");
      inner = g_.op("Tanh",
                    {g_.op("Mul", {sum, g_.scalar(path + ".k", static_cast<float>(std::sqrt(2.0 / M_PI)))},
                           path + ".k_sum")},
                    path + ".tanh");
    }
    const std::string one_plus = g_.op("Add", {inner, g_.scalar(path + ".one", 1.0f)}, path + ".one_plus");
    return g_.op("Mul", {half_x, one_plus}, path + ".gelu");
  }

  /// [b, t, h] -> [b, heads, t, d] (perm 0,2,1,3) or, for keys, [b, heads, d, t].
  std::string heads(const std::string& x, int64_t n_heads, int64_t d, bool key, const std::string& path) {
    const std::string r = g_.op("Reshape", {x, g_.ints(path + ".shape", {0, 0, n_heads, d})}, path + ".split");
    auto& t = g_.node("Transpose", {r}, path + ".heads");
    set_attr(t, "perm", key ? std::vector<int64_t>{0, 2, 3, 1} : std::vector<int64_t>{0, 2, 1, 3});
    return t.output(0);
  }

  std::string encoder_layer(const std::string& x, const std::string& additive, const BertConfig& c, int64_t i) {
    const std::string p = "bert.encoder.layer." + std::to_string(i);
    const int64_t d = c.hidden_size / c.num_attention_heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const std::string q = heads(dense(x, p + ".attention.self.query", scale), c.num_attention_heads, d, false, p + ".q");
    const std::string k = heads(dense(x, p + ".attention.self.key"), c.num_attention_heads, d, true, p + ".k");
    const std::string v = heads(dense(x, p + ".attention.self.value"), c.num_attention_heads, d, false, p + ".v");
    const std::string scores = g_.op("Add", {g_.op("MatMul", {q, k}, p + ".scores"), additive}, p + ".masked");
    auto& sm = g_.node("Softmax", {scores}, p + ".probs");
    set_attr(sm, "axis", int64_t{-1});
    const std::string ctx = g_.op("MatMul", {sm.output(0), v}, p + ".context");
    auto& back = g_.node("Transpose", {ctx}, p + ".merge");
    set_attr(back, "perm", std::vector<int64_t>{0, 2, 1, 3});
    const std::string merged =
        g_.op("Reshape", {back.output(0), g_.ints(p + ".merge_shape", {0, 0, c.hidden_size})}, p + ".merged");
    const std::string a = layer_norm(g_.op("Add", {dense(merged, p + ".attention.output.dense"), x}, p + ".residual1"),
                                     p + ".attention.output.LayerNorm", c.layer_norm_eps);
    const std::string inter = activation(dense(a, p + ".intermediate.dense"), c.hidden_act, p + ".intermediate");
    return layer_norm(g_.op("Add", {dense(inter, p + ".output.dense"), a}, p + ".residual2"), p + ".output.LayerNorm",
                      c.layer_norm_eps);
  }

 private:
  GraphWriter& g_;
  std::map<std::string, torch::Tensor> params_;
};

std::vector<std::pair<std::string, std::string>> text_metadata(const TextModelInfo& info, double temperature) {
  return {
      {"graft_version", GRAFT_VERSION},
      {"task", "text"},
      {"architecture", info.architecture},
      {"backbone", info.backbone},
      {"head", info.head},
      {"classes", nlohmann::json(info.classes).dump()},
      {"max_length", std::to_string(info.max_length)},
      {"lower_case", info.lower_case ? "true" : "false"},
      {"pairs", info.pairs ? "true" : "false"},
      {"temperature", str_cat(temperature)},
      {"outputs", "logits [batch, classes]; probabilities = softmax(logits / temperature)"},
  };
}

std::string tokens_text(const WordPiece& tokenizer) {
  std::string out;
  for (size_t i = 0; i < tokenizer.size(); ++i) out += tokenizer.token(static_cast<int64_t>(i)) + "\n";
  return out;
}

}  // namespace

std::string bert_classifier_onnx(BertClassifierImpl& model, const TextModelInfo& info, double temperature,
                                 const std::vector<std::pair<std::string, std::string>>& metadata) {
  torch::NoGradGuard no_grad;
  const BertConfig& c = info.bert;
  GRAFT_CHECK(c.hidden_act == "gelu" || c.hidden_act == "gelu_new" || c.hidden_act == "gelu_pytorch_tanh" ||
                  c.hidden_act == "relu",
              "ONNX export: BERT hidden_act '", c.hidden_act, "' has no ONNX form here");
  onnx::ModelProto proto = onnx_export::new_model("graft_bert_classifier");
  GraphWriter g(proto.mutable_graph());
  BertOnnxWriter w(g, model);
  for (const char* name : {"input_ids", "token_type_ids", "attention_mask"})
    onnx_export::add_value_info(proto.mutable_graph()->add_input(), name, onnx::TensorProto::INT64, {-1, -2});
  const std::string e = "bert.embeddings";
  const std::string words = g.op("Gather", {g.constant(e + ".word", w.param(e + ".word_embeddings.weight")), "input_ids"},
                                 e + ".words");
  const std::string types = g.op(
      "Gather", {g.constant(e + ".type", w.param(e + ".token_type_embeddings.weight")), "token_type_ids"}, e + ".types");
  // Positions 0..t-1: the first t rows of the position table.
  const std::string length = g.op("Slice", {g.op("Shape", {"input_ids"}, "shape"), g.ints("one", {1}), g.ints("two", {2})},
                                  "length");
  const std::string positions = g.op(
      "Slice", {g.constant(e + ".position", w.param(e + ".position_embeddings.weight")), g.ints("zero", {0}), length},
      e + ".positions");
  std::string x = g.op("Add", {g.op("Add", {words, types}, e + ".sum"), positions}, e + ".all");
  x = w.layer_norm(x, e + ".LayerNorm", c.layer_norm_eps);
  // As Hugging Face: (1 - mask) * the most negative float, added to the scores.
  auto& cast = g.node("Cast", {"attention_mask"}, "mask");
  set_attr(cast, "to", int64_t{onnx::TensorProto::FLOAT});
  const std::string mask4 = g.op("Unsqueeze", {cast.output(0), g.ints("mask_axes", {1, 2})}, "mask4");
  const std::string additive =
      g.op("Mul", {g.op("Sub", {g.scalar("one_f", 1.0f), mask4}, "unmasked"),
                   g.scalar("lowest", std::numeric_limits<float>::lowest())},
           "additive_mask");
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) x = w.encoder_layer(x, additive, c, i);
  auto& first = g.node("Gather", {x, g.constant("cls_index", torch::tensor(int64_t{0}))}, "cls");
  set_attr(first, "axis", int64_t{1});
  const std::string pooled =
      g.op("Tanh",
           {[&] {
             auto& n = g.node("Gemm",
                              {first.output(0), g.constant("bert.pooler.dense.weight", w.param("bert.pooler.dense.weight")),
                               g.constant("bert.pooler.dense.bias", w.param("bert.pooler.dense.bias"))},
                              "bert.pooler.dense");
             set_attr(n, "transB", int64_t{1});
             return n.output(0);
           }()},
           "pooled");
  const std::string logits = onnx_export::head_nodes(g, pooled, *model.classifier.ptr(), "classifier");
  onnx_export::classifier_outputs(g, logits, static_cast<int64_t>(info.classes.size()), temperature);
  auto meta = text_metadata(info, temperature);
  meta.push_back({"inputs",
                  "input_ids, token_type_ids, attention_mask: int64 [batch, sequence], WordPiece ids of [CLS] text "
                  "[SEP] (text pair: [CLS] a [SEP] b [SEP], type 1 for b), at most max_length, padded with [PAD] "
                  "and mask 0"});
  meta.insert(meta.end(), metadata.begin(), metadata.end());
  return onnx_export::finish_model(proto, meta);
}

std::string tfidf_classifier_onnx(TfidfClassifierImpl& model, const TextModelInfo& info, double temperature,
                                  const std::vector<std::pair<std::string, std::string>>& metadata) {
  torch::NoGradGuard no_grad;
  onnx::ModelProto proto = onnx_export::new_model("graft_tfidf_classifier");
  GraphWriter g(proto.mutable_graph());
  const int64_t features = model.classifier->options.in_features();
  onnx_export::add_value_info(proto.mutable_graph()->add_input(), "tfidf", onnx::TensorProto::FLOAT, {-1, features});
  const std::string logits = onnx_export::linear_node(g, "tfidf", *model.classifier, "classifier");
  onnx_export::classifier_outputs(g, logits, static_cast<int64_t>(info.classes.size()), temperature);
  auto meta = text_metadata(info, temperature);
  meta.push_back({"inputs",
                  "tfidf: float32 [batch, features], each text's TF-IDF vector as graft computes it (WordPiece "
                  "tokens, their n-grams looked up in the 'tfidf_table' entry (graft's tfidf.txt), tf x idf): the "
                  "graph is the linear classifier over it"});
  meta.insert(meta.end(), metadata.begin(), metadata.end());
  return onnx_export::finish_model(proto, meta);
}

std::string text_run_onnx(const std::string& run) {
  TextModel m = load_text_model(run);
  m.module().eval();
  const double temperature = read_run_calibration(run).temperature;
  std::vector<std::pair<std::string, std::string>> extra = {{"run", run}};
  if (m.tokenizer) extra.push_back({"vocab", tokens_text(*m.tokenizer)});
  if (m.bert) {
    extra.push_back({"bert_config", to_json(m.info.bert).dump()});
    return bert_classifier_onnx(*m.bert, m.info, temperature, extra);
  }
  GRAFT_CHECK(m.tfidf && m.tfidf_head, "ONNX export: '", run, "' holds neither a BERT nor a TF-IDF model (",
              m.info.architecture, " runs are not exported yet)");  // textcnn: named
  extra.push_back({"tfidf_table", m.tfidf->to_text()});
  return tfidf_classifier_onnx(*m.tfidf_head, m.info, temperature, extra);
}

}  // namespace graft
