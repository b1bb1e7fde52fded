#pragma once
/// Text classifiers for `graft train --task text`, and the run folder they
/// are saved in.
///
/// Backbones (--backbone):
///  - "bert": BERT whose size comes from the config beside --weights
///    (bert_config.json or config.json);
///  - "bert-tiny", "bert-mini", "bert-small", "bert-medium", "bert-base": a
///    standard size (see bert_size), from --weights or from scratch;
///  - "tfidf": the bag-of-words floor: TF-IDF of WordPiece unigrams and
///    bigrams, then a linear head (multinomial logistic regression);
///  - "textcnn": Kim's (2014) CNN over word embeddings (text/textcnn.h), its
///    own word vocabulary in vocab.txt and its settings in model.json's
///    "textcnn".
///  - "use-lite": Universal Sentence Encoder lite (graft/text/use_lite.h)
///    from --weights DIR (scripts/use_lite.sh's folder), its 512-d embedding,
///    dropout, then "classifier" (a Linear). Its run folder holds
///    vocab.json (the SentencePiece pieces) instead of vocab.txt, and
///    model.json's "use_lite" (the graph's sizes).
///
/// A BERT classifier is Hugging Face's BertForSequenceClassification: the
/// pooled output (tanh(dense([CLS]))), dropout, then "classifier" (a
/// Linear); its model.safetensors uses those names (bert.*, classifier.*),
/// and bert_config.json beside it has Hugging Face's keys (with
/// architectures and id2label), so transformers loads the pair as a
/// BertForSequenceClassification once bert_config.json is named config.json
/// (graft's config.json holds the training options).
///
/// A run folder holds model.safetensors, model.json (task "text",
/// architecture, classes, max_length, lower_case, pairs), vocab.txt, and
/// bert_config.json or tfidf.txt (the vectorizer).

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "graft/text/bert.h"
#include "graft/text/textcnn.h"
#include "graft/text/use_lite.h"
#include "graft/text/wordpiece.h"

namespace graft {

/// "bert", "bert-tiny" ... "bert-base", "tfidf", "textcnn".
std::vector<std::string> text_backbone_names();
/// Throws graft::UsageError naming --backbone, the value and the valid names.
void check_text_backbone(const std::string& name);

/// One input as token ids: [CLS] A [SEP] (B [SEP]) with token types.
struct EncodedText {
  std::vector<int64_t> ids, types;
};

/// Model inputs of a batch, padded to its longest member (dynamic padding).
struct TextBatch {
  torch::Tensor input_ids, token_type_ids, attention_mask;  // [B, T] int64
};
TextBatch collate_texts(const std::vector<const EncodedText*>& items, int64_t pad_id);

/// Cuts `order` into batches of at most batch_size. With bucket > 1, every
/// run of bucket * batch_size consecutive items of `order` is first sorted by
/// length, longest first (ties keep their order), so that a batch holds
/// texts of similar length and pads little (Hugging Face's
/// group_by_length uses runs of 50 batches). Every item is in exactly one
/// batch.
std::vector<std::vector<int64_t>> length_batches(const std::vector<size_t>& order,
                                                 const std::vector<int64_t>& lengths,
                                                 int64_t batch_size, int64_t bucket);

/// BertForSequenceClassification.
class BertClassifierImpl : public torch::nn::Module {
 public:
  /// `head`: "linear" (Hugging Face's) or "centroid" (models/head.h), in
  /// the "classifier" slot either way.
  BertClassifierImpl(const BertConfig& c, int64_t num_classes, double classifier_dropout,
                     const std::string& head = "linear");
  /// Logits [B, C].
  torch::Tensor forward(const TextBatch& b);
  /// The pooled output [B, H] that the head reads.
  torch::Tensor features(const TextBatch& b);
  /// Dropout, then the classifier.
  torch::Tensor classify(const torch::Tensor& pooled);
  BertModel bert{nullptr};
  FastDropout dropout{nullptr};
  torch::nn::AnyModule classifier;
};
TORCH_MODULE(BertClassifier);

/// Stage of a BertClassifier parameter for strategies and layer-wise
/// learning rates: 0 for bert.embeddings.*, i + 1 for bert.encoder.layer.i.*,
/// num_layers + 1 for bert.pooler.*, and -1 for the head (classifier.*).
int bert_stage(const std::string& parameter_name, int64_t num_layers);

/// TF-IDF settings. Terms are WordPiece ids and pairs of neighbouring ids.
struct TfidfOptions {
  int64_t ngram_max = 2;          ///< 1: unigrams only; 2: and bigrams
  int64_t min_df = 2;             ///< terms in fewer training texts are dropped
  int64_t max_features = 200000;  ///< keep the most frequent terms (0: all)
  bool sublinear_tf = true;       ///< tf = 1 + ln(count) instead of count
};

/// Rows of a sparse matrix (CSR): row r is indices/values[offsets[r] ..
/// offsets[r + 1]).
struct SparseRows {
  std::vector<int64_t> offsets{0};
  std::vector<int64_t> indices;
  std::vector<float> values;
  int64_t rows() const { return static_cast<int64_t>(offsets.size()) - 1; }
  /// The rows `which`, as tensors for embedding_bag: indices, offsets (one
  /// per row), per-sample weights.
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> select(const std::vector<int64_t>& which) const;
};

/// A TF-IDF vectorizer with scikit-learn's TfidfVectorizer arithmetic
/// (smooth_idf, norm l2): idf = ln((1 + n) / (1 + df)) + 1, each row scaled
/// to unit length. Features are numbered in increasing term order (a
/// unigram id a is the term a; a bigram (a, b) sorts after every unigram,
/// by a then b). With more terms than max_features, the most frequent (total
/// count over the texts) are kept, ties to the smaller term.
class Tfidf {
 public:
  static Tfidf fit(const std::vector<std::vector<int64_t>>& docs, const TfidfOptions& options);
  SparseRows transform(const std::vector<std::vector<int64_t>>& docs) const;
  int64_t size() const { return static_cast<int64_t>(idf_.size()); }
  const std::vector<double>& idf() const { return idf_; }
  /// "graft-tfidf 1" header, the options, then one "term<TAB>idf" line per
  /// feature (a term is "a" or "a b").
  std::string to_text() const;
  /// Reads to_text(); throws graft::Error naming `source` and the line.
  static Tfidf from_text(const std::string& text, const std::string& source);
  const TfidfOptions& options() const { return options_; }

 private:
  std::vector<uint64_t> terms(const std::vector<int64_t>& doc) const;
  TfidfOptions options_;
  std::vector<uint64_t> keys_;  // feature -> term key, increasing
  std::unordered_map<uint64_t, int64_t> index_;
  std::vector<double> idf_;
};

/// Linear head over sparse TF-IDF rows: "classifier.weight" [C, V],
/// "classifier.bias" [C], zero-initialised.
class TfidfClassifierImpl : public torch::nn::Module {
 public:
  TfidfClassifierImpl(int64_t features, int64_t num_classes);
  torch::Tensor forward(const torch::Tensor& indices, const torch::Tensor& offsets,
                        const torch::Tensor& weights);
  torch::nn::Linear classifier{nullptr};
};
TORCH_MODULE(TfidfClassifier);

/// What model.json of a text run says.
struct TextModelInfo {
  std::string architecture;  // "bert", "tfidf" or "textcnn"
  std::string backbone;      // the --backbone it was trained with
  std::vector<std::string> classes;
  int64_t max_length = 128;
  bool lower_case = true;
  bool pairs = false;
  std::string source_weights;
  std::string head = "linear";  // or centroid (bert only: graft enroll adds classes)
  BertConfig bert;           // architecture "bert"
  UseLiteConfig use_lite;    // architecture "use-lite"
  double classifier_dropout = 0.1;
  TextCnnConfig textcnn;     // architecture "textcnn"
};

/// A text model ready to classify: the tokenizer and the network.
struct TextModel {
  TextModelInfo info;
  std::shared_ptr<WordPiece> tokenizer;
  BertClassifier bert{nullptr};
  std::shared_ptr<Tfidf> tfidf;
  TfidfClassifier tfidf_head{nullptr};
  std::shared_ptr<WordVocab> words;  // textcnn: its word vocabulary
  TextCnn textcnn{nullptr};
  std::shared_ptr<UseLiteTokenizer> use_tokenizer;  // architecture "use-lite"
  UseLiteClassifier use_lite{nullptr};

  /// The tokens of a text (pair), truncated to max_length; the number of
  /// tokens dropped is added to *truncated when given.
  EncodedText encode(const std::string& a, const std::string& b = "",
                     int64_t* truncated = nullptr) const;
  /// Logits [N, C] in eval mode, batched by length.
  torch::Tensor logits(const std::vector<EncodedText>& inputs, int64_t batch_size = 64) const;
  /// BERT's pooled output [N, H], the TextCNN's pooled maxima [N, 300] or
  /// use-lite's embedding [N, 512] (what the head reads) in eval mode,
  /// batched by length; not for tfidf. A progress bar when `progress` names
  /// one. graft train's linear probe and graft score --task text read these.
  torch::Tensor features(const std::vector<EncodedText>& inputs, int64_t batch_size = 64,
                         const std::string& progress = "") const;
  torch::nn::Module& module() const;
};

/// --precision on a loaded text run (eval, predict, serve): int8 runs a BERT
/// run's encoder and pooler Linear layers in dynamic int8
/// (BertModelImpl::set_dynamic_int8; the head stays fp32); bf16, and int8 on
/// other architectures, stay fp32 with a warning naming `run` and `what`
/// ("evaluated", "predicted", "served").
void use_text_precision(TextModel& model, Precision precision, const std::string& run, const char* what);

/// A line of a text input as a model reads it: the whole line in `a`, or for
/// a model of `pairs` the parts before and after its first tab. False (a and
/// b untouched) when the model reads pairs and the line has no tab.
bool split_text_line(const std::string& line, bool pairs, std::string& a, std::string& b);

/// Token ids of an encoding without [CLS] and the final [SEP] (what TF-IDF
/// counts; a pair keeps its middle [SEP]).
std::vector<int64_t> tfidf_tokens(const EncodedText& e);

/// Writes model.safetensors, model.json and, for BERT, bert_config.json
/// (Hugging Face keys, architectures BertForSequenceClassification,
/// id2label); for TF-IDF, tfidf.txt. Each file atomically. The vocabulary
/// is written by the caller once.
void save_text_model(const std::string& dir, const TextModel& model);
/// Reads a run folder; throws graft::Error naming the file on anything
/// missing or inconsistent.
TextModel load_text_model(const std::string& dir);
/// model.json of a text run alone (atomically).
void write_text_model_json(const std::string& dir, const TextModelInfo& info);
/// The "task" of a run folder's model.json ("image" when absent).
std::string saved_model_task(const std::string& dir);

}  // namespace graft
