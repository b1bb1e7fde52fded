// The text model graft train --task text starts from (text/text_source.h):
// moved here from text_train.cpp so that graft score --task text builds the
// same model and reads the same frozen features.

#include "graft/text/text_source.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/models/head.h"
#include "graft/text/glove.h"
#include "graft/text/text_eval.h"
#include "graft/train/loop.h"

namespace fs = std::filesystem;

namespace graft {

TextSet read_text_data(const std::string& path, const std::string& option, const TrainOptions& o,
                       const std::vector<std::string>& classes) {
  GRAFT_CHECK_USAGE(fs::exists(path), option, ": '", path,
                    "' does not exist (expected a CSV, TSV or JSONL file, or a folder of class files)");
  TextReadOptions r = text_read_options(o);
  r.classes = classes;
  TextSet s = read_text_set(path, r);
  if (s.skipped_empty > 0)
    log_warn(str_cat(option, " '", path, "': ", s.skipped_empty,
                     " empty or white-space texts skipped (--strict makes them an error)"));
  return s;
}

namespace {

std::string text_weights_file(const std::string& weights) {
  if (weights == "none") return "";
  if (fs::is_directory(weights)) {
    for (const char* f : {"model.safetensors", "pytorch_model.bin"})
      if (fs::exists(fs::path(weights) / f)) return (fs::path(weights) / f).string();
    return (fs::path(weights) / "model.safetensors").string();
  }
  return weights;
}

// The config beside the weights (a graft run's bert_config.json, or a
// Hugging Face folder's config.json), or "" when there is none.
std::string config_beside(const std::string& wfile) {
  if (wfile.empty()) return "";
  fs::path dir = fs::path(wfile).parent_path();
  if (dir.empty()) dir = ".";
  for (const char* f : {"bert_config.json", "config.json"}) {
    fs::path p = dir / f;
    if (!fs::exists(p)) continue;
    // A graft run's config.json holds training options, not a BERT config.
    nlohmann::json j;
    try {
      j = read_json_file(p.string());
    } catch (const Error&) {
      continue;
    }
    if (j.is_object() && j.contains("hidden_size")) return p.string();
  }
  return "";
}

BertConfig resolve_config(const TrainOptions& o, const std::string& wfile, int64_t vocab_size) {
  const std::string cfg = config_beside(wfile);
  BertConfig c;
  if (o.backbone == "bert") {
    GRAFT_CHECK_USAGE(!cfg.empty(), "--backbone bert takes its size from the config.json beside "
                      "--weights, and ", wfile.empty() ? std::string("--weights is none")
                                                       : str_cat("there is none beside '", wfile, "'"),
                      " (expected a pretraining run or a Hugging Face folder, or a size: ",
                      "--backbone bert-tiny, bert-mini, bert-small, bert-medium or bert-base)");
    c = read_bert_config(cfg);
  } else {
    c = bert_size(o.backbone, vocab_size);
    if (!cfg.empty()) {
      BertConfig w = read_bert_config(cfg);
      GRAFT_CHECK_USAGE(w.hidden_size == c.hidden_size && w.num_hidden_layers == c.num_hidden_layers &&
                            w.num_attention_heads == c.num_attention_heads &&
                            w.intermediate_size == c.intermediate_size,
                        "--backbone ", o.backbone, " (", c.num_hidden_layers, " layers, hidden ",
                        c.hidden_size, ") disagrees with '", cfg, "' (", w.num_hidden_layers,
                        " layers, hidden ", w.hidden_size, "); use --backbone bert to take that size");
      c = w;
    }
  }
  GRAFT_CHECK_USAGE(c.vocab_size == vocab_size, "the model's vocab_size ", c.vocab_size,
                    (cfg.empty() ? std::string() : str_cat(" ('", cfg, "')")),
                    " disagrees with the vocabulary (", vocab_size,
                    " tokens); give the vocab.txt the model was trained with (--vocab)");
  GRAFT_CHECK_USAGE(o.max_length <= c.max_position_embeddings, "--max-length ", o.max_length,
                    " exceeds the model's max_position_embeddings ", c.max_position_embeddings);
  if (o.dropout >= 0) c.hidden_dropout_prob = c.attention_probs_dropout_prob = o.dropout;
  return c;
}

std::string resolve_vocab(const TrainOptions& o, const std::string& wfile) {
  if (!o.vocab.empty()) {
    GRAFT_CHECK_USAGE(fs::is_regular_file(o.vocab), "--vocab: '", o.vocab,
                      "' is not a file (expected a WordPiece vocab.txt)");
    return o.vocab;
  }
  if (!wfile.empty()) {
    fs::path p = fs::path(wfile).parent_path() / "vocab.txt";
    if (fs::exists(p)) return p.string();
  }
  throw UsageError(str_cat("--vocab: a WordPiece vocab.txt is required",
                           wfile.empty() ? std::string() : str_cat(" (there is none beside '", wfile, "')")));
}

}  // namespace

TextSourceBuilder::TextSourceBuilder(const TrainOptions& o, int64_t world) : so_(o), source_world_(world) {
  is_tfidf_ = o.backbone == "tfidf";
  is_cnn_ = o.backbone == "textcnn";
  is_use_ = o.backbone == "use-lite";  // [use-lite] --weights is the model's folder
  GRAFT_CHECK_USAGE(!is_use_ || o.weights != "none", "--weights none: the use-lite backbone needs its folder "
                    "(expected --weights DIR, the folder scripts/use_lite.sh prints)");
  wfile_ = (is_tfidf_ || is_cnn_) ? "" : is_use_ ? o.weights : text_weights_file(o.weights);
  GRAFT_CHECK_USAGE(!((is_tfidf_ || is_cnn_) && o.weights != "none"), "--weights: the ", o.backbone,
                    " backbone has no source weights (got '", o.weights, "'; expected none",
                    is_cnn_ ? "; word vectors are --embeddings" : "", ")");
  GRAFT_CHECK_USAGE(is_use_ || wfile_.empty() || fs::exists(wfile_), "--weights: '", o.weights,
                    "' does not exist (expected a BERT weight file, a pretraining run or a Hugging "
                    "Face folder, or none)");
  describe_model();
}

std::vector<std::string> TextSourceBuilder::build_network() {
  GRAFT_CHECK(!is_tfidf_, "build_network: the tfidf backbone is fitted by the trainer");
  seed_everything(mix_seed(so_.seed, 201));
  return is_cnn_ ? build_textcnn() : is_use_ ? build_use_lite() : build_bert();
}

// Tokenizer and model description: checked before any data is read.
void TextSourceBuilder::describe_model() {
  GRAFT_CHECK_USAGE(is_cnn_ || (so_.embeddings == "none" && !so_.freeze_embeddings), so_.embeddings != "none"
                    ? "--embeddings" : "--freeze-embeddings", ": only the textcnn backbone reads word vectors "
                    "(got --backbone ", so_.backbone, ")");
  if (is_cnn_) return describe_textcnn();
  if (is_use_) return describe_use_lite();  // [use-lite]
  vocab_path_ = resolve_vocab(so_, wfile_);
  WordPieceOptions wo;
  wo.lower_case = !so_.cased;
  wp_ = std::make_shared<WordPiece>(WordPiece::from_file(vocab_path_, wo));
  m_.tokenizer = wp_;
  m_.info.architecture = is_tfidf_ ? "tfidf" : "bert";
  m_.info.backbone = so_.backbone;
  m_.info.lower_case = wo.lower_case;
  m_.info.source_weights = so_.weights;
  // TF-IDF counts every token; BERT reads at most max_length.
  m_.info.max_length = is_tfidf_ ? (int64_t(1) << 30) : so_.max_length;
  if (is_tfidf_) {
    GRAFT_CHECK_USAGE(so_.strategy == "linear", "--strategy: '", so_.strategy,
                      "' (the tfidf backbone has nothing to fine-tune; expected linear)");
  } else {
    m_.info.bert = resolve_config(so_, wfile_, static_cast<int64_t>(wp_->size()));
    num_layers_ = m_.info.bert.num_hidden_layers;
    strategy_ = parse_strategy(so_.strategy, static_cast<int>(num_layers_));
    GRAFT_CHECK_USAGE(so_.head != "centroid" || strategy_.kind == Strategy::kLinear, "--head centroid with "
                      "--strategy ", so_.strategy, ": a centroid head is fitted on the frozen encoder's features "
                      "(expected --strategy linear; to fine-tune, train a linear head)");
    GRAFT_CHECK_USAGE(source_world_ == 1 || so_.head != "centroid", "--head centroid with ", source_world_, " workers: a "
                      "centroid head is fitted in one pass over the features, in one process (expected --nproc 1)");
    m_.info.head = so_.head;
  }
  m_.info.classifier_dropout = m_.info.bert.hidden_dropout_prob;
  // Source weights are read and checked before any long work.
  if (!wfile_.empty()) {
    source_ = read_weights(wfile_);
    check_finite_weights(source_, wfile_);
  }
}

// [use-lite] The model folder read and checked before any data: its
// graph's sizes, tokenizer and weights.
void TextSourceBuilder::describe_use_lite() {
  GRAFT_CHECK_USAGE(fs::is_directory(wfile_), "--weights: '", wfile_, "' is not a folder (the use-lite backbone "
                    "reads the folder scripts/use_lite.sh prints: model.json, its 7 shards, vocab.json)");
  UseLiteSource src = read_use_lite(wfile_);
  vocab_path_ = (fs::path(wfile_) / "vocab.json").string();
  m_.use_tokenizer = src.tokenizer;
  m_.info.architecture = "use-lite";
  m_.info.backbone = so_.backbone;
  m_.info.lower_case = false;
  m_.info.source_weights = so_.weights;
  m_.info.use_lite = src.config;
  GRAFT_CHECK_USAGE(so_.max_length >= 1, "--max-length ", so_.max_length, " (expected at least 1)");
  // The graph reads at most its own limit (128 tokens).
  m_.info.max_length = std::min<int64_t>(so_.max_length, src.config.max_length);
  num_layers_ = 2;
  strategy_ = parse_strategy(so_.strategy, static_cast<int>(num_layers_));
  GRAFT_CHECK_USAGE(so_.head == "linear", "--head ", so_.head, ": the use-lite backbone takes a linear head "
                    "(expected --head linear)");
  m_.info.classifier_dropout = so_.dropout >= 0 ? so_.dropout : 0.1;
  use_source_ = std::move(src.weights);
}

std::vector<std::string> TextSourceBuilder::build_use_lite() {
  m_.use_lite = UseLiteClassifier(m_.info.use_lite, static_cast<int64_t>(m_.info.classes.size()),
                                  m_.info.classifier_dropout);
  load_use_lite_weights(*m_.use_lite->use, use_source_, wfile_);
  use_source_.clear();
  return apply_layer_strategy(*m_.use_lite);  // BERT's stage names under 'use.'
}

// ---- textcnn (issue 18): Kim's CNN over word vectors (text/textcnn.h).
void TextSourceBuilder::describe_textcnn() {
  m_.info.architecture = "textcnn";
  m_.info.backbone = so_.backbone;
  m_.info.lower_case = true;
  m_.info.source_weights = so_.embeddings;
  m_.info.max_length = so_.max_length;
  GRAFT_CHECK_USAGE(so_.strategy == "full", "--strategy: '", so_.strategy, "' (the textcnn backbone trains "
                    "everything; expected full, and --freeze-embeddings for fixed word vectors)");
  GRAFT_CHECK_USAGE(so_.head == "linear", "--head ", so_.head, ": the textcnn backbone takes --head linear");
  GRAFT_CHECK_USAGE(!(so_.freeze_embeddings && so_.embeddings == "none"), "--freeze-embeddings with --embeddings "
                    "none: random vectors kept fixed (expected --embeddings FILE)");
  if (so_.embeddings != "none") {  // checked before any data is read
    const WordVectors v = read_word_vectors(so_.embeddings, "--embeddings");
    m_.info.textcnn.embedding_dim = v.dim();
  }
  if (so_.dropout >= 0) m_.info.textcnn.dropout = so_.dropout;
  m_.info.textcnn.static_embeddings = so_.freeze_embeddings;
  m_.info.textcnn.embeddings = so_.embeddings;
  strategy_ = parse_strategy("full", 1);
}

void TextSourceBuilder::set_training_texts(const std::vector<std::string>& classes, bool pairs,
                                           const std::vector<TextExample>& train) {
  m_.info.classes = classes;
  m_.info.pairs = pairs;
  if (is_cnn_) {  // textcnn: the training words
    GRAFT_CHECK_USAGE(!pairs, "--data '", so_.data, "' holds text pairs; the textcnn backbone reads single texts");
    std::vector<std::vector<std::string>> tokens;
    for (const auto& x : train) tokens.push_back(word_tokens(x.text));
    m_.words = std::make_shared<WordVocab>(WordVocab::build(tokens));
    m_.info.textcnn.vocab_size = m_.words->size();
  }
  GRAFT_CHECK_USAGE(!(is_use_ && pairs), "--data '", so_.data, "' has text pairs; the use-lite backbone "
                    "reads one text per example (expected one text column)");
}

std::vector<std::string> TextSourceBuilder::build_textcnn() {
  m_.textcnn = TextCnn(m_.info.textcnn, static_cast<int64_t>(m_.info.classes.size()));
  emb_ = init_textcnn_embeddings(*m_.textcnn, *m_.words, so_.embeddings, mix_seed(so_.seed, 211));
  if (so_.embeddings == "none")
    log_info(str_cat("textcnn: ", emb_.words, " training words, random vectors (CNN-rand)"));
  else
    log_info(str_cat("textcnn: ", emb_.words, " training words, ", emb_.found, " found in '", so_.embeddings,
                     "', ", emb_.oov, " OOV drawn uniformly in [-0.25, 0.25]",
                     so_.freeze_embeddings ? " (static)" : " (non-static)"));
  m_.textcnn->embedding->weight.set_requires_grad(!so_.freeze_embeddings);
  std::vector<std::string> trainable{"head", "convs"};
  if (!so_.freeze_embeddings) trainable.push_back("embeddings");
  return trainable;
}

std::vector<std::string> TextSourceBuilder::build_bert() {
  m_.bert = BertClassifier(m_.info.bert, static_cast<int64_t>(m_.info.classes.size()), m_.info.classifier_dropout,
                           m_.info.head);
  init_bert_weights(*m_.bert);
  centroid_ = as_centroid(*m_.bert->classifier.ptr());
  if (!wfile_.empty()) load_source();
  return apply_layer_strategy(*m_.bert);
}

// The strategy on a BERT-shaped encoder (BERT, and use-lite, whose
// parameters carry BERT's stage names): linear trains the head; partial:N
// the last N layers, the pooler and the head; full everything. Returns the
// trainable stages, head first.
std::vector<std::string> TextSourceBuilder::apply_layer_strategy(torch::nn::Module& model) {
  const int64_t L = num_layers_;
  for (auto& p : model.named_parameters()) {
    const int stage = bert_stage(p.key(), L);
    bool on = stage < 0;
    if (strategy_.kind == Strategy::kFull) on = true;
    if (strategy_.kind == Strategy::kPartial) on = on || stage > L - strategy_.stages;  // the last N layers and the pooler
    p.value().set_requires_grad(on);
  }
  std::vector<std::string> trainable{"head"};
  if (strategy_.kind != Strategy::kLinear) trainable.push_back("pooler");
  for (int64_t s = L; s >= 1; --s)
    if (strategy_.kind == Strategy::kFull || (strategy_.kind == Strategy::kPartial && s > L - strategy_.stages))
      trainable.push_back(str_cat("layer.", s - 1));
  if (strategy_.kind == Strategy::kFull) trainable.push_back("embeddings");
  return trainable;
}

// A text run as the source: its classifier is replaced by the new head.
void TextSourceBuilder::load_source() {
  TensorList encoder;
  for (auto& [name, t] : source_)
    if (name.rfind("classifier.", 0) != 0) encoder.emplace_back(name, t);
  LoadReport r = load_bert_weights(*m_.bert, encoder);
  GRAFT_CHECK(r.mismatched.empty(), "--weights '", wfile_, "' does not fit the model of ",
              config_beside(wfile_).empty() ? std::string("--backbone ") + so_.backbone
                                            : "'" + config_beside(wfile_) + "'",
              ": ", r.summary());
  GRAFT_CHECK(r.loaded > 0, "--weights '", wfile_, "' shares no tensor with BERT: ", r.summary());
  std::vector<std::string> missing;
  for (const auto& n : r.missing)
    if (n.rfind("classifier.", 0) != 0) missing.push_back(n);
  GRAFT_CHECK(missing.empty() || !so_.weights_strict, "--weights '", wfile_, "' lacks ", missing.size(),
              " tensors (--weights-strict): ", r.summary());
  if (!missing.empty())
    log_warn(str_cat("--weights '", wfile_, "': ", missing.size(), " tensors not in the file keep their random "
                     "initialisation (", missing.front(), (missing.size() > 1 ? ", ..." : ""), ")"));
}

}  // namespace graft
