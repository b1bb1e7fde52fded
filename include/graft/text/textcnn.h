#pragma once
/// The TextCNN text backbone (`--backbone textcnn`; Kim, "Convolutional
/// Neural Networks for Sentence Classification", EMNLP 2014), issue 18.
///
/// Tokenizer (word_tokens): ASCII letters are lower-cased (other bytes
/// kept); then, scanning left to right and skipping white space (space, \t,
/// \n, \v, \f, \r and \x1c-\x1f):
///  - "n't" not followed by a word character is one token;
///  - an apostrophe followed by s, re, ve, ll, d or m and then by no word
///    character is one token ("'s", "'re", ...);
///  - a run of word characters (a-z, 0-9, and every byte >= 0x80, so any
///    non-ASCII UTF-8 character) is one token, except that a run ending in
///    "n" directly followed by "'t" (and no word character after it) gives
///    the run without its "n", then "n't" ("doesn't" -> "does", "n't", as
///    GloVe's and the Penn Treebank's tokenization);
///  - any other character (ASCII punctuation, control) is a token alone.
/// tests/reference/textcnn_fixtures.py reimplements this with one regular
/// expression; tests/text/textcnn_test.cpp compares them on sentences of
/// ../shared/data.
///
/// Vocabulary (WordVocab::build): "<pad>" (id 0, a zero row that is never
/// trained), "<unk>" (id 1: words not seen in training), then every word of
/// the TRAINING texts (count >= 1, Kim's min_df = 1), most frequent first,
/// ties in byte order. Kim built it from all sentences of a data set, test
/// included; here test and validation words are not looked at, so a word
/// only they hold is <unk>. The run folder's vocab.txt holds it, one word a
/// line.
///
/// Network: embedding [V, D] (D = the vectors' dimension, 100 for GloVe and
/// for rand) -> per width w in 3, 4, 5: Conv1d(D, 100, w) -> ReLU -> max
/// over time; the three 100-d maxima concatenated (300) -> dropout 0.5 ->
/// Linear(300, classes) "classifier". Texts shorter than 5 tokens are padded
/// with <pad> to 5; a batch is padded to its longest text (the padding rows
/// are zero vectors, as Kim's zero padding).
///
/// Embeddings (--embeddings FILE|none, init_textcnn_embeddings): "none"
/// (CNN-rand) draws every row uniformly in [-0.25, 0.25]; with a vectors
/// file (a .safetensors from `graft weights convert`, see glove.h) a word
/// found there takes its vector, the others (OOV) are drawn as rand, and
/// the count is logged and written to config.json ("embeddings"). With
/// --freeze-embeddings the embedding is not trained (CNN-static); otherwise
/// it is (CNN-non-static). Kim's other differences: word2vec 300-d (here
/// GloVe 100-d), Adadelta with an l2 max-norm of 3 on the head (here the
/// task's optimiser, AdamW, and no max-norm).

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace graft {

struct EncodedText;

/// The tokens of `text` (see above).
std::vector<std::string> word_tokens(const std::string& text);

/// Word ids of the TextCNN: <pad> 0, <unk> 1, then the training words.
class WordVocab {
 public:
  static constexpr int64_t kPad = 0, kUnk = 1;
  /// From the token lists of the training texts.
  static WordVocab build(const std::vector<std::vector<std::string>>& texts);
  /// vocab.txt's text: one word a line; throws graft::Error naming `source`
  /// when it does not start with <pad>, <unk> or repeats a word.
  static WordVocab from_text(const std::string& text, const std::string& source);
  std::string to_text() const;
  int64_t size() const { return static_cast<int64_t>(words_.size()); }
  const std::string& word(int64_t id) const { return words_[static_cast<size_t>(id)]; }
  int64_t id(const std::string& w) const;
  /// The ids of a text's tokens, at most max_length; the tokens dropped are
  /// added to *truncated when given. Token types are all 0.
  EncodedText encode(const std::string& text, int64_t max_length, int64_t* truncated = nullptr) const;

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, int64_t> index_;
};

/// Settings of a TextCNN, in model.json's "textcnn".
struct TextCnnConfig {
  int64_t vocab_size = 0;
  int64_t embedding_dim = 100;
  int64_t maps = 100;
  std::vector<int64_t> widths{3, 4, 5};
  double dropout = 0.5;
  bool static_embeddings = false;
  std::string embeddings = "none";  // the vectors file it started from
};
nlohmann::ordered_json to_json(const TextCnnConfig& c);
/// Throws graft::Error naming `source` on a missing key or a bad value.
TextCnnConfig textcnn_config_from_json(const nlohmann::json& j, const std::string& source);

/// Token ids [B, T], T = max(longest, widest filter), padded with <pad>.
torch::Tensor collate_word_ids(const std::vector<const EncodedText*>& items, int64_t min_length);

class TextCnnImpl : public torch::nn::Module {
 public:
  TextCnnImpl(const TextCnnConfig& c, int64_t num_classes);
  /// Logits [B, C] of ids [B, T].
  torch::Tensor forward(const torch::Tensor& ids);
  /// The pooled maxima [B, maps x widths] that the head reads.
  torch::Tensor features(const torch::Tensor& ids);
  int64_t feature_dim() const { return config.maps * static_cast<int64_t>(config.widths.size()); }
  TextCnnConfig config;
  torch::nn::Embedding embedding{nullptr};
  torch::nn::ModuleList convs{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear classifier{nullptr};
};
TORCH_MODULE(TextCnn);

/// What init_textcnn_embeddings did: the words of the vocabulary (<pad> and
/// <unk> not counted) found in the vectors file and not (OOV).
struct EmbeddingInit {
  std::string file;  // "none" for rand
  int64_t words = 0, found = 0, oov = 0;
};
/// Fills the embedding (see above) with draws from a generator seeded by
/// `seed`; throws graft::UsageError naming --embeddings when the file's
/// dimension differs from the model's.
EmbeddingInit init_textcnn_embeddings(TextCnnImpl& model, const WordVocab& vocab, const std::string& file,
                                      uint64_t seed);

}  // namespace graft
