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
#include "graft/report/report.h"
#include "graft/text/text_data.h"
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

Encoded encode_all(const std::vector<TextExample>& examples, const WordPiece& wp, int64_t max_length,
                   bool pairs, const std::string& source) {
  Encoded e;
  for (const auto& x : examples) {
    Encoding enc = pairs ? wp.encode(x.text, x.text_b, static_cast<int>(max_length))
                         : wp.encode(x.text, std::nullopt, static_cast<int>(max_length));
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

torch::Tensor class_weights(const TrainOptions& o, const std::vector<int64_t>& labels, size_t classes) {
  if (o.class_weights != "auto") return {};
  std::vector<int64_t> counts(classes, 0);
  for (auto y : labels) counts[static_cast<size_t>(y)] += 1;
  std::vector<float> w;
  const double n = static_cast<double>(labels.size());
  for (auto c : counts) w.push_back(static_cast<float>(n / (double(classes) * std::max<int64_t>(c, 1))));
  return torch::tensor(w);
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

TrainSummary train_text(const TrainOptions& options) {
  const TrainOptions& o = options;
  validate(o);
  // Data parallel (dist/): --batch-size is the global batch; every step's
  // texts are dealt out between the ranks; rank 0 ("lead") alone writes.
  const std::shared_ptr<dist::Group> group = o.group && o.group->size() > 1 ? o.group : nullptr;
  const int rank = group ? group->rank() : 0, world = group ? group->size() : 1;
  const bool lead = rank == 0;
  GRAFT_CHECK_USAGE(o.batch_size % world == 0, "--batch-size ", o.batch_size, " is the global batch of ",
                    world, " workers and must be a multiple of ", world);
  const int64_t local_batch = o.batch_size / world;
  if (group) check_same_options(*group, o);
  const bool is_tfidf = o.backbone == "tfidf";
  const std::string wfile = is_tfidf ? "" : text_weights_file(o.weights);
  GRAFT_CHECK_USAGE(!(is_tfidf && o.weights != "none"), "--weights: the tfidf backbone has no source "
                    "weights (got '", o.weights, "'; expected none)");
  GRAFT_CHECK_USAGE(wfile.empty() || fs::exists(wfile), "--weights: '", o.weights,
                    "' does not exist (expected a BERT weight file, a pretraining run or a Hugging "
                    "Face folder, or none)");
  set_threads(o.threads);
  const std::string vocab_path = resolve_vocab(o, wfile);
  WordPieceOptions wo;
  wo.lower_case = !o.cased;
  auto wp = std::make_shared<WordPiece>(WordPiece::from_file(vocab_path, wo));

  TextModel m;
  m.tokenizer = wp;
  m.info.architecture = is_tfidf ? "tfidf" : "bert";
  m.info.backbone = o.backbone;
  m.info.lower_case = wo.lower_case;
  m.info.source_weights = o.weights;
  // TF-IDF counts every token; BERT reads at most max_length.
  m.info.max_length = is_tfidf ? (int64_t(1) << 30) : o.max_length;
  Strategy strategy;
  int64_t num_layers = 0;
  if (is_tfidf) {
    GRAFT_CHECK_USAGE(o.strategy == "linear", "--strategy: '", o.strategy,
                      "' (the tfidf backbone has nothing to fine-tune; expected linear)");
  } else {
    m.info.bert = resolve_config(o, wfile, static_cast<int64_t>(wp->size()));
    num_layers = m.info.bert.num_hidden_layers;
    strategy = parse_strategy(o.strategy, static_cast<int>(num_layers));
  }
  m.info.classifier_dropout = m.info.bert.hidden_dropout_prob;
  // Source weights are read and checked before any long work.
  TensorList source;
  if (!wfile.empty()) {
    source = read_weights(wfile);
    check_finite_weights(source, wfile);
  }

  // Data.
  TextSet train_set = read_set(o.data, "--data", o, {});
  std::vector<TextExample> train_ex, val_ex;
  std::string val_source = o.data;
  if (o.val.empty()) {
    std::tie(train_ex, val_ex) = split_examples(train_set, o.val_split, o.seed);
  } else {
    train_ex = train_set.examples;
    val_ex = read_set(o.val, "--val", o, train_set.classes).examples;
    val_source = o.val;
  }
  TextSet test_set;
  const bool has_test = !o.test.empty();
  if (has_test) test_set = read_set(o.test, "--test", o, train_set.classes);
  const auto& classes = train_set.classes;
  const int64_t num_classes = static_cast<int64_t>(classes.size());
  GRAFT_CHECK(num_classes >= 2, "--data '", o.data, "' has ", num_classes,
              " class (expected at least 2 labels)");
  m.info.classes = classes;
  m.info.pairs = train_set.has_pairs;
  Encoded train = encode_all(train_ex, *wp, m.info.max_length, m.info.pairs, o.data);
  Encoded val = encode_all(val_ex, *wp, m.info.max_length, m.info.pairs, val_source);
  for (const auto* e : {&train, &val})
    if (e->truncated_texts > 0)
      log_warn(str_cat(e->truncated_texts, " of ", e->inputs.size(), " texts of '",
                       e == &train ? o.data : val_source, "' are longer than --max-length ",
                       o.max_length, " tokens and were truncated (", e->truncated_tokens,
                       " tokens dropped)"));
  if (lead) prepare_run_dir(o);
  if (group) group->barrier("start of training (rank 0 prepares the run directory)");

  // Model.
  seed_everything(mix_seed(o.seed, 201));
  std::vector<std::string> trainable;
  if (is_tfidf) {
    std::vector<std::vector<int64_t>> docs;
    for (const auto& e : train.inputs) docs.push_back(tfidf_tokens(e));
    m.tfidf = std::make_shared<Tfidf>(Tfidf::fit(docs, TfidfOptions{}));
    log_info(str_cat("tfidf: ", m.tfidf->size(), " terms (WordPiece unigrams and bigrams in at least ",
                     TfidfOptions{}.min_df, " training texts)"));
    GRAFT_CHECK(m.tfidf->size() > 0, "--data '", o.data, "': no term occurs in ", TfidfOptions{}.min_df,
                " training texts (expected a larger training set)");
    m.tfidf_head = TfidfClassifier(m.tfidf->size(), num_classes);
    trainable.push_back("head");
  } else {
    m.bert = BertClassifier(m.info.bert, num_classes, m.info.classifier_dropout);
    init_bert_weights(*m.bert);
    if (!wfile.empty()) {
      // A text run as the source: its classifier is replaced by the new head.
      TensorList encoder;
      for (auto& [name, t] : source)
        if (name.rfind("classifier.", 0) != 0) encoder.emplace_back(name, t);
      LoadReport r = load_bert_weights(*m.bert, encoder);
      GRAFT_CHECK(r.mismatched.empty(), "--weights '", wfile, "' does not fit the model of ",
                  config_beside(wfile).empty() ? std::string("--backbone ") + o.backbone
                                               : "'" + config_beside(wfile) + "'",
                  ": ", r.summary());
      GRAFT_CHECK(r.loaded > 0, "--weights '", wfile, "' shares no tensor with BERT: ", r.summary());
      std::vector<std::string> missing;
      for (const auto& n : r.missing)
        if (n.rfind("classifier.", 0) != 0) missing.push_back(n);
      GRAFT_CHECK(missing.empty() || !o.weights_strict, "--weights '", wfile, "' lacks ",
                  missing.size(), " tensors (--weights-strict): ", r.summary());
      if (!missing.empty())
        log_warn(str_cat("--weights '", wfile, "': ", missing.size(), " tensors not in the file keep "
                         "their random initialisation (", missing.front(), (missing.size() > 1 ? ", ..." : ""), ")"));
    }
    for (auto& p : m.bert->named_parameters()) {
      const int stage = bert_stage(p.key(), num_layers);
      bool on = stage < 0;
      if (strategy.kind == Strategy::kFull) on = true;
      if (strategy.kind == Strategy::kPartial)
        on = on || stage > num_layers - strategy.stages;  // the last N layers and the pooler
      p.value().set_requires_grad(on);
    }
    trainable.push_back("head");
    if (strategy.kind != Strategy::kLinear) trainable.push_back("pooler");
    for (int64_t s = num_layers; s >= 1; --s)
      if (strategy.kind == Strategy::kFull || (strategy.kind == Strategy::kPartial && s > num_layers - strategy.stages))
        trainable.push_back(str_cat("layer.", s - 1));
    if (strategy.kind == Strategy::kFull) trainable.push_back("embeddings");
  }
  torch::nn::Module& module = m.module();

  nlohmann::ordered_json config;
  config["graft_version"] = GRAFT_VERSION;
  config["options"] = to_json(o);
  config["classes"] = classes;
  config["counts"] = {{"train", train.inputs.size()}, {"val", val.inputs.size()},
                      {"test", test_set.examples.size()}};
  config["trainable_stages"] = trainable;
  config["truncated"] = {{"train", train.truncated_texts}, {"val", val.truncated_texts}};
  config["skipped_empty"] = train_set.skipped_empty;
  config["vocab"] = vocab_path;
  if (!o.resume && lead) {
    write_file_atomic(o.out + "/config.json", config.dump(2) + "\n");
    write_file_atomic(o.out + "/vocab.txt", read_file(vocab_path));
  }

  // Features computed once: TF-IDF rows, or BERT's pooled output when the
  // encoder is frozen.
  const bool cached = !is_tfidf && strategy.kind == Strategy::kLinear;
  SparseRows train_rows, val_rows;
  torch::Tensor train_feats, val_feats;
  if (is_tfidf) {
    std::vector<std::vector<int64_t>> docs;
    for (const auto& e : train.inputs) docs.push_back(tfidf_tokens(e));
    train_rows = m.tfidf->transform(docs);
    docs.clear();
    for (const auto& e : val.inputs) docs.push_back(tfidf_tokens(e));
    val_rows = m.tfidf->transform(docs);
  }
  // Rows of every text of a set, [n, D]: alone, compute(all); data
  // parallel, each rank computes a shard and the rows are gathered back into
  // the set's order, so every rank ends with all of them.
  auto sharded = [&](int64_t n, const std::string& what,
                     const std::function<torch::Tensor(const std::vector<size_t>&)>& compute) {
    std::vector<size_t> all(static_cast<size_t>(n));
    std::iota(all.begin(), all.end(), size_t{0});
    if (!group) return compute(all);
    const std::vector<size_t> mine = dist::shard_order(all, rank, world, /*pad=*/false);
    torch::Tensor part = compute(mine).contiguous();
    std::vector<int64_t> pos(mine.begin(), mine.end());
    torch::Tensor rows = group->all_gather_rows(part, "all-gather of " + what);
    torch::Tensor where = group->all_gather_rows(torch::tensor(pos, torch::kInt64), "all-gather of " + what);
    return rows.index_select(0, where.argsort());
  };
  auto bert_features = [&](const Encoded& set, const char* label) {
    return sharded(static_cast<int64_t>(set.inputs.size()), label, [&](const std::vector<size_t>& which) {
      torch::InferenceMode guard;
      m.bert->eval();
      torch::Tensor out = torch::zeros({static_cast<int64_t>(which.size()), m.info.bert.hidden_size});
      std::vector<int64_t> lengths;
      for (size_t i : which) lengths.push_back(set.lengths[i]);
      std::vector<size_t> order(which.size());
      std::iota(order.begin(), order.end(), size_t{0});
      Progress progress(label, static_cast<int64_t>(which.size()));
      for (const auto& b : length_batches(order, lengths, std::max<int64_t>(local_batch, 64),
                                          static_cast<int64_t>(which.size()))) {
        std::vector<const EncodedText*> items;
        for (int64_t i : b) items.push_back(&set.inputs[which[static_cast<size_t>(i)]]);
        out.index_copy_(0, torch::tensor(b, torch::kInt64), m.bert->features(collate_texts(items, wp->pad_id())));
        progress.advance(static_cast<int64_t>(b.size()));
      }
      progress.finish();
      return out;
    });
  };
  if (cached) {
    train_feats = bert_features(train, "features train");
    if (!val.inputs.empty()) val_feats = bert_features(val, "features val");
  }

  auto groups = is_tfidf ? std::vector<ParamGroup>{} : text_param_groups(module, o, num_layers);
  if (is_tfidf) {
    ParamGroup w{"head", {m.tfidf_head->classifier->weight}, o.lr, o.weight_decay};
    ParamGroup b{"head/no_decay", {m.tfidf_head->classifier->bias}, o.lr, 0.0};
    groups = {w, b};
  }
  auto optimizer = make_optimizer(o, groups);
  const int64_t n_train = static_cast<int64_t>(train.inputs.size());
  const int64_t step_batch = o.batch_size * o.grad_accum;
  const int64_t steps_per_epoch = (n_train + step_batch - 1) / step_batch;
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t warmup_steps = static_cast<int64_t>(o.warmup_epochs * static_cast<double>(steps_per_epoch));
  const int64_t step_size = steps_per_epoch * (o.step_size > 0 ? o.step_size : std::max<int64_t>(1, o.epochs / 3));
  torch::Tensor class_w = class_weights(o, train.labels, classes.size());
  auto loss_fn = [&](const torch::Tensor& logits, const torch::Tensor& y) {
    auto opts = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(o.label_smoothing);
    if (class_w.defined()) opts.weight(class_w);
    return torch::nn::functional::cross_entropy(logits, y, opts);
  };
  // Logits of some rows of a set, in the module's current mode.
  auto batch_logits = [&](const Encoded& set, const SparseRows& rows, const torch::Tensor& feats,
                          const std::vector<int64_t>& which) -> torch::Tensor {
    if (is_tfidf) {
      auto [idx, offs, w] = rows.select(which);
      return m.tfidf_head->forward(idx, offs, w);
    }
    if (cached) return m.bert->classify(feats.index_select(0, torch::tensor(which, torch::kInt64)));
    std::vector<const EncodedText*> items;
    for (int64_t i : which) items.push_back(&set.inputs[static_cast<size_t>(i)]);
    return m.bert->forward(collate_texts(items, wp->pad_id()));
  };

  TrainerState state;
  if (o.resume) {
    state = load_checkpoint(o.out, module, *optimizer);
    log_info(str_cat("resuming ", o.out, " after epoch ", state.epochs_done));
    share_resumed_sums(state, lead);
  }
  // Gradients averaged over the ranks; everyone starts from rank 0's weights.
  std::vector<torch::Tensor> trainable_params;
  for (auto& p : module.parameters())
    if (p.requires_grad()) trainable_params.push_back(p);
  std::unique_ptr<dist::GradReducer> reducer = start_data_parallel(group, module, trainable_params);
  const bool has_val = !val.inputs.empty();
  if (!has_val) log_info("no validation data (--val-split 0): every epoch's model is kept");
  auto evaluate_val = [&]() -> Metrics {
    if (!has_val) {
      Metrics none;
      none.loss = none.accuracy = std::numeric_limits<double>::quiet_NaN();
      return none;
    }
    torch::Tensor logits;
    if (cached || is_tfidf) {
      torch::InferenceMode guard;
      module.eval();
      std::vector<int64_t> all(val.inputs.size());
      std::iota(all.begin(), all.end(), 0);
      logits = batch_logits(val, val_rows, val_feats, all);
    } else {
      logits = sharded(static_cast<int64_t>(val.inputs.size()), "validation logits",
                       [&](const std::vector<size_t>& which) {
                         std::vector<EncodedText> part;
                         for (size_t i : which) part.push_back(val.inputs[i]);
                         return m.logits(part, std::max<int64_t>(local_batch, 64));
                       });
    }
    return compute_metrics(logits, torch::tensor(val.labels, torch::kInt64), classes);
  };

  TrainSummary summary;
  summary.out = o.out;
  // Only the BERT forward pass gains from batches of similar length.
  const int64_t bucket = (o.bucket && !cached && !is_tfidf) ? kBucketBatches : 1;
  for (int64_t epoch = state.epochs_done; epoch < o.epochs && !summary.interrupted; ++epoch) {
    auto t0 = std::chrono::steady_clock::now();
    const int64_t first_step = state.step_in_epoch;
    // Dropout: each rank its own stream (rank 0's is that of a run alone).
    if (first_step == 0)
      torch::manual_seed(mix_seed(o.seed, 301 + static_cast<uint64_t>(rank), static_cast<uint64_t>(epoch)));
    module.train();
    if (cached) m.bert->bert->eval();
    auto batches = length_batches(epoch_order(static_cast<size_t>(n_train), o.seed, epoch, true),
                                  train.lengths, step_batch, bucket);
    if (bucket > 1) {
      // Long and short batches interleaved, not in runs.
      auto perm = epoch_order(batches.size(), mix_seed(o.seed, 401), epoch, true);
      std::vector<std::vector<int64_t>> shuffled;
      for (size_t i : perm) shuffled.push_back(std::move(batches[i]));
      batches = std::move(shuffled);
    }
    int64_t step = epoch * steps_per_epoch + first_step;
    Progress progress(str_cat("epoch ", epoch + 1, "/", o.epochs), (n_train + world - 1) / world);
    progress.advance(state.seen);
    for (int64_t b = first_step; b < static_cast<int64_t>(batches.size()); ++b) {
      const auto& global = batches[static_cast<size_t>(b)];
      // This rank's texts of the step: every world-th, from its rank.
      std::vector<int64_t> batch;
      for (size_t i = static_cast<size_t>(rank); i < global.size(); i += static_cast<size_t>(world))
        batch.push_back(global[i]);
      set_lr(*optimizer, groups, lr_factor(o.schedule, step, total_steps, warmup_steps, step_size, o.gamma));
      optimizer->zero_grad();
      // Each text's loss weighs 1 / (texts in the whole step), so that the
      // sum over micro-batches, and the mean over ranks x world, is the
      // gradient of one batch of the whole step.
      const double n = static_cast<double>(global.size()) / world;
      const bool hooks = reducer && o.grad_accum == 1;
      if (hooks) reducer->prepare();
      for (size_t s = 0; s < batch.size(); s += static_cast<size_t>(local_batch)) {
        std::vector<int64_t> micro(batch.begin() + static_cast<std::ptrdiff_t>(s),
                                   batch.begin() + static_cast<std::ptrdiff_t>(
                                                       std::min(batch.size(), s + static_cast<size_t>(local_batch))));
        std::vector<int64_t> ys;
        for (int64_t i : micro) ys.push_back(train.labels[static_cast<size_t>(i)]);
        torch::Tensor y = torch::tensor(ys, torch::kInt64);
        torch::Tensor logits = batch_logits(train, train_rows, train_feats, micro);
        torch::Tensor loss = loss_fn(logits, y);
        (loss * (static_cast<double>(micro.size()) / n)).backward();
        const double loss_value = loss.item<double>();
        check_finite_loss(loss_value, epoch + 1, state.step_in_epoch + 1);
        state.loss_sum += loss_value * static_cast<double>(micro.size());
        state.correct += logits.argmax(1).eq(y).sum().item<int64_t>();
      }
      if (hooks) reducer->finish();
      else if (reducer) reducer->reduce_accumulated();
      if (o.clip_grad > 0) torch::nn::utils::clip_grad_norm_(module.parameters(), o.clip_grad);
      optimizer->step();
      state.seen += static_cast<int64_t>(batch.size());
      state.step_in_epoch += 1;
      progress.advance(static_cast<int64_t>(batch.size()));
      ++step;
      if (group) maybe_inject_fault(rank, step);
      const bool last = state.step_in_epoch == steps_per_epoch;
      bool stop = !last && (stop_requested() || (o.should_stop && o.should_stop(step)));
      // All ranks stop at the same step (a signal may reach only some).
      if (group && !last) stop = group->any(stop, "stop check");
      if (stop) {
        summary.interrupted = true;
        break;
      }
    }
    progress.finish();
    state.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    reduce_epoch_sums(group.get(), state);
    if (summary.interrupted) {
      if (lead) save_checkpoint(o.out, module, *optimizer, state);
      log_info(str_cat("interrupted in epoch ", epoch + 1, " after step ", state.step_in_epoch,
                       "; the state is saved: continue with graft train --resume --out ", o.out));
      break;
    }
    Metrics vm = evaluate_val();
    if (finish_epoch(o, epoch, step, vm, has_val, optimizer->param_groups()[0].options().get_lr(),
                     "texts/s", state, summary, [&] { save_text_model(o.out, m); }, module, *optimizer))
      break;
  }
  summary.epochs_run = state.epochs_done;
  summary.best_epoch = state.best_epoch;
  summary.best_val_accuracy = state.best_accuracy;
  // Rank 0 alone evaluates the test set once and writes the report.
  if (!lead) return summary;

  if (has_test && !summary.interrupted) {
    const TextEvaluation test = evaluate_text_run(o.out, o.test, text_read_options(o),
                                                  std::max<int64_t>(o.batch_size, 64), "--test", o.out);
    summary.has_test = true;
    summary.test = test.metrics;
  }
  try {
    write_run_report(o.out);
  } catch (const std::exception& e) {
    log_warn(str_cat("report.html not written: ", e.what()));
  }
  return summary;
}

}  // namespace graft
