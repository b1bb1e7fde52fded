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
#include "graft/dist/group.h"
#include "graft/train/loop.h"
#include "graft/weights/safetensors.h"
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

// One masked-language-model pretraining: the corpus tokenized and packed in
// the constructor (every input checked first), the steps for the loop after.
// Every epoch's model is the result (no best-model selection).
class MlmTask final : public TaskRun {
 public:
  explicit MlmTask(const TrainOptions& o) : TaskRun(o) {
    wp_ = std::make_shared<WordPiece>(WordPiece::from_file(o.vocab));
    c_ = o.bert_config.empty() ? bert_size(o.size, static_cast<int64_t>(wp_->size())) : read_bert_config(o.bert_config);
    GRAFT_CHECK_USAGE(c_.vocab_size == static_cast<int64_t>(wp_->size()), "--bert-config: vocab_size ", c_.vocab_size,
                      " disagrees with --vocab '", o.vocab, "' (", wp_->size(), " tokens)");
    GRAFT_CHECK_USAGE(c_.max_position_embeddings >= o.max_length, "--max-length ", o.max_length,
                      " exceeds the model's max_position_embeddings ", c_.max_position_embeddings);
    if (rank_ == 0) prepare_run_dir(o);
    if (group_) group_->barrier("start of training (rank 0 prepares the run directory)");
    set_threads(o.threads);
    read_corpus();
    seed_everything(mix_seed(o.seed, 201));
    model_ = BertForMaskedLM(c_);
    // The masked-LM loss never reaches the pooler (it is saved as
    // initialised, for BertForPreTraining's names): frozen, so that data
    // parallel does not hand it zero gradients and weight decay.
    for (auto& p : model_->named_parameters())
      if (p.key().find(".pooler.") != std::string::npos) p.value().set_requires_grad(false);
    nlohmann::ordered_json config;
    config["graft_version"] = GRAFT_VERSION;
    config["options"] = to_json(o);
    config["bert"] = to_json(c_);
    config["counts"] = {{"tokens", tokens_}, {"train_sequences", train_rows_.size(0)},
                        {"val_sequences", val_rows_.size(0)}};
    if (!o.resume && rank_ == 0) {
      write_file_atomic(o.out + "/config.json", config.dump(2) + "\n");
      write_file_atomic(o.out + "/bert_config.json", to_json(c_).dump(2) + "\n");
      write_file_atomic(o.out + "/vocab.txt", read_file(o.vocab));
    }
  }

  torch::nn::Module& module() override { return *model_; }
  std::vector<ParamGroup> param_groups() override {
    ParamGroup decay{"decay", {}, o_.lr, o_.weight_decay}, no_decay{"no_decay", {}, o_.lr, 0.0};
    for (auto& p : model_->parameters())
      if (p.requires_grad()) (p.dim() >= 2 ? decay : no_decay).params.push_back(p);
    return {decay, no_decay};
  }
  int64_t steps_per_epoch() override { return (train_rows_.size(0) + o_.batch_size - 1) / o_.batch_size; }
  int64_t items_per_epoch() override { return (train_rows_.size(0) + world_ - 1) / world_; }
  const char* unit() const override { return "seq/s"; }
  bool keep_every_epoch() const override { return true; }

  void begin_epoch(int64_t epoch, int64_t /*first_step*/) override {
    model_->train();
    order_ = epoch_order(static_cast<size_t>(train_rows_.size(0)), o_.seed, epoch, true);
  }

  // The whole step's rows are masked alike on every rank (one generator per
  // step), each rank takes every world-th row, and each token's loss weighs
  // 1 / (masked tokens of the whole step): the averaged gradient is that of
  // the step run alone.
  StepStats step(int64_t epoch, int64_t s) override {
    const int64_t n = train_rows_.size(0);
    const int64_t b0 = s * o_.batch_size, b1 = std::min(n, b0 + o_.batch_size);
    std::vector<int64_t> idx(order_.begin() + b0, order_.begin() + b1);
    const int64_t step = epoch * steps_per_epoch() + s;
    torch::Generator gen = at::detail::createCPUGenerator(mix_seed(o_.seed, 701, static_cast<uint64_t>(step)));
    MaskedBatch mb = mask_tokens(train_rows_.index_select(0, torch::tensor(idx, torch::kInt64)), *wp_,
                                 o_.mask_prob, gen);
    if (group_) {
      const torch::Tensor mine = torch::arange(rank_, static_cast<int64_t>(idx.size()), world_);
      total_masked_ = mb.labels.ne(-100).sum().item<int64_t>();
      mb.inputs = mb.inputs.index_select(0, mine);
      mb.labels = mb.labels.index_select(0, mine);
    }
    StepStats st;
    st.items = mb.inputs.size(0);
    st.count = mb.labels.ne(-100).sum().item<int64_t>();
    if (st.count == 0) {
      // No token masked in the whole step: no step (every rank alike). Only
      // in this rank's share: it adds zeros to the average.
      st.skip = !group_ || total_masked_ == 0;
      return st;
    }
    auto [loss, correct] = masked_loss(*model_, mb);
    const double weight = group_ ? static_cast<double>(st.count) * world_ / static_cast<double>(total_masked_) : 1.0;
    (loss * weight).backward();
    st.loss_sum = loss.item<double>() * static_cast<double>(st.count);
    st.correct = correct.item<int64_t>();
    return st;
  }

  bool has_validation() override { return val_rows_.size(0) > 0; }

  // The masked-token loss and accuracy of the held-out rows, masked by a
  // fixed generator (the same tokens every epoch).
  Metrics validate() override {
    torch::InferenceMode guard;
    model_->eval();
    torch::Generator gen = at::detail::createCPUGenerator(mix_seed(o_.seed, 801));
    double loss = 0, correct = 0, count = 0;
    const int64_t n_val = val_rows_.size(0);
    for (int64_t b = 0; b < n_val; b += o_.batch_size) {
      MaskedBatch mb = mask_tokens(val_rows_.narrow(0, b, std::min(o_.batch_size, n_val - b)), *wp_, o_.mask_prob, gen);
      const int64_t m = mb.labels.ne(-100).sum().item<int64_t>();
      if (m == 0) continue;
      auto [l, c] = masked_loss(*model_, mb);
      loss += l.item<double>() * static_cast<double>(m);
      correct += c.item<double>();
      count += static_cast<double>(m);
    }
    model_->train();
    Metrics out;
    out.loss = loss / std::max(1.0, count);
    out.accuracy = correct / std::max(1.0, count);
    return out;
  }

  // The description first, the weights last (as save_model).
  void save_model() override {
    nlohmann::ordered_json info;
    info["format"] = "graft-model";
    info["format_version"] = 1;
    info["graft_version"] = GRAFT_VERSION;
    info["task"] = "text-mlm";
    info["architecture"] = "bert";
    info["bert"] = to_json(c_);
    info["vocab"] = "vocab.txt";
    info["max_length"] = o_.max_length;
    write_file_atomic(o_.out + "/model.json", info.dump(2) + "\n");
    save_safetensors(o_.out + "/model.safetensors", state_dict(*model_));
  }

 private:
  // Tokenized, packed into rows of max_length, and split into held-out rows
  // (seeded) and training rows.
  void read_corpus() {
    auto t_tok = std::chrono::steady_clock::now();
    std::vector<int64_t> stream = tokenize_corpus(o_.corpus, *wp_);
    tokens_ = static_cast<int64_t>(stream.size());
    torch::Tensor rows = pack_sequences(stream, o_.max_length, wp_->cls_id(), wp_->sep_id());
    GRAFT_CHECK(rows.size(0) >= 2, "--corpus: ", stream.size(), " tokens make ", rows.size(0), " sequences of ",
                o_.max_length, " (expected at least 2)");
    log_info(str_cat("corpus: ", stream.size(), " tokens, ", rows.size(0), " sequences of ", o_.max_length,
                     " (tokenized in ", std::chrono::duration<double>(std::chrono::steady_clock::now() - t_tok).count(),
                     " s)"));
    const int64_t n_val = o_.val_split > 0
                              ? std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(rows.size(0)) * o_.val_split))
                              : 0;
    auto perm = epoch_order(static_cast<size_t>(rows.size(0)), mix_seed(o_.seed, 702), 0, true);
    std::vector<int64_t> vi(perm.begin(), perm.begin() + n_val), ti(perm.begin() + n_val, perm.end());
    std::sort(vi.begin(), vi.end());
    std::sort(ti.begin(), ti.end());
    val_rows_ = rows.index_select(0, torch::tensor(vi, torch::kInt64));
    train_rows_ = rows.index_select(0, torch::tensor(ti, torch::kInt64));
  }

  std::shared_ptr<WordPiece> wp_;
  BertConfig c_;
  BertForMaskedLM model_{nullptr};
  int64_t tokens_ = 0, total_masked_ = 0;
  torch::Tensor train_rows_, val_rows_;
  std::vector<size_t> order_;
};

}  // namespace

TrainSummary pretrain_mlm(const TrainOptions& o) { return run_task<MlmTask>(o); }

}  // namespace graft
