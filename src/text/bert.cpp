// BERT with Hugging Face's parameter names and arithmetic.

#include "graft/text/bert.h"

#include <cmath>
#include <limits>
#include <set>
#include <type_traits>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/models/int8.h"

namespace graft {

namespace {

template <typename T>
void read_key(const nlohmann::json& j, const char* key, T& out, const std::string& source) {
  if (!j.contains(key)) return;
  const auto& v = j.at(key);
  if constexpr (std::is_integral_v<T>) {
    GRAFT_CHECK(v.is_number_integer(), source, ": \"", key, "\" must be an integer, got ", json_excerpt(v));
  } else if constexpr (std::is_floating_point_v<T>) {
    GRAFT_CHECK(v.is_number(), source, ": \"", key, "\" must be a number, got ", json_excerpt(v));
  } else {
    GRAFT_CHECK(v.is_string(), source, ": \"", key, "\" must be a string, got ", json_excerpt(v));
  }
  out = v.get<T>();
}

using Holder = torch::nn::Module;

std::shared_ptr<Holder> holder(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<Holder>());
}

torch::Tensor activate(const torch::Tensor& x, const std::string& act) {
  if (act == "gelu") return torch::gelu(x);
  if (act == "relu") return torch::relu(x);
  return torch::gelu(x, "tanh");  // gelu_new, gelu_pytorch_tanh
}

}  // namespace

BertConfig bert_config_from_json(const nlohmann::json& j, const std::string& source) {
  GRAFT_CHECK(j.is_object(), source, ": expected a JSON object (a BERT config.json)");
  BertConfig c;
  read_key(j, "vocab_size", c.vocab_size, source);
  read_key(j, "hidden_size", c.hidden_size, source);
  read_key(j, "num_hidden_layers", c.num_hidden_layers, source);
  read_key(j, "num_attention_heads", c.num_attention_heads, source);
  read_key(j, "intermediate_size", c.intermediate_size, source);
  read_key(j, "max_position_embeddings", c.max_position_embeddings, source);
  read_key(j, "type_vocab_size", c.type_vocab_size, source);
  read_key(j, "layer_norm_eps", c.layer_norm_eps, source);
  read_key(j, "hidden_act", c.hidden_act, source);
  read_key(j, "hidden_dropout_prob", c.hidden_dropout_prob, source);
  read_key(j, "attention_probs_dropout_prob", c.attention_probs_dropout_prob, source);
  auto positive = [&](const char* key, int64_t v) {
    GRAFT_CHECK(v >= 1 && v <= (int64_t{1} << 24), source, ": \"", key, "\" is ", v,
                " (expected 1 to 2^24)");
  };
  positive("vocab_size", c.vocab_size);
  positive("hidden_size", c.hidden_size);
  positive("num_hidden_layers", c.num_hidden_layers);
  positive("num_attention_heads", c.num_attention_heads);
  positive("intermediate_size", c.intermediate_size);
  positive("max_position_embeddings", c.max_position_embeddings);
  positive("type_vocab_size", c.type_vocab_size);
  GRAFT_CHECK(c.hidden_size % c.num_attention_heads == 0, source, ": hidden_size ", c.hidden_size,
              " is not a multiple of num_attention_heads ", c.num_attention_heads);
  GRAFT_CHECK(c.hidden_act == "gelu" || c.hidden_act == "gelu_new" ||
                  c.hidden_act == "gelu_pytorch_tanh" || c.hidden_act == "relu",
              source, ": hidden_act '", c.hidden_act,
              "' is not supported (expected gelu, gelu_new, gelu_pytorch_tanh or relu)");
  GRAFT_CHECK(c.layer_norm_eps > 0, source, ": layer_norm_eps ", c.layer_norm_eps, " (expected > 0)");
  GRAFT_CHECK(c.hidden_dropout_prob >= 0 && c.hidden_dropout_prob < 1 &&
                  c.attention_probs_dropout_prob >= 0 && c.attention_probs_dropout_prob < 1,
              source, ": dropout probabilities must be in [0, 1)");
  return c;
}

BertConfig read_bert_config(const std::string& path) {
  return bert_config_from_json(read_json_file(path), "'" + path + "'");
}

nlohmann::ordered_json to_json(const BertConfig& c) {
  nlohmann::ordered_json j;
  j["model_type"] = "bert";
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["intermediate_size"] = c.intermediate_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["type_vocab_size"] = c.type_vocab_size;
  j["layer_norm_eps"] = c.layer_norm_eps;
  j["hidden_act"] = c.hidden_act;
  j["hidden_dropout_prob"] = c.hidden_dropout_prob;
  j["attention_probs_dropout_prob"] = c.attention_probs_dropout_prob;
  return j;
}

std::vector<std::string> bert_size_names() {
  return {"bert-tiny", "bert-mini", "bert-small", "bert-medium", "bert-base"};
}

BertConfig bert_size(const std::string& name_in, int64_t vocab_size) {
  std::string name = name_in.rfind("bert-", 0) == 0 ? name_in.substr(5) : name_in;
  BertConfig c;
  c.vocab_size = vocab_size;
  auto set = [&](int64_t layers, int64_t hidden) {
    c.num_hidden_layers = layers;
    c.hidden_size = hidden;
    c.num_attention_heads = hidden / 64;
    c.intermediate_size = 4 * hidden;
  };
  if (name == "tiny") set(2, 128);
  else if (name == "mini") set(4, 256);
  else if (name == "small") set(4, 512);
  else if (name == "medium") set(8, 512);
  else if (name == "base") set(12, 768);
  else
    throw UsageError(str_cat("BERT size '", name_in,
                             "' is not known (expected tiny, mini, small, medium or base)"));
  return c;
}

BertLayerImpl::BertLayerImpl(const BertConfig& c) : c_(c) {
  const int64_t h = c.hidden_size;
  auto attention = holder(*this, "attention");
  auto self = holder(*attention, "self");
  query_ = self->register_module("query", torch::nn::Linear(h, h));
  key_ = self->register_module("key", torch::nn::Linear(h, h));
  value_ = self->register_module("value", torch::nn::Linear(h, h));
  auto attn_output = holder(*attention, "output");
  attn_out_ = attn_output->register_module("dense", torch::nn::Linear(h, h));
  attn_norm_ = attn_output->register_module(
      "LayerNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({h}).eps(c.layer_norm_eps)));
  auto intermediate = holder(*this, "intermediate");
  inter_ = intermediate->register_module("dense", torch::nn::Linear(h, c.intermediate_size));
  auto output = holder(*this, "output");
  out_ = output->register_module("dense", torch::nn::Linear(c.intermediate_size, h));
  out_norm_ = output->register_module(
      "LayerNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({h}).eps(c.layer_norm_eps)));
  hidden_drop_ = register_module("hidden_dropout", FastDropout(c.hidden_dropout_prob));
  attn_drop_ = register_module("attention_dropout", FastDropout(c.attention_probs_dropout_prob));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& additive_mask) {
  const int64_t b = x.size(0), t = x.size(1), heads = c_.num_attention_heads;
  const int64_t d = c_.hidden_size / heads;
  // Query, key and value in one matrix product (one GEMM of 3h outputs
  // instead of three of h), with the attention scale 1/sqrt(d) folded into
  // the query's weight and bias: HF's arithmetic, two passes fewer over the
  // [b, heads, t, t] scores.
  torch::Tensor qkv;
  if (int8_.empty()) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const torch::Tensor w = torch::cat({query_->weight * scale, key_->weight, value_->weight});
    const torch::Tensor bias = torch::cat({query_->bias * scale, key_->bias, value_->bias});
    qkv = torch::nn::functional::linear(x, w, bias).view({b, t, 3, heads, d});
  } else {
    qkv = dynamic_linear(x, int8_[0]).view({b, t, 3, heads, d});
  }
  const torch::Tensor q = qkv.select(2, 0).transpose(1, 2), k = qkv.select(2, 1).transpose(1, 2),
                      v = qkv.select(2, 2).transpose(1, 2);
  torch::Tensor scores = batched_matmul(q, k.transpose(-1, -2));
  if (additive_mask.defined()) scores.add_(additive_mask);
  torch::Tensor probs = attn_drop_(torch::softmax(scores, -1));
  torch::Tensor ctx = batched_matmul(probs, v).transpose(1, 2).reshape({b, t, c_.hidden_size});
  auto linear = [&](size_t k, torch::nn::Linear& l, const torch::Tensor& in) {
    return int8_.empty() ? l(in) : dynamic_linear(in, int8_[k]);
  };
  torch::Tensor a = attn_norm_(hidden_drop_(linear(1, attn_out_, ctx)) + x);
  torch::Tensor i = activate(linear(2, inter_, a), c_.hidden_act);
  return out_norm_(hidden_drop_(linear(3, out_, i)) + a);
}

void BertLayerImpl::set_dynamic_int8(bool on) {
  int8_.clear();
  if (!on) return;
  // Query, key and value packed as one matrix (per-channel scales are per
  // row, so the same as three); the attention scale is folded into the query
  // rows as in the fp32 path, which scales those rows' int8 scales alike.
  const double scale = 1.0 / std::sqrt(static_cast<double>(c_.hidden_size / c_.num_attention_heads));
  int8_.push_back(prepack_dynamic_linear(torch::cat({query_->weight * scale, key_->weight, value_->weight}),
                                         torch::cat({query_->bias * scale, key_->bias, value_->bias})));
  for (torch::nn::Linear* l : {&attn_out_, &inter_, &out_})
    int8_.push_back(prepack_dynamic_linear((*l)->weight, (*l)->bias));
}

BertModelImpl::BertModelImpl(const BertConfig& c) : c_(c) {
  const int64_t h = c.hidden_size;
  auto embeddings = holder(*this, "embeddings");
  word_ = embeddings->register_module("word_embeddings", torch::nn::Embedding(c.vocab_size, h));
  position_ = embeddings->register_module("position_embeddings",
                                          torch::nn::Embedding(c.max_position_embeddings, h));
  token_type_ = embeddings->register_module("token_type_embeddings",
                                            torch::nn::Embedding(c.type_vocab_size, h));
  emb_norm_ = embeddings->register_module(
      "LayerNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({h}).eps(c.layer_norm_eps)));
  emb_drop_ = register_module("embedding_dropout", FastDropout(c.hidden_dropout_prob));
  auto encoder = holder(*this, "encoder");
  torch::nn::ModuleList list;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layers_.push_back(BertLayer(c));
    list->push_back(layers_.back());
  }
  encoder->register_module("layer", list);
  auto pooler = holder(*this, "pooler");
  pooler_ = pooler->register_module("dense", torch::nn::Linear(h, h));
  init_bert_weights(*this);
}

void BertModelImpl::set_dynamic_int8(bool on) {
  torch::NoGradGuard no_grad;
  for (auto& layer : layers_) layer->set_dynamic_int8(on);
  pooler_int8_ = on ? prepack_dynamic_linear(pooler_->weight, pooler_->bias) : c10::IValue();
}

BertOutput BertModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                  const torch::Tensor& attention_mask) {
  GRAFT_CHECK(input_ids.dim() == 2, "BERT input_ids: expected [batch, length], got ",
              input_ids.sizes());
  const int64_t t = input_ids.size(1);
  GRAFT_CHECK(t <= c_.max_position_embeddings, "BERT input of ", t,
              " tokens is longer than max_position_embeddings ", c_.max_position_embeddings);
  torch::Tensor positions = torch::arange(t, input_ids.options().dtype(torch::kInt64));
  torch::Tensor types = token_type_ids.defined() ? token_type_ids : torch::zeros_like(input_ids);
  torch::Tensor x = word_(input_ids) + token_type_(types) + position_(positions).unsqueeze(0);
  x = emb_drop_(emb_norm_(x));
  torch::Tensor additive;
  // No padding in the batch (the common case with length bucketing): adding
  // zeros to every score would change nothing.
  if (attention_mask.defined() && attention_mask.min().item<int64_t>() == 0) {
    // As Hugging Face: (1 - mask) * the most negative float, added to the scores.
    torch::Tensor m = attention_mask.to(x.scalar_type()).unsqueeze(1).unsqueeze(2);
    additive = (1.0 - m) * std::numeric_limits<float>::lowest();
  }
  for (auto& layer : layers_) x = layer->forward(x, additive);
  BertOutput out;
  out.last_hidden_state = x;
  const torch::Tensor cls = x.select(1, 0);
  out.pooled = torch::tanh(pooler_int8_.isNone() ? pooler_(cls) : dynamic_linear(cls, pooler_int8_));
  return out;
}

BertForMaskedLMImpl::BertForMaskedLMImpl(const BertConfig& c) {
  bert = register_module("bert", BertModel(c));
  auto cls = holder(*this, "cls");
  auto predictions = holder(*cls, "predictions");
  auto transform = holder(*predictions, "transform");
  transform_ = transform->register_module("dense", torch::nn::Linear(c.hidden_size, c.hidden_size));
  transform_norm_ = transform->register_module(
      "LayerNorm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
  bias_ = predictions->register_parameter("bias", torch::zeros({c.vocab_size}));
  init_bert_weights(*this);
}

torch::Tensor BertForMaskedLMImpl::forward(const torch::Tensor& input_ids,
                                           const torch::Tensor& token_type_ids,
                                           const torch::Tensor& attention_mask) {
  return head(bert->forward(input_ids, token_type_ids, attention_mask).last_hidden_state);
}

torch::Tensor BertForMaskedLMImpl::head(const torch::Tensor& hidden) {
  torch::Tensor h = transform_norm_(activate(transform_(hidden), bert->config().hidden_act));
  return torch::nn::functional::linear(h, bert->word_embeddings(), bias_);
}

void init_bert_weights(torch::nn::Module& module) {
  torch::NoGradGuard guard;
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* lin = m->as<torch::nn::Linear>()) {
      lin->weight.normal_(0, 0.02);
      if (lin->bias.defined()) lin->bias.zero_();
    } else if (auto* emb = m->as<torch::nn::Embedding>()) {
      emb->weight.normal_(0, 0.02);
    } else if (auto* ln = m->as<torch::nn::LayerNorm>()) {
      ln->weight.fill_(1);
      ln->bias.zero_();
    }
  }
}

LoadReport load_bert_weights(torch::nn::Module& module, const TensorList& tensors) {
  std::set<std::string> own;
  for (const auto& p : module.named_parameters(true)) own.insert(p.key());
  TensorList renamed;
  for (const auto& [name_in, t] : tensors) {
    std::string name = name_in;
    // Google/TF-converted names.
    auto replace_end = [&](const std::string& from, const std::string& to) {
      if (name.size() >= from.size() && name.compare(name.size() - from.size(), from.size(), from) == 0)
        name = name.substr(0, name.size() - from.size()) + to;
    };
    replace_end("LayerNorm.gamma", "LayerNorm.weight");
    replace_end("LayerNorm.beta", "LayerNorm.bias");
    const bool encoder_part = name.rfind("embeddings.", 0) == 0 || name.rfind("encoder.", 0) == 0 ||
                              name.rfind("pooler.", 0) == 0;
    if (encoder_part) name = "bert." + name;
    // Buffers and tied or foreign heads that graft's modules do not hold.
    if (name == "bert.embeddings.position_ids" || name.rfind("cls.predictions.decoder.", 0) == 0 ||
        name.rfind("cls.seq_relationship.", 0) == 0)
      continue;
    if (!own.count(name) && (name.rfind("cls.", 0) == 0 || name.rfind("classifier.", 0) == 0))
      continue;
    renamed.emplace_back(name, t);
  }
  return load_state_dict(module, renamed);
}

}  // namespace graft
