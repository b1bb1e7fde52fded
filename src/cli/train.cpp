// graft train / search / pretrain: every row of the option table (train/option_table.h) as a flag.

#include <filesystem>
#include <iostream>
#include <memory>
#include <type_traits>
#include <variant>

#include "graft/cli/train_options.h"
#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/dist/group.h"
#include "graft/dist/launch.h"
#include "graft/select/search.h"
#include "graft/train/option_table.h"
#include "graft/train/task.h"
#include "graft/train/trainer.h"
#include "verbs.h"

namespace graft::cli {

namespace fs = std::filesystem;

void bind_train_options(CLI::App& sub, TrainOptions& o,
                        const std::function<bool(const OptionRow&)>& keep) {
  sub.add_option("--config", "JSON file of options (a run's config.json works too); flags override it");
  bind_option_rows(sub, o, keep);
}

void bind_option_rows(CLI::App& sub, TrainOptions& o, const std::function<bool(const OptionRow&)>& keep) {
  for (const OptionRow& row : train_option_table()) {
    if (keep && !keep(row)) continue;
    std::visit(
        [&](auto m) {
          using T = std::decay_t<decltype(o.*m)>;
          CLI::Option* opt = nullptr;
          if constexpr (std::is_same_v<T, bool>) opt = sub.add_flag(row.flags, o.*m, row.help);
          else opt = sub.add_option(row.flags, o.*m, row.help);
          if constexpr (std::is_same_v<T, std::vector<std::string>>) opt->delimiter(',');
          if (row.show_default) opt->capture_default_str();
          if (!row.group.empty()) opt->group(row.group);
        },
        row.member);
  }
  // As every verb's --threads (add_threads): graft pretrain --task text
  // passes it on without validate().
  if (CLI::Option* threads = sub.get_option_no_throw("--threads")) threads->check(CLI::NonNegativeNumber);
}

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

// How a training run is spread over processes and machines: the flags
// fill the launcher's options (not settings of the run: not in config.json).
using DistFlags = dist::LaunchOptions;

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
    dist::LaunchOptions lo = d;
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
  const std::string verb = args.empty() ? "train" : args[0];
  if (s.interrupted && o.stop_after_epoch > 0 && s.epochs_run >= o.stop_after_epoch) {
    std::cerr << "paused after epoch " << s.epochs_run << " (--stop-after-epoch); continue with: "
              << "graft " << verb << " --resume --out " << s.out << "\n";
    return 130;
  }
  if (s.interrupted) {
    std::cerr << "interrupted: the last state is in " << s.out << "/checkpoint; continue with: graft "
              << verb << " --resume --out " << s.out << "\n";
    return 130;
  }
  nlohmann::ordered_json j = summary_json(find_task(s.task), s);
  for (auto it = s.details.begin(); it != s.details.end(); ++it) j[it.key()] = it.value();
  std::cout << j.dump() << std::endl;
  return 0;
}

// --help lists the options offered to the task named (or the default one),
// with that task's help texts; the others still parse but are not listed.
void show_task_options(CLI::App& sub, const std::string& task) {
  for (const OptionRow& row : train_option_table()) {
    CLI::Option* opt = sub.get_option_no_throw(row.flag());
    if (!opt) continue;
    if (row.offered_to(task))
      opt->description(row.help_of(task));
    else
      opt->group("");
  }
}

// A flag on the command line that `task` does not take is an error (a
// --config may still hold every option: a run's config.json does). `named`:
// the --task as the user wrote it (graft pretrain --task text is row mlm).
// Not with --resume: the run's own config.json says the task, and only the
// per-process flags count then.
void check_task_flags(const CLI::App& sub, const std::string& task, const std::string& named) {
  if (sub.get_option("--resume")->count() > 0) return;
  for (const OptionRow& row : train_option_table()) {
    const CLI::Option* opt = sub.get_option_no_throw(row.flag());
    if (!opt || opt->count() == 0 || row.offered_to(task)) continue;
    std::string takers;
    for (const TaskRow& t : task_table())
      if (row.offered_to(t.name)) takers += str_cat(takers.empty() ? "" : ", ", t.name);
    throw UsageError(str_cat(row.flag(), ": not an option of --task ", named, " (tasks that take it: ",
                             takers, ")"));
  }
}

void add_verb(CLI::App& app, Action& run, const std::vector<std::string>& args,
              const std::string& name, const std::string& help, const TrainOptions& defaults) {
  auto opts = std::make_shared<TrainOptions>(defaults);
  // Only the verb actually named reads its --config.
  if (!args.empty() && args[0] == name) *opts = preload_config(args);
  CLI::App* sub = app.add_subcommand(name, help);
  bind_train_options(*sub, *opts);
  show_task_options(*sub, opts->task);
  auto dist = std::make_shared<DistFlags>();
  bind_dist(*sub, *dist);
  sub->callback([&run, sub, opts, dist, args] {
    run = [sub, opts, dist, args] {
      check_task_flags(*sub, opts->task, opts->task);
      return run_train(*opts, *dist, args);
    };
  });
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
    for (const OptionRow& row : train_option_table())
      if (row.per_process) row.set(stored, row.get(base));
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

void add_search(CLI::App& app, Action& run, const std::vector<std::string>& args) {
  auto opts = std::make_shared<TrainOptions>();
  auto flags = std::make_shared<SearchFlags>();
  if (!args.empty() && args[0] == "search") *opts = preload_config(args);
  CLI::App* sub = app.add_subcommand(
      "search", "Hyper-parameter search over graft train options; keeps the best trial's model");
  bind_train_options(*sub, *opts);
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
  add_verb(app, run, args, "train",
           "Train a target model: source backbone, new head, linear probe or fine-tuning",
           TrainOptions{});
}

void add_pretrain(CLI::App& app, Action& run, const std::vector<std::string>& args) {
  // The task's pretraining defaults, then --config, then the flags; an
  // unknown --task is reported when the verb runs.
  const bool named = !args.empty() && args[0] == "pretrain";
  const TaskRow* row = nullptr;
  for (const auto& t : task_table())
    if (!row && !t.pretrain_name.empty()) row = &t;  // the first is the default
  try {
    if (named && !flag_value(args, "--task").empty()) row = &find_pretrain_task(flag_value(args, "--task"));
  } catch (const UsageError&) {
  }
  TrainOptions d = row->pretrain_defaults ? row->pretrain_defaults("") : row->defaults("");
  d.task = row->pretrain_name;
  auto opts = std::make_shared<TrainOptions>(d);
  if (named) *opts = preload_config(args, &d);
  CLI::App* sub = app.add_subcommand(
      "pretrain",
      "Train a source model from random initialisation on a source dataset (--task text: a BERT "
      "by masked-language modelling on a text corpus)");
  // Every row: pretraining's own (corpus, vocab, max length...) among them.
  bind_train_options(*sub, *opts);
  show_task_options(*sub, row->name);
  sub->get_option("--task")->description("What to pretrain: " + pretrain_task_names());
  auto dist = std::make_shared<DistFlags>();
  bind_dist(*sub, *dist);
  sub->callback([&run, sub, opts, dist, args] {
    run = [sub, opts, dist, args] {
      const std::string named = opts->task;
      opts->task = find_pretrain_task(named).name;
      check_task_flags(*sub, opts->task, named);
      return run_train(*opts, *dist, args);
    };
  });
}

}  // namespace graft::cli
