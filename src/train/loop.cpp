#include "graft/train/loop.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/dist/group.h"
#include "graft/dist/reducer.h"
#include "graft/dist/sampler.h"
#include "graft/eval/calibration.h"
#include "graft/report/report.h"
#include "graft/train/option_table.h"

namespace fs = std::filesystem;

namespace graft {

namespace {

// Files graft owns in a run directory: --overwrite removes these and nothing
// else, so pointing --out at a folder of the user's never deletes their files.
const char* kRunFiles[] = {"config.json", "model.safetensors", "model.json", "metrics.csv",
                           "test_metrics.json", "test_predictions.csv", "report.html",
                           "checkpoint", "vocab.txt", "bert_config.json", "tfidf.txt",
                           "face_model.json", "head.safetensors", "embedder.safetensors",
                           "calibration.json"};

// Without a run alone: mid-epoch checkpoints this often (a crash loses at
// most this much work; data parallel, the epoch's sums live on every rank
// and only an interruption or the epoch's end saves them).
constexpr auto kCheckpointEvery = std::chrono::minutes(5);

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

Metrics no_validation() {
  Metrics none;
  none.loss = none.accuracy = std::numeric_limits<double>::quiet_NaN();
  return none;
}

// Data parallel, after a resumed checkpoint: it holds the sums of all ranks,
// so rank 0 carries them on and the others start their share from zero.
void share_resumed_sums(TrainerState& state, bool lead) {
  if (lead) return;
  state.loss_sum = 0;
  state.correct = state.seen = 0;
}

// Data parallel, at the end of an epoch: each rank's training sums (loss,
// correct, seen) become those of all ranks.
void reduce_epoch_sums(dist::Group* group, TrainerState& state) {
  if (!group) return;
  torch::Tensor t = torch::tensor({state.loss_sum, double(state.correct), double(state.seen)},
                                  torch::kFloat64);
  group->all_reduce(t, "sum of training metrics");
  state.loss_sum = t[0].item<double>();
  state.correct = static_cast<int64_t>(t[1].item<double>());
  state.seen = static_cast<int64_t>(t[2].item<double>());
}

// The state of one call of run_loop.
class Loop {
 public:
  Loop(const TrainOptions& o, LoopTask& task)
      : o_(o), task_(task), group_(active_group(o)), module_(task.module()) {
    rank_ = group_ ? group_->rank() : 0;
    world_ = group_ ? group_->size() : 1;
    lead_ = rank_ == 0;
    epochs_ = task.one_pass() ? 1 : o.epochs;
    if (task.one_pass() && o.epochs != 1)
      log_info(str_cat("the model is fitted in one pass over the training data; --epochs ", o.epochs,
                       " is not used"));
    groups_ = task.param_groups();
    optimizer_ = make_optimizer(o, groups_);
    steps_per_epoch_ = task.steps_per_epoch();
    const bool per_epoch = task.schedule_per_epoch();
    clock_per_epoch_ = per_epoch ? 1 : steps_per_epoch_;
    clock_total_ = clock_per_epoch_ * epochs_;
    // A negative warmup is the MLM recipe's default: 6% of the run.
    warmup_ = o.warmup_epochs < 0 ? static_cast<int64_t>(0.06 * static_cast<double>(clock_total_))
                                  : static_cast<int64_t>(o.warmup_epochs * static_cast<double>(clock_per_epoch_));
    step_size_ = clock_per_epoch_ * (o.step_size > 0 ? o.step_size : std::max<int64_t>(1, epochs_ / 3));
    summary_.out = o.out;
  }

  TrainSummary run() {
    if (o_.resume) {
      state_ = load_checkpoint(o_.out, module_, *optimizer_);
      log_info(str_cat("resuming ", o_.out, " after epoch ", state_.epochs_done,
                       state_.step_in_epoch > 0 ? str_cat(" and step ", state_.step_in_epoch) : ""));
      share_resumed_sums(state_, lead_);
    }
    start_data_parallel();
    if (!task_.has_validation() && !task_.keep_every_epoch())
      log_info("no validation data (--val-split 0): every epoch's model is kept");
    for (const auto& r : state_.rows) spent_ += r.seconds;
    last_checkpoint_ = Clock::now();
    for (int64_t epoch = state_.epochs_done; epoch < epochs_; ++epoch)
      if (!run_epoch(epoch)) break;
    summary_.epochs_run = state_.epochs_done;
    summary_.best_epoch = state_.best_epoch;
    // The best epoch's validation accuracy (best_accuracy holds its --select-metric score).
    summary_.best_val_accuracy =
        state_.best_epoch > 0 && state_.best_epoch <= static_cast<int64_t>(state_.rows.size())
            ? state_.rows[state_.best_epoch - 1].val_accuracy
            : state_.best_accuracy;
    summary_.seconds = spent_;
    if (!lead_) return summary_;
    if (!summary_.interrupted) task_.test(summary_);
    write_report_or_warn(o_.out);
    return summary_;
  }

 private:
  void start_data_parallel() {
    if (!group_) return;
    // Everyone starts from rank 0's weights; gradients are averaged over the ranks.
    dist::broadcast_module(*group_, module_);
    std::vector<torch::Tensor> params;
    for (auto& p : module_.parameters())
      if (p.requires_grad()) params.push_back(p);
    reducer_ = std::make_unique<dist::GradReducer>(group_, std::move(params), group_->config().overlap);
  }

  // One optimiser step; returns its stats.
  StepStats one_step(int64_t epoch, int64_t s, int64_t step) {
    const int64_t clock = clock_per_epoch_ == 1 ? epoch : step;
    set_lr(*optimizer_, groups_, lr_factor(o_.schedule, clock, clock_total_, warmup_, step_size_, o_.gamma));
    optimizer_->zero_grad();
    if (group_ && task_.sync_buffers()) dist::broadcast_module(*group_, module_, /*buffers_only=*/true);
    const bool hooks = reducer_ && task_.one_backward_per_step();
    if (hooks) reducer_->prepare();
    StepStats st = task_.step(epoch, s);
    if (hooks) reducer_->finish();
    else if (reducer_) reducer_->reduce_accumulated();
    if (st.skip) return st;
    check_finite_loss(st.loss_sum / static_cast<double>(std::max<int64_t>(1, st.count)), epoch + 1, s + 1);
    if (o_.clip_grad > 0) torch::nn::utils::clip_grad_norm_(module_.parameters(), o_.clip_grad);
    optimizer_->step();
    state_.loss_sum += st.loss_sum;
    state_.correct += st.correct;
    state_.seen += st.count;
    return st;
  }

  // Whether the run stops after step `step` (1-based in the run) that is not
  // the epoch's last: a signal, should_stop or the time budget. All ranks
  // decide together (a signal may reach only some).
  void check_stop(int64_t step, double epoch_seconds) {
    bool stop = stop_requested() || (o_.should_stop && o_.should_stop(step));
    bool budget = o_.time_budget > 0 && spent_ + epoch_seconds >= o_.time_budget * 60;
    if (group_) {
      stop = group_->any(stop, "stop check");
      if (o_.time_budget > 0) budget = group_->any(budget, "time budget check");
    }
    summary_.interrupted = stop;
    summary_.budget_reached = !stop && budget;
  }

  // Returns false when the run ends after this epoch.
  bool run_epoch(int64_t epoch) {
    const auto t0 = Clock::now();
    const double before = state_.seconds;  // of this epoch, before a resume
    const int64_t first_step = state_.step_in_epoch;
    task_.begin_epoch(epoch, first_step);
    int64_t step = epoch * steps_per_epoch_ + first_step;
    const int64_t items_total = task_.items_per_epoch();
    Progress progress(str_cat("epoch ", epoch + 1, "/", epochs_), items_total);
    progress.advance(items_total * first_step / std::max<int64_t>(1, steps_per_epoch_));
    int64_t items = 0;
    for (int64_t s = first_step; s < steps_per_epoch_; ++s) {
      const StepStats st = one_step(epoch, s, step);
      state_.step_in_epoch = s + 1;
      items += st.items;
      summary_.steps += 1;
      progress.advance(st.items);
      ++step;
      if (group_) maybe_inject_fault(rank_, step);
      if (s + 1 == steps_per_epoch_) break;
      check_stop(step, before + since(t0));
      if (summary_.interrupted || summary_.budget_reached) break;
      if (!group_ && lead_ && Clock::now() - last_checkpoint_ > kCheckpointEvery) {
        state_.seconds = before + since(t0);
        save_checkpoint(o_.out, module_, *optimizer_, state_);
        last_checkpoint_ = Clock::now();
      }
    }
    progress.finish();
    task_.end_epoch(epoch, first_step == 0 && !summary_.interrupted && !summary_.budget_reached);
    const double in_process = since(t0);
    state_.seconds = before + in_process;
    reduce_epoch_sums(group_.get(), state_);
    if (summary_.interrupted) {
      if (lead_) save_checkpoint(o_.out, module_, *optimizer_, state_);
      log_info(str_cat("interrupted in epoch ", epoch + 1, " after step ", state_.step_in_epoch,
                       "; the state is saved: continue with --resume --out ", o_.out));
      return false;
    }
    const Metrics val = task_.has_validation() ? task_.validate() : no_validation();
    summary_.last_val = val;
    log_reducer();
    return finish_epoch(epoch, step, val, static_cast<double>(items) / std::max(1e-9, in_process));
  }

  // The validation score that picks the best epoch, higher is better
  // (--select-metric; tasks that do not check it keep accuracy).
  double selection_score(const Metrics& val) const {
    const std::string& m = o_.select_metric;
    if (m == "balanced_accuracy") return balanced_accuracy(val);
    if (m == "macro_f1") return macro_f1(val);
    if (m == "loss") return -val.loss;
    return val.accuracy;
  }

  // The saved model's calibration.json, from the validation logits of the
  // epoch it comes from (tasks that give them, with validation data).
  void calibrate_saved_model(int64_t epoch) {
    auto [logits, labels] = task_.validation_logits();
    if (!logits.defined() || !task_.has_validation()) return;
    const TemperatureFit fit = write_run_calibration(o_.out, o_.calibrate, logits, labels);
    if (o_.calibrate != "none")
      log_info(str_cat("calibration of epoch ", epoch, "'s model: temperature ", fit.temperature,
                       " (validation NLL ", fit.nll_before, " -> ", fit.nll_after, ", ECE ", fit.ece_before,
                       " -> ", fit.ece_after, ")"));
  }

  void log_reducer() {
    if (!reducer_) return;
    const auto& rs = reducer_->stats();
    log_info(str_cat("dist: ", world_, " workers, ", rs.buckets, " gradient bucket(s) of ", rs.bytes / 1e6,
                     " MB in all, all-reduce wait after backward ",
                     1e3 * rs.wait_seconds / std::max<int64_t>(1, rs.steps), " ms/step over ", rs.steps,
                     " steps"));
  }

  // The end of an epoch: the metrics row (logged, kept, written to
  // metrics.csv), the model kept when its validation accuracy is the best so
  // far (or every epoch without validation), the checkpoint, then
  // --stop-after-epoch, stop requests and early stopping. Data parallel, every
  // rank has the same sums and validation metrics, so all decide alike; rank 0
  // alone writes. Returns false when the run ends here.
  bool finish_epoch(int64_t epoch, int64_t step, const Metrics& val, double items_per_second) {
    // No item counted (a head fitted without a loss): no training loss or accuracy.
    const double seen = state_.seen > 0 ? static_cast<double>(state_.seen) : std::nan("");
    const double lr = optimizer_->param_groups().empty() ? 0.0 : optimizer_->param_groups()[0].options().get_lr();
    EpochRow row{epoch + 1, state_.loss_sum / seen, double(state_.correct) / seen, val.loss,
                 val.accuracy, lr, state_.seconds, items_per_second};
    row.domain_accuracy = task_.domain_accuracy();  // issue 19
    row.unlabeled_kept = task_.unlabeled_kept();
    // Never keep (or checkpoint) weights that the last steps made non-finite.
    check_finite_parameters(module_, str_cat("after epoch ", epoch + 1));
    state_.rows.push_back(row);
    spent_ += state_.seconds;
    log_info(str_cat("epoch ", row.epoch, "/", epochs_, "  loss ", row.train_loss, "  acc ",
                     row.train_accuracy, "  val_loss ", row.val_loss, "  val_acc ", row.val_accuracy,
                     "  lr ", row.lr, "  ", static_cast<int64_t>(row.items_per_second), " ",
                     task_.unit(),
                     std::isnan(row.domain_accuracy) ? "" : str_cat("  domain_acc ", row.domain_accuracy),
                     std::isnan(row.unlabeled_kept) ? "" : str_cat("  unlabeled_kept ", row.unlabeled_kept)));
    if (lead_ && o_.on_epoch) o_.on_epoch(row);
    state_.epochs_done = summary_.budget_reached ? epochs_ : epoch + 1;
    state_.step_in_epoch = 0;
    state_.loss_sum = 0;
    state_.correct = state_.seen = 0;
    state_.seconds = 0;
    const bool has_val = task_.has_validation() && !task_.keep_every_epoch();
    const double score = selection_score(val);
    if (state_.best_epoch == 0 || !has_val || score > state_.best_accuracy) {
      state_.best_accuracy = score;
      state_.best_epoch = epoch + 1;
      state_.bad_epochs = 0;
      if (lead_) {
        task_.save_model();
        calibrate_saved_model(epoch + 1);
      }
    } else {
      state_.bad_epochs += 1;
    }
    if (lead_) {
      write_file_atomic(o_.out + "/metrics.csv", metrics_csv(state_.rows));
      save_checkpoint(o_.out, module_, *optimizer_, state_);
    }
    last_checkpoint_ = Clock::now();
    if (summary_.budget_reached) {
      log_info(str_cat("time budget of ", o_.time_budget, " min reached in epoch ", epoch + 1));
      return false;
    }
    const bool more = state_.epochs_done < epochs_;
    const bool pause = o_.stop_after_epoch > 0 && state_.epochs_done >= o_.stop_after_epoch;
    bool stop = pause || stop_requested() || (o_.should_stop && o_.should_stop(step));
    if (group_ && more) stop = group_->any(stop, "stop check");
    if (more && stop) {
      summary_.interrupted = true;
      log_info(str_cat(pause ? "paused" : "interrupted", " after epoch ", state_.epochs_done,
                       "; continue with --resume --out ", o_.out));
      return false;
    }
    if (o_.patience > 0 && state_.bad_epochs >= o_.patience && more) {
      const bool loss = o_.select_metric == "loss";
      log_info(str_cat("early stop: no better validation ", loss ? "loss" : o_.select_metric, " for ", o_.patience,
                       " epochs (best ", loss ? -state_.best_accuracy : state_.best_accuracy, " at epoch ",
                       state_.best_epoch, ")"));
      summary_.stopped_early = true;
      return false;
    }
    return true;
  }

  const TrainOptions& o_;
  LoopTask& task_;
  std::shared_ptr<dist::Group> group_;
  torch::nn::Module& module_;
  int rank_ = 0, world_ = 1;
  bool lead_ = true;
  std::vector<ParamGroup> groups_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<dist::GradReducer> reducer_;
  int64_t epochs_ = 1;  // o.epochs, or 1 for a task fitted in one pass
  int64_t steps_per_epoch_ = 0, clock_per_epoch_ = 0, clock_total_ = 0, warmup_ = 0, step_size_ = 0;
  TrainerState state_;
  TrainSummary summary_;
  double spent_ = 0;  // seconds of the finished epochs
  Clock::time_point last_checkpoint_;
};

}  // namespace

TrainSummary run_loop(const TrainOptions& o, LoopTask& task) { return Loop(o, task).run(); }

TaskRun::TaskRun(const TrainOptions& o) : o_(o), group_(active_group(o)) {
  rank_ = group_ ? group_->rank() : 0;
  world_ = group_ ? group_->size() : 1;
  if (group_) check_same_options(*group_, o);
}

double TaskRun::ratio_over_ranks(int64_t num, int64_t den, const char* what) {
  torch::Tensor t = torch::tensor({static_cast<double>(num), static_cast<double>(den)}, torch::kFloat64);
  if (group_) group_->all_reduce(t, what);
  const double d = t[1].item<double>();
  return d > 0 ? t[0].item<double>() / d : std::numeric_limits<double>::quiet_NaN();
}

void TaskRun::finish_unlabeled_epoch() {
  const UnlabeledCounts& c = unlabeled_counts_;
  if (o_.self_train != "none") unlabeled_kept_ = ratio_over_ranks(c.kept, c.seen, "sum of the kept pseudo-labels");
  if (o_.adapt == "dann" || o_.adapt == "cdan")
    domain_accuracy_ = ratio_over_ranks(c.domain_correct, c.domain_count, "sum of the domain classifier's accuracy");
}

void write_report_or_warn(const std::string& out) {
  try {
    write_run_report(out);
  } catch (const std::exception& e) {
    log_warn(str_cat("report.html not written: ", e.what()));
  }
}

std::shared_ptr<dist::Group> active_group(const TrainOptions& o) {
  return o.group && o.group->size() > 1 ? o.group : nullptr;
}

void prepare_run_dir(const TrainOptions& o) {
  bool exists = fs::exists(o.out);
  if (o.resume) {
    GRAFT_CHECK_USAGE(fs::exists(checkpoint_path(o.out)), "--resume: '", o.out,
                      "' has no checkpoint to resume from (expected ", checkpoint_path(o.out), ")");
    // Left by a kill -9 during a write; the files they were meant to replace are intact.
    remove_stale_temporaries(o.out);
    remove_stale_temporaries(fs::path(checkpoint_path(o.out)).parent_path().string());
    return;
  }
  if (exists) {
    GRAFT_CHECK_USAGE(fs::is_directory(o.out), "--out: '", o.out, "' exists and is not a folder");
    bool empty = fs::directory_iterator(o.out) == fs::directory_iterator();
    GRAFT_CHECK_USAGE(empty || o.overwrite, "--out: '", o.out,
                      "' already exists (use --overwrite to replace it or --resume to continue)");
    for (const char* f : kRunFiles) fs::remove_all(fs::path(o.out) / f);
    remove_stale_temporaries(o.out);
  }
  make_dirs(o.out);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                        const std::vector<ParamGroup>& groups) {
  std::vector<torch::optim::OptimizerParamGroup> pg;
  for (const auto& g : groups) {
    if (o.optimizer == "adamw") {
      auto opt = std::make_unique<torch::optim::AdamWOptions>(g.lr);
      opt->weight_decay(g.weight_decay);
      pg.emplace_back(g.params, std::move(opt));
    } else {
      auto opt = std::make_unique<torch::optim::SGDOptions>(g.lr);
      opt->momentum(o.momentum).nesterov(o.nesterov && o.momentum > 0).weight_decay(g.weight_decay);
      pg.emplace_back(g.params, std::move(opt));
    }
  }
  if (o.optimizer == "adamw")
    return std::make_unique<torch::optim::AdamW>(pg, torch::optim::AdamWOptions(o.lr));
  return std::make_unique<torch::optim::SGD>(pg, torch::optim::SGDOptions(o.lr));
}

void set_lr(torch::optim::Optimizer& opt, const std::vector<ParamGroup>& groups, double factor) {
  auto& pg = opt.param_groups();
  for (size_t i = 0; i < pg.size(); ++i) pg[i].options().set_lr(groups[i].lr * factor);
}

TrainOptions resume_options(const TrainOptions& options) {
  // The run's own settings win; only how it runs here may change.
  std::string cfg = options.out + "/config.json";
  GRAFT_CHECK_USAGE(fs::exists(cfg), "--resume: '", options.out, "' has no config.json (expected ", cfg,
                    ")");
  TrainOptions stored =
      train_options_from_json(json_get<nlohmann::json>(read_json_file(cfg), "options", cfg), cfg);
  for (const OptionRow& row : train_option_table())
    if (row.per_process || !row.in_config) row.set(stored, row.get(options));
  stored.out = options.out;
  stored.resume = true;
  stored.overwrite = false;
  stored.should_stop = options.should_stop;
  stored.on_epoch = options.on_epoch;
  stored.group = options.group;
  if (!fs::exists(checkpoint_path(options.out))) {
    // Stopped before its first checkpoint (a kill during the first epoch or
    // its first save): the run starts again from its own settings. Only the
    // files graft owns are replaced.
    log_info(str_cat("--resume: '", options.out,
                     "' has no checkpoint yet; the run starts again from its first epoch"));
    stored.resume = false;
    stored.overwrite = true;
  }
  return stored;
}

void check_same_options(dist::Group& group, const TrainOptions& o) {
  nlohmann::json mine = to_json(o);
  for (const OptionRow& row : train_option_table())
    if (row.per_process) mine.erase(row.key);
  if (group.rank() == 0) {
    group.store_set("graft/train_options", mine.dump());
    return;
  }
  nlohmann::json lead = parse_json(group.store_get("graft/train_options"), "rank 0's options");
  std::string diff;
  for (auto it = mine.begin(); it != mine.end(); ++it)
    if (!lead.contains(it.key()) || lead[it.key()] != it.value())
      diff += str_cat(diff.empty() ? "" : "; ", it.key(), " is ", json_excerpt(it.value()), " here but ",
                      json_excerpt(lead.value(it.key(), nlohmann::json())), " on rank 0");
  GRAFT_CHECK_USAGE(diff.empty(), "rank ", group.rank(),
                    ": the workers of a distributed run must use the same options: ", diff);
}

torch::Tensor sharded_rows(dist::Group* group, int64_t n, const std::string& what,
                           const std::function<torch::Tensor(const std::vector<size_t>&)>& compute) {
  std::vector<size_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), size_t{0});
  if (!group) return compute(all);
  const std::vector<size_t> mine = dist::shard_order(all, group->rank(), group->size(), /*pad=*/false);
  torch::Tensor part = compute(mine).contiguous();
  std::vector<int64_t> pos(mine.begin(), mine.end());
  torch::Tensor rows = group->all_gather_rows(part, "all-gather of " + what);
  torch::Tensor where = group->all_gather_rows(torch::tensor(pos, torch::kInt64), "all-gather of " + what);
  return rows.index_select(0, where.argsort());
}

void check_finite_loss(double loss, int64_t epoch, int64_t step_in_epoch) {
  GRAFT_CHECK(std::isfinite(loss), "training diverged: the loss of epoch ", epoch, " step ",
              step_in_epoch, " is ", loss,
              " (expected a finite number; lower --lr, or set --clip-grad); no model of this "
              "epoch was saved");
}

void check_finite_parameters(torch::nn::Module& model, const std::string& when) {
  torch::NoGradGuard no_grad;
  for (const auto& p : model.named_parameters())
    GRAFT_CHECK(!p.value().is_floating_point() || torch::isfinite(p.value()).all().item<bool>(),
                "training diverged: parameter '", p.key(), "' holds non-finite values ", when,
                " (expected finite weights; lower --lr, or set --clip-grad); it was not saved");
}

void check_finite_weights(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                          const std::string& file) {
  for (const auto& [name, t] : tensors)
    GRAFT_CHECK(!t.is_floating_point() || torch::isfinite(t).all().item<bool>(), "--weights '",
                file, "': tensor '", name, "' holds NaN or infinite values (expected finite weights)");
}

void maybe_inject_fault(int rank, int64_t step) {
  static const char* spec = std::getenv("GRAFT_FAULT_DIST_KILL");
  if (!spec || !*spec) return;
  int r = -1;
  long long s = -1;
  if (std::sscanf(spec, "%d:%lld", &r, &s) == 2 && r == rank && s == step) std::raise(SIGKILL);
}

torch::Tensor class_weight_tensor(const TrainOptions& o, const std::vector<int64_t>& counts) {
  if (o.class_weights != "auto") return {};
  double n = 0;
  for (auto c : counts) n += static_cast<double>(c);
  std::vector<float> w;
  for (auto c : counts)
    w.push_back(static_cast<float>(n / (static_cast<double>(counts.size()) * std::max<int64_t>(c, 1))));
  return torch::tensor(w);
}

torch::Tensor classification_loss(const TrainOptions& o, const torch::Tensor& logits,
                                  const torch::Tensor& labels, const torch::Tensor& class_weights) {
  auto opts = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(o.label_smoothing);
  if (class_weights.defined()) opts.weight(class_weights);
  return torch::nn::functional::cross_entropy(logits, labels, opts);
}

}  // namespace graft
