#include "graft/text/text_train.h"

#include <chrono>
#include <functional>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <random>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/data/order.h"
#include "graft/dist/group.h"
#include "graft/dist/reducer.h"
#include "graft/dist/sampler.h"
#include "graft/models/head.h"
#include "graft/report/report.h"
#include "graft/text/text_data.h"
#include "graft/text/glove.h"
#include "graft/text/text_eval.h"
#include "graft/text/text_model.h"
#include "graft/train/checkpoint.h"
#include "graft/train/trainer.h"
#include "graft/weights/state_dict.h"

namespace fs = std::filesystem;

namespace graft {

namespace {

// Runs of this many optimiser batches are sorted by length (Hugging Face's
// LengthGroupedSampler uses 50).
constexpr int64_t kBucketBatches = 50;

TextSet read_set(const std::string& path, const std::string& option, const TrainOptions& o,
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

// A stratified split of the examples: round(fraction x count) of each class,
// at least one, chosen seeded.
std::pair<std::vector<TextExample>, std::vector<TextExample>> split_examples(
    const TextSet& set, double fraction, uint64_t seed) {
  std::vector<std::vector<size_t>> by(set.classes.size());
  for (size_t i = 0; i < set.examples.size(); ++i)
    by[static_cast<size_t>(set.examples[i].label)].push_back(i);
  std::vector<bool> to_val(set.examples.size(), false);
  if (fraction > 0) {
    for (size_t c = 0; c < by.size(); ++c) {
      const size_t count = by[c].size();
      size_t k = std::max<size_t>(1, static_cast<size_t>(std::llround(fraction * double(count))));
      GRAFT_CHECK(k < count, "--val-split ", fraction, " leaves class '", set.classes[c], "' of '",
                  set.source, "' empty on one side (it has ", count, " texts, ", k,
                  " would go to validation; expected at least 2 per class, or a smaller --val-split)");
      auto order = epoch_order(count, mix_seed(seed, 101, c), 0, true);
      for (size_t j = 0; j < k; ++j) to_val[by[c][order[j]]] = true;
    }
  }
  std::pair<std::vector<TextExample>, std::vector<TextExample>> out;
  for (size_t i = 0; i < set.examples.size(); ++i)
    (to_val[i] ? out.second : out.first).push_back(set.examples[i]);
  return out;
}

struct Encoded {
  std::vector<EncodedText> inputs;
  std::vector<int64_t> labels, lengths;
  std::vector<std::string> ids;  // "FILE:LINE"
  int64_t truncated_texts = 0, truncated_tokens = 0;
};

Encoded encode_all(const std::vector<TextExample>& examples, const WordPiece* wp, int64_t max_length,
                   bool pairs, const std::string& source, const WordVocab* words = nullptr) {
  Encoded e;
  for (const auto& x : examples) {
    if (words) {  // textcnn: word ids
      int64_t dropped = 0;
      EncodedText t = words->encode(x.text, max_length, &dropped);
      e.truncated_texts += dropped > 0;
      e.truncated_tokens += dropped;
      e.lengths.push_back(static_cast<int64_t>(t.ids.size()));
      e.inputs.push_back(std::move(t));
      e.labels.push_back(x.label);
      e.ids.push_back(str_cat(source, ":", x.line));
      continue;
    }
    Encoding enc = pairs ? wp->encode(x.text, x.text_b, static_cast<int>(max_length))
                         : wp->encode(x.text, std::nullopt, static_cast<int>(max_length));
    if (enc.num_truncated > 0) {
      e.truncated_texts += 1;
      e.truncated_tokens += enc.num_truncated;
    }
    e.lengths.push_back(static_cast<int64_t>(enc.input_ids.size()));
    e.inputs.push_back({std::move(enc.input_ids), std::move(enc.token_type_ids)});
    e.labels.push_back(x.label);
    e.ids.push_back(str_cat(source, ":", x.line));
  }
  return e;
}

// [use-lite] The examples as SentencePiece ids, cut at max_length (counted).
Encoded encode_all_use_lite(const std::vector<TextExample>& examples, const TextModel& m, const std::string& source) {
  Encoded e;
  for (const auto& x : examples) {
    int64_t cut = 0;
    e.inputs.push_back(m.encode(x.text, "", &cut));
    if (cut > 0) {
      e.truncated_texts += 1;
      e.truncated_tokens += cut;
    }
    e.lengths.push_back(static_cast<int64_t>(e.inputs.back().ids.size()));
    e.labels.push_back(x.label);
    e.ids.push_back(str_cat(source, ":", x.line));
  }
  return e;
}

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

std::vector<int64_t> class_counts(const std::vector<int64_t>& labels, size_t classes) {
  std::vector<int64_t> counts(classes, 0);
  for (auto y : labels) counts[static_cast<size_t>(y)] += 1;
  return counts;
}

}  // namespace

std::vector<ParamGroup> text_param_groups(torch::nn::Module& model, const TrainOptions& o,
                                          int64_t num_layers) {
  std::map<int, ParamGroup> by;  // key: depth from the top, -1 the head; x2 (+1: no decay)
  for (const auto& p : model.named_parameters()) {
    if (!p.value().requires_grad()) continue;
    const int stage = bert_stage(p.key(), num_layers);
    const bool decay = p.value().dim() >= 2;
    // Depth from the top: the pooler and the last layer 0, the embeddings L.
    const int L = static_cast<int>(num_layers);
    const int depth = stage < 0 ? -1 : stage > L ? 0 : L - stage;
    int key = depth * 2 + (decay ? 0 : 1);
    ParamGroup& g = by[key];
    if (g.params.empty()) {
      g.name = depth < 0 ? "head" : (depth == static_cast<int>(num_layers) ? "embeddings"
                                                                          : str_cat("layer.", num_layers - 1 - depth));
      if (!decay) g.name += "/no_decay";
      g.lr = depth < 0 ? o.lr : o.lr * o.backbone_lr_mult * std::pow(o.layer_decay, depth);
      g.weight_decay = decay ? o.weight_decay : 0.0;
    }
    g.params.push_back(p.value());
  }
  std::vector<ParamGroup> groups;
  for (auto& [k, g] : by) groups.push_back(std::move(g));
  return groups;
}

namespace {

// One text run: everything before the loop in the constructor, the steps for
// the loop after. TF-IDF and a frozen BERT (linear) train the head on rows
// computed once; otherwise every step runs BERT.
class TextTask final : public TaskRun {
 public:
  explicit TextTask(const TrainOptions& o) : TaskRun(o) {
    GRAFT_CHECK_USAGE(o.batch_size % world_ == 0, "--batch-size ", o.batch_size, " is the global batch of ",
                      world_, " workers and must be a multiple of ", world_);
    local_batch_ = o.batch_size / world_;
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
    set_threads(o.threads);
    describe_model();
    read_data();
    if (rank_ == 0) prepare_run_dir(o);
    if (group_) group_->barrier("start of training (rank 0 prepares the run directory)");
    seed_everything(mix_seed(o.seed, 201));
    const std::vector<std::string> trainable =
        is_tfidf_ ? build_tfidf() : is_cnn_ ? build_textcnn() : is_use_ ? build_use_lite() : build_bert();
    write_config(trainable);
    cache_rows();
    n_train_ = static_cast<int64_t>(train_.inputs.size());
    step_batch_ = o.batch_size * o.grad_accum;
    class_w_ = class_weight_tensor(o, class_counts(train_.labels, classes_.size()));
    // Only the BERT forward pass gains from batches of similar length.
    bucket_ = (o.bucket && !cached_ && !is_tfidf_) ? kBucketBatches : 1;
  }

  torch::nn::Module& module() override { return m_.module(); }
  std::vector<ParamGroup> param_groups() override {
    if (!is_tfidf_) return text_param_groups(module(), o_, num_layers_);
    ParamGroup w{"head", {m_.tfidf_head->classifier->weight}, o_.lr, o_.weight_decay};
    ParamGroup b{"head/no_decay", {m_.tfidf_head->classifier->bias}, o_.lr, 0.0};
    return {w, b};
  }
  int64_t steps_per_epoch() override { return (n_train_ + step_batch_ - 1) / step_batch_; }
  int64_t items_per_epoch() override { return (n_train_ + world_ - 1) / world_; }
  const char* unit() const override { return "texts/s"; }
  bool one_pass() const override { return centroid_ != nullptr; }
  bool one_backward_per_step() const override { return o_.grad_accum == 1; }

  void begin_epoch(int64_t epoch, int64_t first_step) override {
    // Dropout: each rank its own stream (rank 0's is that of a run alone).
    if (first_step == 0)
      torch::manual_seed(mix_seed(o_.seed, 301 + static_cast<uint64_t>(rank_), static_cast<uint64_t>(epoch)));
    module().train();
    if (cached_ && m_.bert) m_.bert->bert->eval();
    if (cached_ && m_.use_lite) m_.use_lite->use->eval();  // [use-lite]
    batches_ = length_batches(epoch_order(static_cast<size_t>(n_train_), o_.seed, epoch, true), train_.lengths,
                              step_batch_, bucket_);
    if (bucket_ > 1) {
      // Long and short batches interleaved, not in runs.
      auto perm = epoch_order(batches_.size(), mix_seed(o_.seed, 401), epoch, true);
      std::vector<std::vector<int64_t>> shuffled;
      for (size_t i : perm) shuffled.push_back(std::move(batches_[i]));
      batches_ = std::move(shuffled);
    }
  }

  StepStats step(int64_t /*epoch*/, int64_t b) override {
    const auto& global = batches_[static_cast<size_t>(b)];
    // This rank's texts of the step: every world-th, from its rank.
    std::vector<int64_t> batch;
    for (size_t i = static_cast<size_t>(rank_); i < global.size(); i += static_cast<size_t>(world_))
      batch.push_back(global[i]);
    // Each text's loss weighs 1 / (texts in the whole step), so that the sum
    // over micro-batches, and the mean over ranks x world, is the gradient of
    // one batch of the whole step.
    const double n = static_cast<double>(global.size()) / world_;
    StepStats st;
    if (centroid_) {
      // A centroid head is fitted, not trained: the cached features are
      // summed into their class rows and the optimiser does not step.
      std::vector<int64_t> ys;
      for (int64_t i : batch) ys.push_back(train_.labels[static_cast<size_t>(i)]);
      centroid_->add(train_feats_.index_select(0, torch::tensor(batch, torch::kInt64)),
                     torch::tensor(ys, torch::kInt64));
      st.items = static_cast<int64_t>(batch.size());
      st.skip = true;
      return st;
    }
    for (size_t s = 0; s < batch.size(); s += static_cast<size_t>(local_batch_)) {
      const auto end = batch.begin() + static_cast<std::ptrdiff_t>(
                                           std::min(batch.size(), s + static_cast<size_t>(local_batch_)));
      std::vector<int64_t> micro(batch.begin() + static_cast<std::ptrdiff_t>(s), end);
      std::vector<int64_t> ys;
      for (int64_t i : micro) ys.push_back(train_.labels[static_cast<size_t>(i)]);
      torch::Tensor y = torch::tensor(ys, torch::kInt64);
      torch::Tensor logits = batch_logits(train_, train_rows_, train_feats_, micro);
      torch::Tensor loss = classification_loss(o_, logits, y, class_w_);
      (loss * (static_cast<double>(micro.size()) / n)).backward();
      st.loss_sum += loss.item<double>() * static_cast<double>(micro.size());
      st.correct += logits.argmax(1).eq(y).sum().item<int64_t>();
    }
    st.count = st.items = static_cast<int64_t>(batch.size());
    return st;
  }

  bool has_validation() override { return !val_.inputs.empty(); }

  Metrics validate() override {
    finish_centroids();
    torch::Tensor logits;
    if (cached_ || is_tfidf_) {
      torch::InferenceMode guard;
      module().eval();
      std::vector<int64_t> all(val_.inputs.size());
      std::iota(all.begin(), all.end(), 0);
      logits = batch_logits(val_, val_rows_, val_feats_, all);
    } else {
      logits = sharded_rows(group_.get(), static_cast<int64_t>(val_.inputs.size()), "validation logits",
                            [&](const std::vector<size_t>& which) {
                              std::vector<EncodedText> part;
                              for (size_t i : which) part.push_back(val_.inputs[i]);
                              return m_.logits(part, std::max<int64_t>(local_batch_, 64));
                            });
    }
    val_logits_ = {logits.cpu(), torch::tensor(val_.labels, torch::kInt64)};
    return compute_metrics(val_logits_.first, val_logits_.second, classes_);
  }

  std::pair<torch::Tensor, torch::Tensor> validation_logits() override { return val_logits_; }

  void save_model() override {
    finish_centroids();
    save_text_model(o_.out, m_);
  }

  void test(TrainSummary& summary) override {
    if (o_.test.empty()) return;
    const TextEvaluation test = evaluate_text_run(o_.out, o_.test, text_read_options(o_),
                                                  std::max<int64_t>(o_.batch_size, 64), "--test", o_.out);
    summary.has_test = true;
    summary.test = test.metrics;
  }

 private:
  std::pair<torch::Tensor, torch::Tensor> val_logits_;  // of the last validate()

  // The class sums of a centroid head become unit-length means once its
  // pass is over (a checkpoint taken during the pass keeps the sums).
  void finish_centroids() {
    if (!centroid_ || centroids_done_) return;
    centroid_->finish();
    centroids_done_ = true;
  }

  // Tokenizer and model description: checked before any data is read.
  void describe_model() {
    GRAFT_CHECK_USAGE(is_cnn_ || (o_.embeddings == "none" && !o_.freeze_embeddings), o_.embeddings != "none"
                      ? "--embeddings" : "--freeze-embeddings", ": only the textcnn backbone reads word vectors "
                      "(got --backbone ", o_.backbone, ")");
    if (is_cnn_) return describe_textcnn();
    if (is_use_) return describe_use_lite();  // [use-lite]
    vocab_path_ = resolve_vocab(o_, wfile_);
    WordPieceOptions wo;
    wo.lower_case = !o_.cased;
    wp_ = std::make_shared<WordPiece>(WordPiece::from_file(vocab_path_, wo));
    m_.tokenizer = wp_;
    m_.info.architecture = is_tfidf_ ? "tfidf" : "bert";
    m_.info.backbone = o_.backbone;
    m_.info.lower_case = wo.lower_case;
    m_.info.source_weights = o_.weights;
    // TF-IDF counts every token; BERT reads at most max_length.
    m_.info.max_length = is_tfidf_ ? (int64_t(1) << 30) : o_.max_length;
    if (is_tfidf_) {
      GRAFT_CHECK_USAGE(o_.strategy == "linear", "--strategy: '", o_.strategy,
                        "' (the tfidf backbone has nothing to fine-tune; expected linear)");
    } else {
      m_.info.bert = resolve_config(o_, wfile_, static_cast<int64_t>(wp_->size()));
      num_layers_ = m_.info.bert.num_hidden_layers;
      strategy_ = parse_strategy(o_.strategy, static_cast<int>(num_layers_));
      GRAFT_CHECK_USAGE(o_.head != "centroid" || strategy_.kind == Strategy::kLinear, "--head centroid with "
                        "--strategy ", o_.strategy, ": a centroid head is fitted on the frozen encoder's features "
                        "(expected --strategy linear; to fine-tune, train a linear head)");
      GRAFT_CHECK_USAGE(world_ == 1 || o_.head != "centroid", "--head centroid with ", world_, " workers: a "
                        "centroid head is fitted in one pass over the features, in one process (expected --nproc 1)");
      m_.info.head = o_.head;
    }
    m_.info.classifier_dropout = m_.info.bert.hidden_dropout_prob;
    // Source weights are read and checked before any long work.
    if (!wfile_.empty()) {
      source_ = read_weights(wfile_);
      check_finite_weights(source_, wfile_);
    }
  }

  void read_data() {
    train_set_ = read_set(o_.data, "--data", o_, {});
    std::vector<TextExample> train_ex, val_ex;
    std::string val_source = o_.data;
    if (o_.val.empty()) {
      std::tie(train_ex, val_ex) = split_examples(train_set_, o_.val_split, o_.seed);
    } else {
      train_ex = train_set_.examples;
      val_ex = read_set(o_.val, "--val", o_, train_set_.classes).examples;
      val_source = o_.val;
    }
    if (!o_.test.empty()) test_size_ = read_set(o_.test, "--test", o_, train_set_.classes).examples.size();
    classes_ = train_set_.classes;
    const int64_t num_classes = static_cast<int64_t>(classes_.size());
    GRAFT_CHECK(num_classes >= 2, "--data '", o_.data, "' has ", num_classes, " class (expected at least 2 labels)");
    m_.info.classes = classes_;
    m_.info.pairs = train_set_.has_pairs;
    if (is_cnn_) build_word_vocab(train_ex);  // textcnn: the training words
    GRAFT_CHECK_USAGE(!(is_use_ && m_.info.pairs), "--data '", o_.data, "' has text pairs; the use-lite backbone "
                      "reads one text per example (expected one text column)");
    if (is_use_) {  // [use-lite]
      train_ = encode_all_use_lite(train_ex, m_, o_.data);
      val_ = encode_all_use_lite(val_ex, m_, val_source);
    } else {
      train_ = encode_all(train_ex, wp_.get(), m_.info.max_length, m_.info.pairs, o_.data, m_.words.get());
      val_ = encode_all(val_ex, wp_.get(), m_.info.max_length, m_.info.pairs, val_source, m_.words.get());
    }
    for (const auto* e : {&train_, &val_})
      if (e->truncated_texts > 0)
        log_warn(str_cat(e->truncated_texts, " of ", e->inputs.size(), " texts of '",
                         e == &train_ ? o_.data : val_source, "' are longer than --max-length ", o_.max_length,
                         " tokens and were truncated (", e->truncated_tokens, " tokens dropped)"));
  }

  // [use-lite] The model folder read and checked before any data: its
  // graph's sizes, tokenizer and weights.
  void describe_use_lite() {
    GRAFT_CHECK_USAGE(fs::is_directory(wfile_), "--weights: '", wfile_, "' is not a folder (the use-lite backbone "
                      "reads the folder scripts/use_lite.sh prints: model.json, its 7 shards, vocab.json)");
    UseLiteSource src = read_use_lite(wfile_);
    vocab_path_ = (fs::path(wfile_) / "vocab.json").string();
    m_.use_tokenizer = src.tokenizer;
    m_.info.architecture = "use-lite";
    m_.info.backbone = o_.backbone;
    m_.info.lower_case = false;
    m_.info.source_weights = o_.weights;
    m_.info.use_lite = src.config;
    GRAFT_CHECK_USAGE(o_.max_length >= 1, "--max-length ", o_.max_length, " (expected at least 1)");
    // The graph reads at most its own limit (128 tokens).
    m_.info.max_length = std::min<int64_t>(o_.max_length, src.config.max_length);
    num_layers_ = 2;
    strategy_ = parse_strategy(o_.strategy, static_cast<int>(num_layers_));
    GRAFT_CHECK_USAGE(o_.head == "linear", "--head ", o_.head, ": the use-lite backbone takes a linear head "
                      "(expected --head linear)");
    m_.info.classifier_dropout = o_.dropout >= 0 ? o_.dropout : 0.1;
    use_source_ = std::move(src.weights);
  }

  std::vector<std::string> build_use_lite() {
    m_.use_lite = UseLiteClassifier(m_.info.use_lite, static_cast<int64_t>(classes_.size()),
                                    m_.info.classifier_dropout);
    load_use_lite_weights(*m_.use_lite->use, use_source_, wfile_);
    use_source_.clear();
    return apply_layer_strategy(*m_.use_lite);  // BERT's stage names under 'use.'
  }

  std::vector<std::string> build_tfidf() {
    std::vector<std::vector<int64_t>> docs;
    for (const auto& e : train_.inputs) docs.push_back(tfidf_tokens(e));
    m_.tfidf = std::make_shared<Tfidf>(Tfidf::fit(docs, TfidfOptions{}));
    log_info(str_cat("tfidf: ", m_.tfidf->size(), " terms (WordPiece unigrams and bigrams in at least ",
                     TfidfOptions{}.min_df, " training texts)"));
    GRAFT_CHECK(m_.tfidf->size() > 0, "--data '", o_.data, "': no term occurs in ", TfidfOptions{}.min_df,
                " training texts (expected a larger training set)");
    m_.tfidf_head = TfidfClassifier(m_.tfidf->size(), static_cast<int64_t>(classes_.size()));
    return {"head"};
  }

  // ---- textcnn (issue 18): Kim's CNN over word vectors (text/textcnn.h).
  void describe_textcnn() {
    m_.info.architecture = "textcnn";
    m_.info.backbone = o_.backbone;
    m_.info.lower_case = true;
    m_.info.source_weights = o_.embeddings;
    m_.info.max_length = o_.max_length;
    GRAFT_CHECK_USAGE(o_.strategy == "full", "--strategy: '", o_.strategy, "' (the textcnn backbone trains "
                      "everything; expected full, and --freeze-embeddings for fixed word vectors)");
    GRAFT_CHECK_USAGE(o_.head == "linear", "--head ", o_.head, ": the textcnn backbone takes --head linear");
    GRAFT_CHECK_USAGE(!(o_.freeze_embeddings && o_.embeddings == "none"), "--freeze-embeddings with --embeddings "
                      "none: random vectors kept fixed (expected --embeddings FILE)");
    if (o_.embeddings != "none") {  // checked before any data is read
      const WordVectors v = read_word_vectors(o_.embeddings, "--embeddings");
      m_.info.textcnn.embedding_dim = v.dim();
    }
    if (o_.dropout >= 0) m_.info.textcnn.dropout = o_.dropout;
    m_.info.textcnn.static_embeddings = o_.freeze_embeddings;
    m_.info.textcnn.embeddings = o_.embeddings;
    strategy_ = parse_strategy("full", 1);
  }

  void build_word_vocab(const std::vector<TextExample>& train_ex) {
    GRAFT_CHECK_USAGE(!train_set_.has_pairs, "--data '", o_.data, "' holds text pairs; the textcnn backbone "
                      "reads single texts");
    std::vector<std::vector<std::string>> tokens;
    for (const auto& x : train_ex) tokens.push_back(word_tokens(x.text));
    m_.words = std::make_shared<WordVocab>(WordVocab::build(tokens));
    m_.info.textcnn.vocab_size = m_.words->size();
  }

  std::vector<std::string> build_textcnn() {
    m_.textcnn = TextCnn(m_.info.textcnn, static_cast<int64_t>(classes_.size()));
    emb_ = init_textcnn_embeddings(*m_.textcnn, *m_.words, o_.embeddings, mix_seed(o_.seed, 211));
    if (o_.embeddings == "none")
      log_info(str_cat("textcnn: ", emb_.words, " training words, random vectors (CNN-rand)"));
    else
      log_info(str_cat("textcnn: ", emb_.words, " training words, ", emb_.found, " found in '", o_.embeddings,
                       "', ", emb_.oov, " OOV drawn uniformly in [-0.25, 0.25]",
                       o_.freeze_embeddings ? " (static)" : " (non-static)"));
    m_.textcnn->embedding->weight.set_requires_grad(!o_.freeze_embeddings);
    std::vector<std::string> trainable{"head", "convs"};
    if (!o_.freeze_embeddings) trainable.push_back("embeddings");
    return trainable;
  }

  std::vector<std::string> build_bert() {
    m_.bert = BertClassifier(m_.info.bert, static_cast<int64_t>(classes_.size()), m_.info.classifier_dropout,
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
  std::vector<std::string> apply_layer_strategy(torch::nn::Module& model) {
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
  void load_source() {
    TensorList encoder;
    for (auto& [name, t] : source_)
      if (name.rfind("classifier.", 0) != 0) encoder.emplace_back(name, t);
    LoadReport r = load_bert_weights(*m_.bert, encoder);
    GRAFT_CHECK(r.mismatched.empty(), "--weights '", wfile_, "' does not fit the model of ",
                config_beside(wfile_).empty() ? std::string("--backbone ") + o_.backbone
                                              : "'" + config_beside(wfile_) + "'",
                ": ", r.summary());
    GRAFT_CHECK(r.loaded > 0, "--weights '", wfile_, "' shares no tensor with BERT: ", r.summary());
    std::vector<std::string> missing;
    for (const auto& n : r.missing)
      if (n.rfind("classifier.", 0) != 0) missing.push_back(n);
    GRAFT_CHECK(missing.empty() || !o_.weights_strict, "--weights '", wfile_, "' lacks ", missing.size(),
                " tensors (--weights-strict): ", r.summary());
    if (!missing.empty())
      log_warn(str_cat("--weights '", wfile_, "': ", missing.size(), " tensors not in the file keep their random "
                       "initialisation (", missing.front(), (missing.size() > 1 ? ", ..." : ""), ")"));
  }

  void write_config(const std::vector<std::string>& trainable) {
    nlohmann::ordered_json config;
    config["graft_version"] = GRAFT_VERSION;
    config["options"] = to_json(o_);
    config["classes"] = classes_;
    config["counts"] = {{"train", train_.inputs.size()}, {"val", val_.inputs.size()}, {"test", test_size_}};
    config["trainable_stages"] = trainable;
    config["truncated"] = {{"train", train_.truncated_texts}, {"val", val_.truncated_texts}};
    config["skipped_empty"] = train_set_.skipped_empty;
    config["vocab"] = vocab_path_;
    if (is_cnn_) {  // textcnn: the word vocabulary and how its vectors started
      config["vocab"] = "vocab.txt";
      config["embeddings"] = {{"file", emb_.file}, {"words", emb_.words}, {"found", emb_.found}, {"oov", emb_.oov},
                              {"static", o_.freeze_embeddings}};
    }
    if (!o_.resume && rank_ == 0) {
      write_file_atomic(o_.out + "/config.json", config.dump(2) + "\n");
      write_file_atomic(o_.out + (is_use_ ? "/vocab.json" : "/vocab.txt"),
                        is_cnn_ ? m_.words->to_text() : read_file(vocab_path_));
    }
  }

  // Features computed once: TF-IDF rows, or BERT's pooled output when the
  // encoder is frozen.
  void cache_rows() {
    cached_ = !is_tfidf_ && strategy_.kind == Strategy::kLinear;
    if (is_tfidf_) {
      std::vector<std::vector<int64_t>> docs;
      for (const auto& e : train_.inputs) docs.push_back(tfidf_tokens(e));
      train_rows_ = m_.tfidf->transform(docs);
      docs.clear();
      for (const auto& e : val_.inputs) docs.push_back(tfidf_tokens(e));
      val_rows_ = m_.tfidf->transform(docs);
    }
    if (!cached_) return;
    train_feats_ = bert_features(train_, "features train");
    if (!val_.inputs.empty()) val_feats_ = bert_features(val_, "features val");
  }

  torch::Tensor bert_features(const Encoded& set, const char* label) {
    return sharded_rows(group_.get(), static_cast<int64_t>(set.inputs.size()), label,
                        [&](const std::vector<size_t>& which) {
      torch::InferenceMode guard;
      m_.module().eval();
      torch::Tensor out = torch::zeros({static_cast<int64_t>(which.size()),
                                        is_use_ ? m_.info.use_lite.width1 : m_.info.bert.hidden_size});
      std::vector<int64_t> lengths;
      for (size_t i : which) lengths.push_back(set.lengths[i]);
      std::vector<size_t> order(which.size());
      std::iota(order.begin(), order.end(), size_t{0});
      Progress progress(label, static_cast<int64_t>(which.size()));
      for (const auto& b : length_batches(order, lengths, std::max<int64_t>(local_batch_, 64),
                                          static_cast<int64_t>(which.size()))) {
        std::vector<const EncodedText*> items;
        for (int64_t i : b) items.push_back(&set.inputs[which[static_cast<size_t>(i)]]);
        torch::Tensor f;
        if (is_use_) {  // [use-lite]
          TextBatch tb = collate_texts(items, 0);
          f = m_.use_lite->features(tb.input_ids, tb.attention_mask);
        } else {
          f = m_.bert->features(collate_texts(items, wp_->pad_id()));
        }
        out.index_copy_(0, torch::tensor(b, torch::kInt64), f);
        progress.advance(static_cast<int64_t>(b.size()));
      }
      progress.finish();
      return out;
    });
  }

  // Logits of some rows of a set, in the module's current mode.
  torch::Tensor batch_logits(const Encoded& set, const SparseRows& rows, const torch::Tensor& feats,
                             const std::vector<int64_t>& which) {
    if (is_tfidf_) {
      auto [idx, offs, w] = rows.select(which);
      return m_.tfidf_head->forward(idx, offs, w);
    }
    if (cached_ && is_use_) return m_.use_lite->classify(feats.index_select(0, torch::tensor(which, torch::kInt64)));
    if (cached_) return m_.bert->classify(feats.index_select(0, torch::tensor(which, torch::kInt64)));
    std::vector<const EncodedText*> items;
    for (int64_t i : which) items.push_back(&set.inputs[static_cast<size_t>(i)]);
    if (is_cnn_) return m_.textcnn->forward(collate_word_ids(items, m_.info.textcnn.widths.back()));  // textcnn
    if (is_use_) {  // [use-lite]
      TextBatch tb = collate_texts(items, 0);
      return m_.use_lite->forward(tb.input_ids, tb.attention_mask);
    }
    return m_.bert->forward(collate_texts(items, wp_->pad_id()));
  }

  int64_t local_batch_ = 1, num_layers_ = 0, n_train_ = 0, step_batch_ = 1, bucket_ = 1;
  size_t test_size_ = 0;
  bool is_tfidf_ = false, is_use_ = false, cached_ = false, centroids_done_ = false;
  bool is_cnn_ = false;  // textcnn
  EmbeddingInit emb_;    // textcnn: how the embedding started
  CentroidHeadImpl* centroid_ = nullptr;  // the head, when --head centroid
  std::string wfile_, vocab_path_;
  std::shared_ptr<WordPiece> wp_;
  TextModel m_;
  Strategy strategy_;
  TensorList source_, use_source_;
  TextSet train_set_;
  std::vector<std::string> classes_;
  Encoded train_, val_;
  SparseRows train_rows_, val_rows_;
  torch::Tensor train_feats_, val_feats_, class_w_;
  std::vector<std::vector<int64_t>> batches_;
};

}  // namespace

TrainSummary train_text(const TrainOptions& o) { return run_task<TextTask>(o); }

}  // namespace graft
