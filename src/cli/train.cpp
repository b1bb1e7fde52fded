// graft train / graft pretrain: every TrainOptions field as a flag.

#include <filesystem>
#include <iostream>
#include <memory>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/dist/group.h"
#include "graft/dist/launch.h"
#include "graft/models/registry.h"
#include "graft/select/search.h"
#include "graft/text/mlm.h"
#include "graft/train/trainer.h"
#include "verbs.h"

namespace graft::cli {

namespace fs = std::filesystem;

namespace {

// The value of a flag on the command line ("--flag V" or "--flag=V"), or "".
std::string flag_value(const std::vector<std::string>& args, const std::string& flag) {
  std::string v;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == flag && i + 1 < args.size()) v = args[i + 1];
    if (args[i].rfind(flag + "=", 0) == 0) v = args[i].substr(flag.size() + 1);
  }
  return v;
}

// The options before the command line's flags: the defaults of the task
// (and backbone) named on the command line or in --config, then --config
// FILE's values, so that flags given on the command line override them.
TrainOptions preload_config(const std::vector<std::string>& args, const TrainOptions* base = nullptr) {
  nlohmann::json j;
  const std::string file = flag_value(args, "--config");
  if (!file.empty()) {
    try {
      j = read_json_file(file);
    } catch (const Error& e) {
      throw UsageError(str_cat("--config: ", e.what()));
    }
    if (j.is_object() && j.contains("options")) j = j["options"];  // a run's config.json
  }
  auto pick = [&](const char* flag, const char* key) {
    std::string v = flag_value(args, flag);
    if (v.empty() && j.is_object() && j.contains(key) && j[key].is_string()) v = j[key].get<std::string>();
    return v;
  };
  const std::string task = pick("--task", "task");
  TrainOptions o = base ? *base
                        : default_train_options(task.empty() ? "image" : task, pick("--backbone", "backbone"));
  if (!file.empty()) o = train_options_from_json(j, file, &o);
  return o;
}

void bind_options(CLI::App& sub, TrainOptions& o, bool text_flags = true) {
  sub.add_option("--config", "JSON file of options (a run's config.json works too); flags override it");
  sub.add_option("--task", o.task, "image, text or face (graft train --task face --help: its options)")
      ->capture_default_str();
  sub.add_option("--data", o.data, "Training data: a folder of class folders or an IDX images file; "
                 "--task text: a CSV, TSV or JSONL file or a folder of class files");
  sub.add_option("--val", o.val, "Validation images (default: a stratified split of --data)");
  sub.add_option("--val-split", o.val_split, "Fraction of --data held out for validation when --val is not given")
      ->capture_default_str();
  sub.add_option("--test", o.test, "Test images, evaluated once at the end with the best model");
  sub.add_option("--classes", o.classes, "Keep only these classes, in this order (comma-separated)")
      ->delimiter(',');
  sub.add_option("--per-class", o.per_class, "At most N images per class of --data (0: all), before the validation split")
      ->capture_default_str();
  sub.add_option("--backbone", o.backbone, "Backbone: " + backbone_names())->capture_default_str();
  sub.add_option("--weights", o.weights, "Source weights: a file (.safetensors, .pt/.pth), a run directory, or none")
      ->capture_default_str();
  sub.add_flag("--weights-strict", o.weights_strict, "Missing or unexpected weight names are an error");
  sub.add_option("--head", o.head, "New head: linear or mlp:HIDDEN")->capture_default_str();
  sub.add_option("--strategy", o.strategy, "linear (frozen backbone), partial:N (last N stages) or full")
      ->capture_default_str();
  sub.add_option("--epochs", o.epochs, "Epochs")->capture_default_str();
  sub.add_option("--batch-size", o.batch_size, "Batch size")->capture_default_str();
  sub.add_option("--optimizer", o.optimizer, "sgd or adamw")->capture_default_str();
  sub.add_option("--lr", o.lr, "Learning rate of the head")->capture_default_str();
  sub.add_option("--backbone-lr-mult", o.backbone_lr_mult, "Backbone learning rate = lr x this")
      ->capture_default_str();
  sub.add_option("--layer-decay", o.layer_decay, "Each earlier stage's learning rate x this")
      ->capture_default_str();
  sub.add_option("--weight-decay", o.weight_decay, "Weight decay (not on norms and biases)")
      ->capture_default_str();
  sub.add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
  sub.add_flag("--nesterov", o.nesterov, "Nesterov momentum");
  sub.add_option("--schedule", o.schedule,
                 "cosine, linear, step or constant (text task default: linear)")
      ->capture_default_str();
  sub.add_option("--warmup-epochs", o.warmup_epochs, "Linear warmup length")->capture_default_str();
  sub.add_option("--step-size", o.step_size, "step schedule: epochs between decays (0: epochs/3)")
      ->capture_default_str();
  sub.add_option("--gamma", o.gamma, "step schedule: decay factor")->capture_default_str();
  sub.add_option("--label-smoothing", o.label_smoothing, "Label smoothing")->capture_default_str();
  sub.add_option("--class-weights", o.class_weights, "none or auto (inverse class frequency)")
      ->capture_default_str();
  sub.add_option("--clip-grad", o.clip_grad, "Max gradient norm (0: off)")->capture_default_str();
  sub.add_option("--patience", o.patience, "Early stopping patience in epochs (0: off)")
      ->capture_default_str();
  sub.add_option("--augment", o.augment, "none, light or strong")->capture_default_str();
  sub.add_flag("!--no-feature-cache", o.feature_cache,
               "linear: recompute features every epoch instead of caching them");
  add_precision(sub, o.precision);
  sub.add_option("--cache-dir", o.cache_dir, "Feature cache folder (default $GRAFT_CACHE_DIR/features or ~/.cache/graft/features)");
  sub.add_option("--seed", o.seed, "Random seed")->capture_default_str();
  add_threads(sub, o.threads);
  sub.add_option("--workers", o.workers, "Image decoding threads")->capture_default_str();
  sub.add_option("--device", o.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  sub.add_option("--out", o.out, "Run directory to write");
  sub.add_flag("--overwrite", o.overwrite, "Replace graft's files in an existing --out");
  sub.add_flag("--resume", o.resume, "Continue the run in --out from its last checkpoint");
  sub.add_option("--stop-after-epoch", o.stop_after_epoch,
                 "Pause after this many epochs (checkpointed, exit 130; --resume goes on)");
  sub.add_flag("--strict", o.strict, "Unreadable images are errors instead of counted warnings");
  sub.add_option("--max-pixels", o.max_pixels,
                 "Images claiming more pixels than this (in their header) are refused before decoding")
      ->capture_default_str();
  sub.add_flag("--quiet", o.quiet, "No progress or per-epoch lines");
  if (!text_flags) return;  // graft pretrain has its own --vocab and --max-length
  auto text = "Text task (--task text)";
  sub.add_option("--text-column", o.text_column, "Text column: a name or 0-based index (default: found by name)")
      ->group(text);
  sub.add_option("--text-b-column", o.text_b_column, "Second text column of sentence pairs")->group(text);
  sub.add_option("--label-column", o.label_column, "Label column: a name or 0-based index (default: found by name)")
      ->group(text);
  sub.add_option("--text-format", o.text_format, "auto, csv, tsv, jsonl or folder")
      ->capture_default_str()->group(text);
  sub.add_option("--header", o.header, "Line 1 of CSV/TSV is a header: auto, yes or no")
      ->capture_default_str()->group(text);
  sub.add_option("--vocab", o.vocab, "WordPiece vocab.txt (default: the one beside --weights)")->group(text);
  sub.add_flag("--cased", o.cased, "Keep case and accents (a cased vocabulary)")->group(text);
  sub.add_option("--max-length", o.max_length, "Tokens per text, [CLS] and [SEP] included; longer texts are truncated and counted")
      ->capture_default_str()->group(text);
  sub.add_option("--grad-accum", o.grad_accum, "Micro-batches of --batch-size per optimiser step")
      ->capture_default_str()->group(text);
  sub.add_flag("!--no-bucket", o.bucket, "Do not group training batches by text length")->group(text);
  sub.add_option("--dropout", o.dropout, "BERT and head dropout (-1: the model config's)")
      ->capture_default_str()->group(text);
}

// How a training run is spread over processes and machines (not settings of
// the run: they are not in config.json).
struct DistFlags {
  int nproc = 1, nnodes = 1, node_rank = 0, master_port = 0;
  std::string master_addr;
  double timeout_s = 300, bucket_mb = 25;
};

void bind_dist(CLI::App& sub, DistFlags& d) {
  sub.add_option("--nproc", d.nproc,
                 "Data-parallel worker processes on this machine (threads are split between them)")
      ->capture_default_str();
  sub.add_option("--nnodes", d.nnodes, "Machines in the data-parallel job")->capture_default_str();
  sub.add_option("--node-rank", d.node_rank, "This machine's number, 0 to --nnodes - 1 (0 hosts the rendezvous)")
      ->capture_default_str();
  sub.add_option("--master-addr", d.master_addr,
                 "Address of machine 0 (default $MASTER_ADDR, else 127.0.0.1)");
  sub.add_option("--master-port", d.master_port,
                 "Rendezvous port on machine 0 (default $MASTER_PORT, else a free port on one machine, 29500 on several)");
  sub.add_option("--dist-timeout", d.timeout_s,
                 "Seconds to wait for the rendezvous and for a hung worker")
      ->capture_default_str();
  sub.add_option("--bucket-mb", d.bucket_mb, "Gradient all-reduce bucket size in MiB")
      ->capture_default_str();
}

int run_train(TrainOptions o, const DistFlags& d, const std::vector<std::string>& args) {
  set_quiet(o.quiet);
  install_stop_handlers();
  // --nproc/--nnodes: this process only starts the workers (as torchrun
  // would); a started worker, or one under torchrun, finds WORLD_SIZE etc.
  if ((d.nproc > 1 || d.nnodes > 1) && !dist::is_launched_worker()) {
    dist::LaunchOptions lo;
    lo.nproc = d.nproc;
    lo.nnodes = d.nnodes;
    lo.node_rank = d.node_rank;
    lo.master_addr = d.master_addr;
    lo.master_port = d.master_port;
    lo.timeout_s = d.timeout_s;
    lo.bucket_mb = d.bucket_mb;
    lo.args = args;
    return dist::launch_workers(lo);
  }
  if (auto world = dist::from_environment(); world && world->world_size > 1) {
    if (!std::getenv("GRAFT_DIST_TIMEOUT")) world->timeout_s = d.timeout_s;
    if (!std::getenv("GRAFT_DIST_BUCKET_MB")) world->bucket_mb = d.bucket_mb;
    if (o.threads == 0) o.threads = std::max(1, available_cores() / world->local_world_size);
    if (world->rank != 0) set_quiet(true);
    o.group = dist::Group::connect(*world);
  }
  TrainSummary s = train(o);
  if (o.group && o.group->rank() != 0) return s.interrupted ? 130 : 0;
  if (s.interrupted && o.stop_after_epoch > 0 && s.epochs_run >= o.stop_after_epoch) {
    std::cerr << "paused after epoch " << s.epochs_run << " (--stop-after-epoch); continue with: "
              << "graft train --resume --out " << s.out << "\n";
    return 130;
  }
  if (s.interrupted) {
    std::cerr << "interrupted: the last state is in " << s.out
              << "/checkpoint; continue with: graft train --resume --out " << s.out << "\n";
    return 130;
  }
  nlohmann::ordered_json j;
  j["run"] = s.out;
  j["epochs"] = s.epochs_run;
  j["best_epoch"] = s.best_epoch;
  j["val_accuracy"] = s.best_val_accuracy;
  if (s.has_test) j["test_accuracy"] = s.test.accuracy;
  for (auto it = s.details.begin(); it != s.details.end(); ++it) j[it.key()] = it.value();
  std::cout << j.dump() << std::endl;
  return 0;
}

void add_verb(CLI::App& app, Action& run, const std::vector<std::string>& args,
              const std::string& name, const std::string& help, const TrainOptions& defaults) {
  auto opts = std::make_shared<TrainOptions>(defaults);
  // Only the verb actually named reads its --config.
  if (!args.empty() && args[0] == name) *opts = preload_config(args);
  CLI::App* sub = app.add_subcommand(name, help);
  bind_options(*sub, *opts);
  auto dist = std::make_shared<DistFlags>();
  bind_dist(*sub, *dist);
  sub->callback([&run, opts, dist, args] { run = [opts, dist, args] { return run_train(*opts, *dist, args); }; });
}

struct SearchFlags {
  std::string space_file, method = "random";
  int64_t trials = 10, min_epochs = 1;
  double eta = 3;
  int jobs = 1;
  bool keep_all = false, refit = false;
};

int run_search_verb(TrainOptions base, const SearchFlags& f) {
  set_quiet(base.quiet);
  install_stop_handlers();
  SearchOptions so;
  so.resume = base.resume;
  so.overwrite = base.overwrite;
  if (f.space_file.empty()) {
    // graft search --resume --out DIR: everything else from its search.json.
    GRAFT_CHECK_USAGE(base.resume, "--space: a search space JSON file is required");
    const std::string state = base.out + "/search.json";
    GRAFT_CHECK_USAGE(fs::exists(state), "--resume: '", base.out, "' holds no search (expected ",
                      state, ")");
    nlohmann::json j = read_json_file(state);
    TrainOptions stored = train_options_from_json(j.at("base"), state);
    stored.out = base.out;
    stored.threads = base.threads;
    stored.workers = base.workers;
    stored.device = base.device;
    stored.quiet = base.quiet;
    base = stored;
    so.space = j.at("space");
    so.method = j.at("method").get<std::string>();
    so.trials = j.at("trials").get<int64_t>();
    so.eta = j.at("eta").get<double>();
    so.min_epochs = j.at("min_epochs").get<int64_t>();
  } else {
    try {
      so.space = read_json_file(f.space_file);
    } catch (const Error& e) {
      throw UsageError(str_cat("--space: ", e.what()));
    }
    so.method = f.method;
    so.trials = f.trials;
    so.eta = f.eta;
    so.min_epochs = f.min_epochs;
  }
  so.space_source = f.space_file.empty() ? base.out + "/search.json" : f.space_file;
  base.resume = base.overwrite = false;
  so.base = base;
  so.jobs = f.jobs;
  so.keep_all = f.keep_all;
  so.refit = f.refit;
  SearchResult r = run_search(so);
  if (r.interrupted) {
    std::cerr << "interrupted: continue with graft search --resume --out " << base.out << "\n";
    return 130;
  }
  std::cout << search_summary(r);
  return 0;
}

}  // namespace

void add_train_run(CLI::App& sub, Action& run, const std::vector<std::string>& args,
                   std::function<void(TrainOptions&)> options) {
  auto dist = std::make_shared<DistFlags>();
  bind_dist(sub, *dist);
  sub.callback([&run, dist, args, options] {
    run = [dist, args, options] {
      TrainOptions o;
      options(o);
      return run_train(o, *dist, args);
    };
  });
}

void add_search(CLI::App& app, Action& run, const std::vector<std::string>& args) {
  auto opts = std::make_shared<TrainOptions>();
  auto flags = std::make_shared<SearchFlags>();
  if (!args.empty() && args[0] == "search") *opts = preload_config(args);
  CLI::App* sub = app.add_subcommand(
      "search", "Hyper-parameter search over graft train options; keeps the best trial's model");
  bind_options(*sub, *opts);
  sub->add_option("--space", flags->space_file, "Search space: JSON file of option: values or ranges");
  sub->add_option("--method", flags->method, "grid, random or halving (successive halving)")
      ->capture_default_str();
  sub->add_option("--trials", flags->trials, "Trials to draw (random, halving)")->capture_default_str();
  sub->add_option("--eta", flags->eta, "halving: keep 1/eta of the trials at each rung")
      ->capture_default_str();
  sub->add_option("--min-epochs", flags->min_epochs, "halving: epochs of the first rung")
      ->capture_default_str();
  sub->add_option("--jobs", flags->jobs, "Trials at once, in separate processes sharing the threads")
      ->capture_default_str();
  sub->add_flag("--keep-all", flags->keep_all, "Keep every trial's model and checkpoint");
  sub->add_flag("--refit", flags->refit, "Retrain the best settings on train + validation");
  sub->callback([&run, opts, flags] { run = [opts, flags] { return run_search_verb(*opts, *flags); }; });
}

void add_train(CLI::App& app, Action& run, const std::vector<std::string>& args) {
  // The face task trains on face embeddings with options of its own.
  if (!args.empty() && args[0] == "train" && flag_value(args, "--task") == "face") return add_face_train(app, run, args);
  add_verb(app, run, args, "train",
           "Train a target model: source backbone, new head, linear probe or fine-tuning",
           TrainOptions{});
}

void add_pretrain(CLI::App& app, Action& run, const std::vector<std::string>& args) {
  TrainOptions d;
  d.weights = "none";
  d.strategy = "full";
  d.lr = 0.1;
  d.weight_decay = 5e-4;
  d.backbone = "resnet20";
  auto opts = std::make_shared<TrainOptions>(d);
  if (!args.empty() && args[0] == "pretrain") *opts = preload_config(args, &d);
  CLI::App* sub = app.add_subcommand(
      "pretrain",
      "Train a source model from random initialisation on a source dataset (--task text: a BERT "
      "by masked-language modelling on a text corpus)");
  bind_options(*sub, *opts, /*text_flags=*/false);
  auto dist = std::make_shared<DistFlags>();
  bind_dist(*sub, *dist);
  auto mlm = std::make_shared<MlmOptions>();
  sub->add_option("--corpus", mlm->corpus, "--task text: plain-text files, one document each")
      ->delimiter(',');
  sub->add_option("--vocab", mlm->vocab, "--task text: WordPiece vocab.txt");
  sub->add_option("--size", mlm->size, "--task text: tiny, mini, small, medium or base")
      ->capture_default_str();
  sub->add_option("--bert-config", mlm->bert_config, "--task text: a BERT config.json instead of --size");
  sub->add_option("--max-length", mlm->max_length, "--task text: tokens per packed sequence")
      ->capture_default_str();
  sub->add_option("--time-budget", mlm->time_budget_minutes,
                  "--task text: stop after this many minutes (0: none)")->capture_default_str();
  sub->add_option("--mask-prob", mlm->mask_prob, "--task text: share of tokens to predict")
      ->capture_default_str();
  sub->add_option("--val-fraction", mlm->val_fraction, "--task text: sequences held out")
      ->capture_default_str();
  sub->callback([&run, opts, mlm, sub, dist, args] {
    run = [opts, mlm, sub, dist, args] {
      if (opts->task != "text") return run_train(*opts, *dist, args);
      GRAFT_CHECK_USAGE(dist->nproc == 1 && dist->nnodes == 1,
                        "--nproc/--nnodes: data-parallel training is not yet wired into text pretraining");
      // Text: the MLM defaults unless a shared flag was given.
      MlmOptions m = *mlm;
      if (sub->count("--epochs")) m.epochs = opts->epochs;
      if (sub->count("--batch-size")) m.batch_size = opts->batch_size;
      if (sub->count("--lr")) m.lr = opts->lr;
      if (sub->count("--weight-decay")) m.weight_decay = opts->weight_decay;
      if (sub->count("--clip-grad")) m.clip_grad = opts->clip_grad;
      if (sub->count("--warmup-epochs"))
        m.warmup_fraction = opts->warmup_epochs / static_cast<double>(std::max<int64_t>(1, m.epochs));
      m.seed = opts->seed;
      m.threads = opts->threads;
      m.out = opts->out;
      m.resume = opts->resume;
      m.overwrite = opts->overwrite;
      m.quiet = opts->quiet;
      set_quiet(m.quiet);
      install_stop_handlers();
      MlmSummary s = pretrain_mlm(m);
      if (s.interrupted) {
        std::cerr << "interrupted: continue with graft pretrain --task text --resume --out " << m.out
                  << "\n";
        return 130;
      }
      nlohmann::ordered_json j;
      j["run"] = m.out;
      j["epochs"] = s.epochs_done;
      j["steps"] = s.steps;
      j["val_mlm_loss"] = s.val_loss;
      j["val_mlm_accuracy"] = s.val_accuracy;
      j["seconds"] = s.seconds;
      j["time_budget_reached"] = s.budget_reached;
      std::cout << j.dump() << std::endl;
      return 0;
    };
  });
}

}  // namespace graft::cli
