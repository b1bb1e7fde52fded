#pragma once
/// BERT (Devlin et al. 2019) as Hugging Face's BertModel computes it, with
/// its parameter names, so that published checkpoints (pytorch_model.bin,
/// model.safetensors) load unchanged through read_weights:
///   bert.embeddings.{word,position,token_type}_embeddings.weight,
///   bert.embeddings.LayerNorm.{weight,bias},
///   bert.encoder.layer.N.attention.self.{query,key,value}.{weight,bias},
///   bert.encoder.layer.N.attention.output.{dense,LayerNorm}.*,
///   bert.encoder.layer.N.intermediate.dense.*, bert.encoder.layer.N.output.{dense,LayerNorm}.*,
///   bert.pooler.dense.*
/// and, for masked-language-model pretraining, the head
///   cls.predictions.transform.{dense,LayerNorm}.*, cls.predictions.bias
/// (the decoder shares the word embeddings, as in BertForPreTraining).

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "graft/models/fast.h"
#include "graft/weights/safetensors.h"
#include "graft/weights/state_dict.h"

namespace graft {

/// config.json of a BERT checkpoint (Hugging Face or Google format; both use
/// these keys).
struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";  // gelu (erf) | gelu_new / gelu_pytorch_tanh (tanh) | relu
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
};

/// Reads a config.json object; unknown keys are ignored (checkpoints carry
/// many), wrong types and impossible values (heads not dividing the hidden
/// size, an unknown activation) are graft::Error naming `source`.
BertConfig bert_config_from_json(const nlohmann::json& j, const std::string& source);
BertConfig read_bert_config(const std::string& path);
nlohmann::ordered_json to_json(const BertConfig& c);

/// The standard sizes (Turc et al. 2019 for tiny..medium; BERT-base):
/// bert-tiny L2/H128, bert-mini L4/H256, bert-small L4/H512,
/// bert-medium L8/H512, bert-base L12/H768 (heads H/64, FFN 4H).
/// Accepts "tiny" or "bert-tiny". Throws graft::UsageError listing them.
BertConfig bert_size(const std::string& name, int64_t vocab_size = 30522);
std::vector<std::string> bert_size_names();

class BertLayerImpl : public torch::nn::Module {
 public:
  explicit BertLayerImpl(const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask);
  /// On: the four Linear layers (query/key/value as one) run in dynamic int8
  /// from the weights as they are now (models/int8.h: dynamic_linear); off:
  /// fp32. Inference only.
  void set_dynamic_int8(bool on);

 private:
  BertConfig c_;
  std::vector<c10::IValue> int8_;  // packed qkv, attention output, intermediate, output; empty: fp32
  torch::nn::Linear query_{nullptr}, key_{nullptr}, value_{nullptr}, attn_out_{nullptr};
  torch::nn::LayerNorm attn_norm_{nullptr};
  torch::nn::Linear inter_{nullptr}, out_{nullptr};
  torch::nn::LayerNorm out_norm_{nullptr};
  FastDropout hidden_drop_{nullptr}, attn_drop_{nullptr};
};
TORCH_MODULE(BertLayer);

struct BertOutput {
  torch::Tensor last_hidden_state;  // [B, T, H]
  torch::Tensor pooled;             // [B, H]: tanh(dense([CLS]))
};

/// The encoder, named as Hugging Face's BertModel (register it as "bert").
class BertModelImpl : public torch::nn::Module {
 public:
  explicit BertModelImpl(const BertConfig& c);
  /// input_ids, token_type_ids, attention_mask: [B, T] int64 (mask 1 = token,
  /// 0 = padding). token_type_ids and attention_mask may be undefined (all 0
  /// / all 1).
  BertOutput forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids = {},
                     const torch::Tensor& attention_mask = {});
  const BertConfig& config() const { return c_; }
  torch::Tensor word_embeddings() const { return word_->weight; }
  std::vector<BertLayer>& layers() { return layers_; }
  /// Dynamic int8 for every Linear of the encoder and the pooler, as
  /// torch.ao.quantization.quantize_dynamic(model, {nn.Linear},
  /// per_channel_dynamic_qconfig) on the onednn engine (--precision int8 on a
  /// BERT text run); the embeddings, LayerNorms and attention stay fp32.
  void set_dynamic_int8(bool on);

 private:
  BertConfig c_;
  torch::nn::Embedding word_{nullptr}, position_{nullptr}, token_type_{nullptr};
  torch::nn::LayerNorm emb_norm_{nullptr};
  FastDropout emb_drop_{nullptr};
  std::vector<BertLayer> layers_;
  torch::nn::Linear pooler_{nullptr};
  c10::IValue pooler_int8_;  // None: fp32
};
TORCH_MODULE(BertModel);

/// BERT with the masked-language-model head of BertForPreTraining
/// ("bert.*" and "cls.predictions.*"), for pretraining a source model.
class BertForMaskedLMImpl : public torch::nn::Module {
 public:
  explicit BertForMaskedLMImpl(const BertConfig& c);
  /// Vocabulary logits [B, T, V].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids = {},
                        const torch::Tensor& attention_mask = {});
  /// The head alone: vocabulary logits of hidden states [..., H].
  torch::Tensor head(const torch::Tensor& hidden);
  BertModel bert{nullptr};

 private:
  torch::nn::Linear transform_{nullptr};
  torch::nn::LayerNorm transform_norm_{nullptr};
  torch::Tensor bias_;
};
TORCH_MODULE(BertForMaskedLM);

/// Hugging Face's init (normal(0, 0.02) weights, zero biases, unit
/// LayerNorm), applied to a freshly built module.
void init_bert_weights(torch::nn::Module& module);

/// Loads a BERT checkpoint into a module whose encoder is registered as
/// "bert": names without the "bert." prefix (a bare BertModel checkpoint) get
/// it, Google-style "LayerNorm.gamma/beta" become weight/bias, and heads the
/// module does not have (cls.*, classifier.*) are skipped. Returns the
/// report; shapes that disagree with the config are listed in mismatched.
LoadReport load_bert_weights(torch::nn::Module& module, const TensorList& tensors);

}  // namespace graft
