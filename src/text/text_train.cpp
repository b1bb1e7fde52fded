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
#include "graft/text/text_source.h"
#include "graft/train/adapt.h"
#include "graft/train/checkpoint.h"
#include "graft/train/trainer.h"
#include "graft/weights/state_dict.h"

namespace fs = std::filesystem;

namespace graft {

namespace {

// Runs of this many optimiser batches are sorted by length (Hugging Face's
// LengthGroupedSampler uses 50).
constexpr int64_t kBucketBatches = 50;

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
class TextTask final : public TaskRun, private TextSourceBuilder {
 public:
  // The builder (text/text_source.h) checks the options and reads the source
  // before any data; graft score --task text builds its candidates with it.
  explicit TextTask(const TrainOptions& o) : TaskRun(o), TextSourceBuilder(o, world_) {
    GRAFT_CHECK_USAGE(o.precision != "int8", "--precision int8: for the image linear probe's features (text "
                      "models train in fp32)");
    GRAFT_CHECK_USAGE(o.batch_size % world_ == 0, "--batch-size ", o.batch_size, " is the global batch of ",
                      world_, " workers and must be a multiple of ", world_);
    local_batch_ = o.batch_size / world_;
    set_threads(o.threads);
    read_data();
    if (rank_ == 0) prepare_run_dir(o);
    if (group_) group_->barrier("start of training (rank 0 prepares the run directory)");
    seed_everything(mix_seed(o.seed, 201));
    const std::vector<std::string> trainable = is_tfidf_ ? build_tfidf() : build_network();
    if (o.adapt != "none") attach_adapter();
    write_config(trainable);
    cache_rows();
    n_train_ = static_cast<int64_t>(train_.inputs.size());
    step_batch_ = o.batch_size * o.grad_accum;
    class_w_ = class_weight_tensor(o, class_counts(train_.labels, classes_.size()));
    // Only the BERT forward pass gains from batches of similar length.
    bucket_ = (o.bucket && !cached_ && !is_tfidf_) ? kBucketBatches : 1;
  }

  torch::nn::Module& module() override { return with_adapter_ ? *with_adapter_ : m_.module(); }
  std::vector<ParamGroup> param_groups() override {
    if (!is_tfidf_) {
      auto groups = text_param_groups(m_.module(), o_, num_layers_);
      // --adapt dann|cdan: the domain classifier learns at the head's rate.
      if (adapter_ && !adapter_->parameters().empty())
        groups.push_back(ParamGroup{"domain", adapter_->parameters(), o_.lr, o_.weight_decay});
      return groups;
    }
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
    if (!unl_.inputs.empty()) {
      if (first_step == 0) unlabeled_counts_ = {};  // a resumed epoch counts from there
      // Permutations of the unlabelled texts one after the other, mu x the
      // step's batch per step; the same for every rank and after --resume.
      const size_t need = static_cast<size_t>(steps_per_epoch() * unl_per_step_);
      unl_order_.clear();
      for (int64_t cycle = 0; unl_order_.size() < need; ++cycle) {
        const std::vector<size_t> p = epoch_order(unl_.inputs.size(),
                                                  mix_seed(o_.seed, 401, static_cast<uint64_t>(epoch)), cycle, true);
        unl_order_.insert(unl_order_.end(), p.begin(), p.end());
      }
      unl_order_.resize(need);
    }
  }

  void end_epoch(int64_t /*epoch*/, bool /*whole*/) override {
    if (!unl_.inputs.empty()) finish_unlabeled_epoch();
  }

  StepStats step(int64_t epoch, int64_t b) override {
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
    // --unlabeled: this rank's unlabelled texts of the step, every world-th
    // of the step's share, mu per labelled text of each micro-batch.
    std::vector<size_t> unl;
    if (!unl_.inputs.empty()) {
      const size_t from = static_cast<size_t>(b * unl_per_step_);
      for (size_t i = from + static_cast<size_t>(rank_); i < from + static_cast<size_t>(unl_per_step_);
           i += static_cast<size_t>(world_))
        unl.push_back(unl_order_[i]);
    }
    size_t unl_at = 0;
    for (size_t s = 0; s < batch.size(); s += static_cast<size_t>(local_batch_)) {
      const auto end = batch.begin() + static_cast<std::ptrdiff_t>(
                                           std::min(batch.size(), s + static_cast<size_t>(local_batch_)));
      std::vector<int64_t> micro(batch.begin() + static_cast<std::ptrdiff_t>(s), end);
      std::vector<int64_t> ys;
      for (int64_t i : micro) ys.push_back(train_.labels[static_cast<size_t>(i)]);
      torch::Tensor y = torch::tensor(ys, torch::kInt64);
      torch::Tensor logits, loss;
      if (unl_.inputs.empty()) {
        logits = batch_logits(train_, train_rows_, train_feats_, micro);
        loss = classification_loss(o_, logits, y, class_w_);
      } else {
        const size_t take = std::min(unl.size() - unl_at, micro.size() * static_cast<size_t>(o_.unlabeled_ratio));
        std::vector<size_t> u(unl.begin() + static_cast<std::ptrdiff_t>(unl_at),
                              unl.begin() + static_cast<std::ptrdiff_t>(unl_at + take));
        unl_at += take;
        std::tie(logits, loss) = unlabeled_loss(epoch, b, s, micro, y, u);
      }
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

  // ---- Unlabelled target texts (issue 19, train/adapt.h) ----

  // --unlabeled, read without labels (one text per line, or a text column);
  // empty without --adapt or --self-train.
  std::vector<TextExample> read_unlabeled() {
    if (o_.adapt == "none" && o_.self_train == "none") return {};
    const std::string flag = o_.adapt != "none" ? "--adapt " + o_.adapt : "--self-train " + o_.self_train;
    GRAFT_CHECK_USAGE(!is_tfidf_, flag, " with --backbone ", o_.backbone, ": a TF-IDF model has no learned features "
                      "for unlabelled texts to shape (expected a bert*, textcnn or use-lite backbone)");
    GRAFT_CHECK_USAGE(!train_set_.has_pairs, flag, ": '", o_.data, "' holds text pairs, and unlabelled data is read "
                      "for single texts only (expected a set of single texts)");
    TextReadOptions r = text_read_options(o_);
    r.unlabeled = true;
    r.classes.clear();
    TextSet set;
    try {
      set = read_text_set(o_.unlabeled, r);
    } catch (const UsageError& e) {
      throw UsageError(str_cat("--unlabeled: ", e.what()));
    } catch (const Error& e) {
      throw UsageError(str_cat("--unlabeled: ", e.what()));
    }
    GRAFT_CHECK_USAGE(!set.has_pairs, "--unlabeled '", o_.unlabeled, "' holds text pairs (columns '", set.text_column,
                      "' and '", set.text_b_column, "'); expected single texts (give --text-column)");
    if (set.skipped_empty > 0)
      log_warn(str_cat("--unlabeled '", o_.unlabeled, "': ", set.skipped_empty,
                       " empty or white-space texts skipped (--strict makes them an error)"));
    return std::move(set.examples);
  }

  // The module that holds the encoder and the head, as the adapter's sibling.
  std::shared_ptr<torch::nn::Module> network_ptr() const {
    if (m_.bert) return m_.bert.ptr();
    if (m_.textcnn) return m_.textcnn.ptr();
    return m_.use_lite.ptr();
  }
  int64_t feature_dim() const {
    if (m_.bert) return m_.info.bert.hidden_size;
    if (m_.textcnn) return m_.textcnn->feature_dim();
    return m_.info.use_lite.width1;
  }

  // The domain adapter beside the network: the loop checkpoints, broadcasts
  // and optimises both (as "model." and "adapter."); the saved model is the
  // network alone.
  void attach_adapter() {
    AdaptSpec spec;
    spec.method = o_.adapt;
    spec.feature_dim = feature_dim();
    spec.classes = static_cast<int64_t>(classes_.size());
    spec.hidden = o_.domain_hidden;
    spec.weight = o_.adapt_weight;
    spec.seed = o_.seed;
    seed_everything(mix_seed(o_.seed, 203));
    adapter_ = DomainAdapter(spec);
    with_adapter_ = std::make_shared<torch::nn::Module>();
    with_adapter_->register_module("model", network_ptr());
    with_adapter_->register_module("adapter", adapter_.ptr());
  }

  // The encoder's output (the head's input) of a batch of texts.
  torch::Tensor encoder_features(const std::vector<const EncodedText*>& items) {
    if (is_cnn_) return m_.textcnn->features(collate_word_ids(items, m_.info.textcnn.widths.back()));
    if (is_use_) {
      TextBatch tb = collate_texts(items, 0);
      return m_.use_lite->features(tb.input_ids, tb.attention_mask);
    }
    return m_.bert->features(collate_texts(items, wp_->pad_id()));
  }
  // The head on features (dropout first, as each network's forward does).
  torch::Tensor head_logits(const torch::Tensor& f) {
    if (is_cnn_) return m_.textcnn->classifier->forward(m_.textcnn->dropout->forward(f));
    if (is_use_) return m_.use_lite->classify(f);
    return m_.bert->classify(f);
  }

  // FixMatch's strong view of a text: each token dropped with probability
  // 0.1 (BERT's [CLS] and final [SEP] kept), at least one token kept.
  EncodedText strong_view(const EncodedText& e, std::mt19937_64& gen) const {
    const size_t ends = (is_cnn_ || is_use_) ? 0 : 1;
    if (e.ids.size() <= 2 * ends + 1) return e;
    std::bernoulli_distribution drop(kTokenDropout);
    EncodedText out;
    for (size_t i = 0; i < e.ids.size(); ++i) {
      const bool inner = i >= ends && i + ends < e.ids.size();
      if (inner && drop(gen)) continue;
      out.ids.push_back(e.ids[i]);
      out.types.push_back(e.types[i]);
    }
    if (out.ids.size() <= 2 * ends) return e;  // every token dropped: the text as it is
    return out;
  }

  // One micro-batch with unlabelled texts: the labelled rows `micro` and the
  // unlabelled `u` (and, FixMatch, their strong views) in one forward pass
  // (dropout and the encoder see both, as the image task does). A linear
  // probe reads its cached labelled features and runs the frozen encoder on
  // the unlabelled texts without gradient. Returns the labelled logits and
  // the loss: classification + the adaptation or self-training term.
  std::pair<torch::Tensor, torch::Tensor> unlabeled_loss(int64_t epoch, int64_t step, size_t micro_at,
                                                         const std::vector<int64_t>& micro, const torch::Tensor& y,
                                                         const std::vector<size_t>& u) {
    const int64_t m = static_cast<int64_t>(micro.size()), nu = static_cast<int64_t>(u.size());
    std::vector<EncodedText> strong;
    if (fixmatch_) {
      std::mt19937_64 gen(mix_seed(mix_seed(o_.seed, 404, static_cast<uint64_t>(epoch)),
                                   mix_seed(static_cast<uint64_t>(step), static_cast<uint64_t>(rank_)), micro_at));
      for (size_t i : u) strong.push_back(strong_view(unl_.inputs[i], gen));
    }
    std::vector<const EncodedText*> extra;
    for (size_t i : u) extra.push_back(&unl_.inputs[i]);
    for (const auto& e : strong) extra.push_back(&e);
    torch::Tensor f;
    if (cached_) {
      torch::Tensor fl = train_feats_.index_select(0, torch::tensor(micro, torch::kInt64));
      if (extra.empty()) {
        f = fl;
      } else {
        torch::NoGradGuard no_grad;
        f = torch::cat({fl, encoder_features(extra)});
      }
    } else {
      std::vector<const EncodedText*> items;
      for (int64_t i : micro) items.push_back(&train_.inputs[static_cast<size_t>(i)]);
      items.insert(items.end(), extra.begin(), extra.end());
      f = encoder_features(items);
    }
    torch::Tensor logits = head_logits(f);
    torch::Tensor lab = logits.narrow(0, 0, m);
    torch::Tensor loss = classification_loss(o_, lab, y, class_w_);
    if (nu == 0) return {lab, loss};
    const UnlabeledTerm t = unlabeled_term(o_, adapter_, strategy_.kind == Strategy::kLinear, f, logits, m, nu,
                                           epoch, step, steps_per_epoch());
    unlabeled_counts_ += t.counts;
    return {lab, t.loss.defined() ? loss + t.loss : loss};
  }


  // The class sums of a centroid head become unit-length means once its
  // pass is over (a checkpoint taken during the pass keeps the sums).
  void finish_centroids() {
    if (!centroid_ || centroids_done_) return;
    centroid_->finish();
    centroids_done_ = true;
  }

  void read_data() {
    train_set_ = read_text_data(o_.data, "--data", o_, {});
    train_set_.keep_per_class(o_.per_class, o_.seed);  // --per-class, before the validation split
    std::vector<TextExample> train_ex, val_ex;
    std::string val_source = o_.data;
    if (o_.val.empty()) {
      std::tie(train_ex, val_ex) = split_examples(train_set_, o_.val_split, o_.seed);
    } else {
      train_ex = train_set_.examples;
      val_ex = read_text_data(o_.val, "--val", o_, train_set_.classes).examples;
      val_source = o_.val;
    }
    if (!o_.test.empty()) test_size_ = read_text_data(o_.test, "--test", o_, train_set_.classes).examples.size();
    classes_ = train_set_.classes;
    const int64_t num_classes = static_cast<int64_t>(classes_.size());
    GRAFT_CHECK(num_classes >= 2, "--data '", o_.data, "' has ", num_classes, " class (expected at least 2 labels)");
    // --unlabeled (issue 19): read before the vocabulary, whose words a
    // TextCNN takes from the unlabelled target texts too.
    const std::vector<TextExample> unl_ex = read_unlabeled();
    std::vector<TextExample> vocab_ex;
    if (is_cnn_ && !unl_ex.empty()) {
      vocab_ex = train_ex;
      vocab_ex.insert(vocab_ex.end(), unl_ex.begin(), unl_ex.end());
    }
    set_training_texts(classes_, train_set_.has_pairs, vocab_ex.empty() ? train_ex : vocab_ex);  // textcnn: its vocabulary
    if (is_use_) {  // [use-lite]
      train_ = encode_all_use_lite(train_ex, m_, o_.data);
      val_ = encode_all_use_lite(val_ex, m_, val_source);
    } else {
      train_ = encode_all(train_ex, wp_.get(), m_.info.max_length, m_.info.pairs, o_.data, m_.words.get());
      val_ = encode_all(val_ex, wp_.get(), m_.info.max_length, m_.info.pairs, val_source, m_.words.get());
    }
    if (!unl_ex.empty()) {
      unl_ = is_use_ ? encode_all_use_lite(unl_ex, m_, o_.unlabeled)
                     : encode_all(unl_ex, wp_.get(), m_.info.max_length, false, o_.unlabeled, m_.words.get());
      unl_per_step_ = o_.batch_size * o_.grad_accum * o_.unlabeled_ratio;
      fixmatch_ = o_.self_train == "fixmatch";
    }
    for (const auto* e : {&train_, &val_, &unl_})
      if (e->truncated_texts > 0)
        log_warn(str_cat(e->truncated_texts, " of ", e->inputs.size(), " texts of '",
                         e == &train_ ? o_.data : e == &val_ ? val_source : o_.unlabeled, "' are longer than --max-length ", o_.max_length,
                         " tokens and were truncated (", e->truncated_tokens, " tokens dropped)"));
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


  void write_config(const std::vector<std::string>& trainable) {
    nlohmann::ordered_json config;
    config["graft_version"] = GRAFT_VERSION;
    config["options"] = to_json(o_);
    config["classes"] = classes_;
    config["counts"] = {{"train", train_.inputs.size()}, {"val", val_.inputs.size()}, {"test", test_size_}};
    if (!unl_.inputs.empty()) config["counts"]["unlabeled"] = unl_.inputs.size();
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

  // The frozen encoder's rows, this rank's share: TextModel::features, which
  // graft score --task text reads too.
  torch::Tensor bert_features(const Encoded& set, const char* label) {
    return sharded_rows(group_.get(), static_cast<int64_t>(set.inputs.size()), label,
                        [&](const std::vector<size_t>& which) {
      std::vector<EncodedText> part;
      part.reserve(which.size());
      for (size_t i : which) part.push_back(set.inputs[i]);
      return m_.features(part, std::max<int64_t>(local_batch_, 64), label);
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

  int64_t local_batch_ = 1, n_train_ = 0, step_batch_ = 1, bucket_ = 1;
  size_t test_size_ = 0;
  bool cached_ = false, centroids_done_ = false;
  // From TextSourceBuilder: is_tfidf_, is_use_, is_cnn_, num_layers_, emb_,
  // centroid_, wfile_, vocab_path_, wp_, m_, strategy_, source_, use_source_.
  TextSet train_set_;
  std::vector<std::string> classes_;
  Encoded train_, val_;
  SparseRows train_rows_, val_rows_;
  torch::Tensor train_feats_, val_feats_, class_w_;
  std::vector<std::vector<int64_t>> batches_;
  // --unlabeled (issue 19)
  static constexpr double kTokenDropout = 0.1;
  Encoded unl_;
  std::vector<size_t> unl_order_;
  int64_t unl_per_step_ = 0;  // the whole step's, over all ranks
  bool fixmatch_ = false;
  DomainAdapter adapter_{nullptr};
  std::shared_ptr<torch::nn::Module> with_adapter_;
};

}  // namespace

TrainSummary train_text(const TrainOptions& o) { return run_task<TextTask>(o); }

}  // namespace graft
