// Masked-language-model pretraining of BERT on a plain-text corpus.

#include "graft/text/mlm.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/data/order.h"
#include "graft/text/bert.h"
#include "graft/train/checkpoint.h"
#include "graft/train/trainer.h"
#include "unicode.h"

namespace fs = std::filesystem;

namespace graft {

namespace {

std::string latin1_to_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (unsigned char c : s) unicode::append_utf8(c, out);
  return out;
}

}  // namespace

std::vector<int64_t> tokenize_corpus(const std::vector<std::string>& files, const WordPiece& wp) {
  std::vector<int64_t> stream;
  for (const auto& f : files) {
    std::string text = read_file(f);
    if (unicode::find_invalid_utf8(text) != text.size()) {
      log_warn(str_cat("corpus file '", f, "' is not valid UTF-8: read as latin-1"));
      text = latin1_to_utf8(text);
    }
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      auto ids = wp.ids(line);
      stream.insert(stream.end(), ids.begin(), ids.end());
    }
    stream.push_back(wp.sep_id());
  }
  return stream;
}

torch::Tensor pack_sequences(const std::vector<int64_t>& stream, int64_t max_length, int64_t cls_id,
                             int64_t sep_id) {
  GRAFT_CHECK(max_length >= 3, "--max-length ", max_length, " (expected at least 3)");
  const int64_t body = max_length - 2;
  const int64_t rows = static_cast<int64_t>(stream.size()) / body;
  torch::Tensor out = torch::empty({rows, max_length}, torch::kInt64);
  auto a = out.accessor<int64_t, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    a[r][0] = cls_id;
    for (int64_t j = 0; j < body; ++j) a[r][j + 1] = stream[static_cast<size_t>(r * body + j)];
    a[r][max_length - 1] = sep_id;
  }
  return out;
}

MaskedBatch mask_tokens(const torch::Tensor& ids, const WordPiece& wp, double prob,
                        torch::Generator& gen) {
  torch::Tensor special = ids.eq(wp.cls_id()) | ids.eq(wp.sep_id()) | ids.eq(wp.pad_id());
  torch::Tensor chosen = torch::rand(ids.sizes(), gen).lt(prob) & special.logical_not();
  MaskedBatch b;
  b.labels = torch::where(chosen, ids, torch::full_like(ids, -100));
  torch::Tensor u = torch::rand(ids.sizes(), gen);
  torch::Tensor to_mask = chosen & u.lt(0.8);
  torch::Tensor to_random = chosen & u.ge(0.8) & u.lt(0.9);
  // Uniform over the whole vocabulary, as Hugging Face's collator draws them.
  torch::Tensor random = torch::randint(0, static_cast<int64_t>(wp.size()), ids.sizes(), gen,
                                        torch::TensorOptions().dtype(torch::kInt64));
  b.inputs = torch::where(to_mask, torch::full_like(ids, wp.mask_id()), ids);
  b.inputs = torch::where(to_random, random, b.inputs);
  return b;
}

namespace {

nlohmann::json options_json(const MlmOptions& o) {
  nlohmann::json j;
  j["task"] = "text";
  j["corpus"] = o.corpus;
  j["vocab"] = o.vocab;
  j["size"] = o.size;
  j["bert_config"] = o.bert_config;
  j["max_length"] = o.max_length;
  j["batch_size"] = o.batch_size;
  j["epochs"] = o.epochs;
  j["time_budget_minutes"] = o.time_budget_minutes;
  j["lr"] = o.lr;
  j["weight_decay"] = o.weight_decay;
  j["warmup_fraction"] = o.warmup_fraction;
  j["mask_prob"] = o.mask_prob;
  j["clip_grad"] = o.clip_grad;
  j["val_fraction"] = o.val_fraction;
  j["seed"] = o.seed;
  return j;
}

MlmOptions options_from_json(const nlohmann::json& j, MlmOptions o, const std::string& source) {
  o.corpus = json_get<std::vector<std::string>>(j, "corpus", source);
  o.vocab = json_get<std::string>(j, "vocab", source);
  o.size = json_get<std::string>(j, "size", source);
  o.bert_config = json_get<std::string>(j, "bert_config", source);
  o.max_length = json_get<int64_t>(j, "max_length", source);
  o.batch_size = json_get<int64_t>(j, "batch_size", source);
  o.epochs = json_get<int64_t>(j, "epochs", source);
  o.time_budget_minutes = json_get<double>(j, "time_budget_minutes", source);
  o.lr = json_get<double>(j, "lr", source);
  o.weight_decay = json_get<double>(j, "weight_decay", source);
  o.warmup_fraction = json_get<double>(j, "warmup_fraction", source);
  o.mask_prob = json_get<double>(j, "mask_prob", source);
  o.clip_grad = json_get<double>(j, "clip_grad", source);
  o.val_fraction = json_get<double>(j, "val_fraction", source);
  o.seed = json_get<uint64_t>(j, "seed", source);
  return o;
}

// Loss and accuracy on the chosen tokens only (the head runs on those rows).
std::pair<torch::Tensor, torch::Tensor> masked_loss(BertForMaskedLMImpl& m, const MaskedBatch& b) {
  torch::Tensor hidden = m.bert->forward(b.inputs).last_hidden_state;
  torch::Tensor where = b.labels.ne(-100);
  torch::Tensor sel = hidden.index({where});
  torch::Tensor target = b.labels.index({where});
  torch::Tensor logits = m.head(sel);
  torch::Tensor loss = torch::nn::functional::cross_entropy(logits, target);
  return {loss, logits.argmax(1).eq(target).sum()};
}


}  // namespace

MlmSummary pretrain_mlm(const MlmOptions& given) {
  MlmOptions o = given;
  GRAFT_CHECK_USAGE(!o.out.empty(), "--out: an output run directory is required");
  if (o.resume) {
    const std::string cfg = o.out + "/config.json";
    GRAFT_CHECK_USAGE(fs::exists(cfg), "--resume: '", o.out,
                      "' holds no text pretraining run (expected ", cfg, ")");
    MlmOptions stored = options_from_json(json_get<nlohmann::json>(read_json_file(cfg), "options", cfg), o, cfg);
    stored.threads = o.threads;
    stored.quiet = o.quiet;
    stored.should_stop = o.should_stop;
    stored.out = o.out;
    stored.resume = true;
    if (!fs::exists(checkpoint_path(o.out))) {
      // Stopped before its first checkpoint: start again from its own settings.
      log_info(str_cat("--resume: '", o.out,
                       "' has no checkpoint yet; pretraining starts again from its first epoch"));
      stored.resume = false;
      stored.overwrite = true;
    }
    o = stored;
  }
  // Every input is checked before the corpus is read.
  GRAFT_CHECK_USAGE(!o.corpus.empty(), "--corpus: give at least one text file");
  for (const auto& f : o.corpus)
    GRAFT_CHECK_USAGE(fs::is_regular_file(f), "--corpus: '", f, "' is not a file");
  GRAFT_CHECK_USAGE(!o.vocab.empty(), "--vocab: a WordPiece vocab.txt is required");
  GRAFT_CHECK_USAGE(o.max_length >= 8, "--max-length ", o.max_length, " (expected at least 8)");
  GRAFT_CHECK_USAGE(o.batch_size >= 1, "--batch-size ", o.batch_size, " (expected at least 1)");
  GRAFT_CHECK_USAGE(o.epochs >= 1, "--epochs ", o.epochs, " (expected at least 1)");
  GRAFT_CHECK_USAGE(o.lr > 0 && std::isfinite(o.lr), "--lr ", o.lr, " (expected a finite number > 0)");
  GRAFT_CHECK_USAGE(o.weight_decay >= 0 && std::isfinite(o.weight_decay), "--weight-decay ",
                    o.weight_decay, " (expected a finite number >= 0)");
  GRAFT_CHECK_USAGE(o.clip_grad >= 0 && std::isfinite(o.clip_grad), "--clip-grad ", o.clip_grad,
                    " (expected a finite number >= 0)");
  GRAFT_CHECK_USAGE(o.mask_prob > 0 && o.mask_prob < 1, "--mask-prob ", o.mask_prob,
                    " (expected a fraction in (0, 1))");
  GRAFT_CHECK_USAGE(o.val_fraction >= 0 && o.val_fraction < 0.5, "--val-fraction ", o.val_fraction,
                    " (expected [0, 0.5))");
  WordPiece wp = WordPiece::from_file(o.vocab);
  BertConfig c = o.bert_config.empty() ? bert_size(o.size, static_cast<int64_t>(wp.size()))
                                       : read_bert_config(o.bert_config);
  GRAFT_CHECK_USAGE(c.vocab_size == static_cast<int64_t>(wp.size()), "--bert-config: vocab_size ",
                    c.vocab_size, " disagrees with --vocab '", o.vocab, "' (", wp.size(), " tokens)");
  GRAFT_CHECK_USAGE(c.max_position_embeddings >= o.max_length, "--max-length ", o.max_length,
                    " exceeds the model's max_position_embeddings ", c.max_position_embeddings);
  if (!o.resume) {
    if (fs::exists(o.out)) {
      GRAFT_CHECK_USAGE(fs::is_directory(o.out), "--out: '", o.out, "' is not a folder");
      bool empty = fs::directory_iterator(o.out) == fs::directory_iterator();
      GRAFT_CHECK_USAGE(empty || o.overwrite, "--out: '", o.out,
                        "' already exists (use --overwrite to replace it or --resume to continue)");
      for (const char* f : {"config.json", "model.safetensors", "model.json", "bert_config.json",
                            "vocab.txt", "metrics.csv", "checkpoint"})
        fs::remove_all(fs::path(o.out) / f);
    }
    make_dirs(o.out);
  } else {
    remove_stale_temporaries(o.out);
  }
  set_threads(o.threads);

  auto t_tok = std::chrono::steady_clock::now();
  std::vector<int64_t> stream = tokenize_corpus(o.corpus, wp);
  torch::Tensor rows = pack_sequences(stream, o.max_length, wp.cls_id(), wp.sep_id());
  GRAFT_CHECK(rows.size(0) >= 2, "--corpus: ", stream.size(), " tokens make ", rows.size(0),
              " sequences of ", o.max_length, " (expected at least 2)");
  log_info(str_cat("corpus: ", stream.size(), " tokens, ", rows.size(0), " sequences of ",
                   o.max_length, " (tokenized in ",
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t_tok).count(),
                   " s)"));
  // Held-out rows for the validation MLM loss, seeded.
  const int64_t n_val = o.val_fraction > 0 ? std::max<int64_t>(1, static_cast<int64_t>(rows.size(0) * o.val_fraction)) : 0;
  auto perm = epoch_order(static_cast<size_t>(rows.size(0)), mix_seed(o.seed, 702), 0, true);
  std::vector<int64_t> vi(perm.begin(), perm.begin() + n_val), ti(perm.begin() + n_val, perm.end());
  std::sort(vi.begin(), vi.end());
  std::sort(ti.begin(), ti.end());
  torch::Tensor val_rows = rows.index_select(0, torch::tensor(vi, torch::kInt64));
  torch::Tensor train_rows = rows.index_select(0, torch::tensor(ti, torch::kInt64));

  seed_everything(mix_seed(o.seed, 201));
  BertForMaskedLM model(c);
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(o.lr).weight_decay(0)));
  torch::optim::AdamW optimizer(groups, torch::optim::AdamWOptions(o.lr));

  const int64_t n_train = train_rows.size(0);
  const int64_t steps_per_epoch = (n_train + o.batch_size - 1) / o.batch_size;
  const int64_t total = steps_per_epoch * o.epochs;
  const int64_t warmup = static_cast<int64_t>(o.warmup_fraction * static_cast<double>(total));
  auto lr_at = [&](int64_t step) {
    if (warmup > 0 && step < warmup) return o.lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
    return o.lr * std::max(0.0, static_cast<double>(total - step) / static_cast<double>(std::max<int64_t>(1, total - warmup)));
  };

  nlohmann::ordered_json config;
  config["graft_version"] = GRAFT_VERSION;
  config["options"] = options_json(o);
  config["bert"] = to_json(c);
  config["counts"] = {{"tokens", stream.size()}, {"train_sequences", n_train}, {"val_sequences", n_val}};
  if (!o.resume) {
    write_file_atomic(o.out + "/config.json", config.dump(2) + "\n");
    write_file_atomic(o.out + "/bert_config.json", to_json(c).dump(2) + "\n");
    write_file_atomic(o.out + "/vocab.txt", read_file(o.vocab));
  }
  TrainerState state;
  if (o.resume) {
    state = load_checkpoint(o.out, *model, optimizer);
    log_info(str_cat("resuming ", o.out, " at epoch ", state.epochs_done + 1, " step ", state.step_in_epoch));
  }
  double spent = 0;  // seconds of earlier epochs
  for (const auto& r : state.rows) spent += r.seconds;

  auto evaluate = [&]() -> std::pair<double, double> {
    if (n_val == 0) return {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
    torch::InferenceMode guard;
    model->eval();
    torch::Generator gen = at::detail::createCPUGenerator(mix_seed(o.seed, 801));
    double loss = 0, correct = 0, count = 0;
    for (int64_t b = 0; b < n_val; b += o.batch_size) {
      MaskedBatch mb = mask_tokens(val_rows.narrow(0, b, std::min(o.batch_size, n_val - b)), wp, o.mask_prob, gen);
      int64_t m = mb.labels.ne(-100).sum().item<int64_t>();
      if (m == 0) continue;
      auto [l, c] = masked_loss(*model, mb);
      loss += l.item<double>() * m;
      correct += c.item<double>();
      count += m;
    }
    model->train();
    return {loss / std::max(1.0, count), correct / std::max(1.0, count)};
  };

  MlmSummary summary;
  double epoch_base = state.seconds;  // this epoch's seconds before this process
  auto last_ckpt = std::chrono::steady_clock::now();
  model->train();
  for (int64_t epoch = state.epochs_done; epoch < o.epochs; ++epoch) {
    auto order = epoch_order(static_cast<size_t>(n_train), o.seed, epoch, true);
    Progress progress(str_cat("mlm epoch ", epoch + 1, "/", o.epochs), steps_per_epoch);
    progress.advance(state.step_in_epoch);
    auto t_epoch = std::chrono::steady_clock::now();
    bool stop = false;
    for (int64_t s = state.step_in_epoch; s < steps_per_epoch; ++s) {
      const int64_t step = epoch * steps_per_epoch + s;
      for (auto& g : optimizer.param_groups())
        static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr_at(step));
      const int64_t b0 = s * o.batch_size, b1 = std::min(n_train, b0 + o.batch_size);
      std::vector<int64_t> idx(order.begin() + b0, order.begin() + b1);
      torch::Generator gen = at::detail::createCPUGenerator(mix_seed(o.seed, 701, static_cast<uint64_t>(step)));
      MaskedBatch mb = mask_tokens(train_rows.index_select(0, torch::tensor(idx, torch::kInt64)), wp, o.mask_prob, gen);
      const int64_t m = mb.labels.ne(-100).sum().item<int64_t>();
      optimizer.zero_grad();
      if (m > 0) {
        auto [loss, correct] = masked_loss(*model, mb);
        loss.backward();
        if (o.clip_grad > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), o.clip_grad);
        optimizer.step();
        const double loss_value = loss.item<double>();
        check_finite_loss(loss_value, epoch + 1, s + 1);
        state.loss_sum += loss_value * m;
        state.correct += correct.item<int64_t>();
        state.seen += m;
      }
      state.step_in_epoch = s + 1;
      summary.steps += 1;
      progress.advance(1);
      const double now = epoch_base + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
      const bool budget = o.time_budget_minutes > 0 && spent + now >= o.time_budget_minutes * 60;
      const bool last = state.step_in_epoch == steps_per_epoch;
      const bool hook = o.should_stop && o.should_stop(epoch * steps_per_epoch + s + 1);
      if (!last && (stop_requested() || budget || hook ||
                    std::chrono::steady_clock::now() - last_ckpt > std::chrono::minutes(5))) {
        state.seconds = now;
        save_checkpoint(o.out, *model, optimizer, state);
        last_ckpt = std::chrono::steady_clock::now();
        if (stop_requested() || hook) {
          summary.interrupted = true;
          stop = true;
        } else if (budget) {
          summary.budget_reached = true;
          stop = true;
        }
        if (stop) break;
      }
    }
    progress.finish();
    const double secs = epoch_base + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
    if (summary.interrupted) break;
    // An epoch (or the budget's part of one) ends: validate, save, log.
    auto [vl, va] = evaluate();
    EpochRow row{epoch + 1, state.loss_sum / std::max<int64_t>(1, state.seen),
                 double(state.correct) / std::max<int64_t>(1, state.seen), vl, va,
                 lr_at(epoch * steps_per_epoch + state.step_in_epoch - 1), secs,
                 static_cast<double>(state.step_in_epoch * o.batch_size) / secs};
    state.rows.push_back(row);
    log_info(str_cat("mlm epoch ", row.epoch, "/", o.epochs, "  loss ", row.train_loss, "  acc ",
                     row.train_accuracy, "  val_loss ", vl, "  val_acc ", va, "  ",
                     static_cast<int64_t>(row.items_per_second), " seq/s"));
    spent += secs;
    state.epochs_done = summary.budget_reached ? o.epochs : epoch + 1;
    state.step_in_epoch = 0;
    state.loss_sum = 0;
    state.correct = state.seen = 0;
    state.seconds = 0;
    epoch_base = 0;
    state.best_epoch = epoch + 1;
    nlohmann::ordered_json info;
    info["format"] = "graft-model";
    info["format_version"] = 1;
    info["graft_version"] = GRAFT_VERSION;
    info["task"] = "text-mlm";
    info["architecture"] = "bert";
    info["bert"] = to_json(c);
    info["vocab"] = "vocab.txt";
    info["max_length"] = o.max_length;
    check_finite_parameters(*model, str_cat("after epoch ", epoch + 1));
    // The description first, the weights last (as save_model).
    write_file_atomic(o.out + "/model.json", info.dump(2) + "\n");
    save_safetensors(o.out + "/model.safetensors", state_dict(*model));
    write_file_atomic(o.out + "/metrics.csv", metrics_csv(state.rows));
    save_checkpoint(o.out, *model, optimizer, state);
    last_ckpt = std::chrono::steady_clock::now();
    summary.val_loss = vl;
    summary.val_accuracy = va;
    if (summary.budget_reached) {
      log_info(str_cat("time budget of ", o.time_budget_minutes, " min reached in epoch ", epoch + 1));
      break;
    }
    if (stop_requested() && epoch + 1 < o.epochs) {
      summary.interrupted = true;
      break;
    }
  }
  summary.epochs_done = state.epochs_done;
  summary.seconds = spent;
  return summary;
}

}  // namespace graft
