// graft search: grid, random and successive-halving search over train
// options; each trial is a graft train run directory under trials/.

#include "graft/select/search.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/data/image_set.h"
#include "graft/eval/run_eval.h"
#include "graft/report/report.h"
#include "graft/report/run_data.h"
#include "graft/train/checkpoint.h"
#include "graft/text/text_eval.h"
#include "graft/text/text_model.h"
#include "graft/train/task.h"
#include "graft/train/trainer.h"

extern char** environ;

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace graft {


namespace {

struct Trial {
  TrialResult r;
  TrainOptions options;
  std::vector<double> val;  // validation accuracy per epoch run (metrics.csv)
};

std::string trial_dir(const std::string& out, int64_t id) {
  std::ostringstream os;
  os << out << "/trials/" << std::setw(3) << std::setfill('0') << id;
  return os.str();
}

// Validation accuracy per epoch from the trial's metrics.csv (none yet: {}).
std::vector<double> read_val_accuracy(const std::string& dir) {
  std::vector<double> out;
  const std::string path = dir + "/metrics.csv";
  if (!fs::exists(path)) return out;
  for (const EpochRow& r : read_metrics_csv(path)) out.push_back(r.val_accuracy);
  return out;
}

// Best validation accuracy within the first `epochs` epochs (earliest on ties).
std::pair<double, int64_t> best_within(const std::vector<double>& val, int64_t epochs) {
  double best = -1;
  int64_t at = 0;
  for (int64_t e = 0; e < std::min<int64_t>(epochs, static_cast<int64_t>(val.size())); ++e)
    if (val[e] > best) {
      best = val[e];
      at = e + 1;
    }
  return {best, at};
}

void write_trial_state(const Trial& t) {
  Json j;
  j["id"] = t.r.id;
  j["params"] = t.r.params;
  j["status"] = t.r.status;
  j["epochs"] = t.r.epochs;
  if (!t.r.error.empty()) j["error"] = t.r.error;
  write_file_atomic(t.r.dir + "/trial.json", j.dump(2) + "\n");
}

std::string self_executable() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  GRAFT_CHECK(!ec, "cannot find the graft executable (/proc/self/exe): ", ec.message());
  return p.string();
}

// Runs the trials `todo` to `epochs` epochs each (the end of the trial when
// epochs == its options.epochs), `jobs` at a time. Returns false when the
// user interrupted the search.
// A trial's process or call ended with `code` (130: stopped; at `target`
// epochs that is a pause): its epochs and status, written to trial.json.
void end_trial(Trial& t, int code, const std::string& error, int64_t target) {
  t.val = read_val_accuracy(t.r.dir);
  t.r.epochs = static_cast<int64_t>(t.val.size());
  if (code == 0) {
    t.r.status = "done";
  } else if (code == 130 && t.r.epochs >= target) {
    t.r.status = "paused";
  } else if (code == 130) {
    t.r.status = "interrupted";
  } else {
    t.r.status = "failed";
    t.r.error = error;
    log_warn(str_cat("trial ", t.r.id, " failed: ", error));
  }
  write_trial_state(t);
}

bool run_segment(std::vector<Trial*> todo, int64_t epochs, const SearchOptions& so) {
  // epochs 0: each trial to its own end.
  auto target = [&](const Trial& t) { return epochs > 0 ? epochs : t.options.epochs; };
  auto prepare = [&](Trial& t, TrainOptions& o) {
    o = t.options;
    o.stop_after_epoch = target(t) < o.epochs ? target(t) : 0;
    o.resume = fs::exists(checkpoint_path(t.r.dir));
    o.overwrite = !o.resume;
    o.quiet = true;
  };
  auto finish = [&](Trial& t, int code, const std::string& error) { end_trial(t, code, error, target(t)); };
  // Trials already past this point (a resumed search) are not run again.
  todo.erase(std::remove_if(todo.begin(), todo.end(),
                            [&](Trial* t) {
                              return t->r.status == "done" || t->r.status == "failed" ||
                                     t->r.epochs >= target(*t);
                            }),
             todo.end());
  if (so.jobs <= 1) {
    for (Trial* t : todo) {
      if (stop_requested()) return false;
      TrainOptions o;
      prepare(*t, o);
      log_info(str_cat("trial ", t->r.id, ": ", t->r.params.dump(), " to epoch ", target(*t)));
      // The trial's own epoch lines stay in its metrics.csv.
      const bool quiet = is_quiet();
      set_quiet(true);
      try {
        TrainSummary s = train(o);
        set_quiet(quiet);
        finish(*t, s.interrupted ? 130 : 0, "");
      } catch (const Error& e) {
        set_quiet(quiet);
        finish(*t, 1, e.what());
      }
      if (t->r.status == "interrupted") return false;
    }
    return !stop_requested();
  }
  // Several at once, each a `graft train` process with its share of threads.
  const std::string exe = so.executable.empty() ? self_executable() : so.executable;
  const int threads = std::max(1, (so.base.threads > 0 ? so.base.threads : available_cores()) / so.jobs);
  const int workers = std::max(1, so.base.workers / so.jobs);
  std::map<pid_t, Trial*> running;
  size_t next = 0;
  bool stopped = false;
  while (next < todo.size() || !running.empty()) {
    while (!stopped && !stop_requested() && next < todo.size() &&
           static_cast<int>(running.size()) < so.jobs) {
      Trial& t = *todo[next++];
      TrainOptions o;
      prepare(t, o);
      Json cfg = to_json(o);
      for (const char* k : {"out", "resume", "overwrite", "quiet", "threads", "workers"}) cfg.erase(k);
      write_file_atomic(t.r.dir + "/trial_options.json", cfg.dump(2) + "\n");
      std::vector<std::string> args = {exe, "train", "--config", t.r.dir + "/trial_options.json",
                                       "--out", t.r.dir, "--threads", std::to_string(threads),
                                       "--workers", std::to_string(workers), "--quiet",
                                       o.resume ? "--resume" : "--overwrite"};
      if (o.stop_after_epoch > 0) {
        args.push_back("--stop-after-epoch");
        args.push_back(std::to_string(o.stop_after_epoch));
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      const std::string log = t.r.dir + "/log.txt";
      posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      posix_spawn_file_actions_adddup2(&fa, 1, 2);
      pid_t pid;
      int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&fa);
      GRAFT_CHECK(rc == 0, "cannot start '", exe, "' for trial ", t.r.id, ": ", std::strerror(rc));
      log_info(str_cat("trial ", t.r.id, ": ", t.r.params.dump(), " to epoch ", target(t),
                       " (process ", pid, ")"));
      running[pid] = &t;
    }
    if (running.empty()) break;
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) {
        // Ctrl-C reaches the children too; wait for them to checkpoint.
        stopped = true;
        continue;
      }
      throw Error(str_cat("waiting for trials: ", std::strerror(errno)));
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    Trial& t = *it->second;
    running.erase(it);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::string error;
    if (code != 0 && code != 130) {
      std::string log = read_file(t.r.dir + "/log.txt");
      size_t at = log.rfind("error:");
      error = at == std::string::npos ? str_cat("exit code ", code) : log.substr(at);
      while (!error.empty() && (error.back() == '\n' || error.back() == '\r')) error.pop_back();
    }
    finish(t, code, error);
    if (t.r.status == "interrupted") stopped = true;
  }
  return !stopped && !stop_requested();
}

// Removes what only the best trial needs to keep.
void prune(const TrialResult& t) {
  for (const char* f : {"model.safetensors", "model.json", "checkpoint", "trial_options.json"})
    fs::remove_all(fs::path(t.dir) / f);
}

// A folder of class folders holding links to the images of both sets.
std::string merged_data(const std::string& out, const TrainOptions& o) {
  const std::string dir = out + "/refit-data";
  fs::remove_all(dir);
  for (const std::string& src : {o.data, o.val}) {
    GRAFT_CHECK_USAGE(fs::is_directory(src), "--refit with --val needs folders of class folders; '",
                      src, "' is not a folder");
    for (const auto& cls : fs::directory_iterator(src)) {
      if (!cls.is_directory() || cls.path().filename().string()[0] == '.') continue;
      fs::path target = fs::path(dir) / cls.path().filename();
      make_dirs(target.string());
      for (const auto& f : fs::recursive_directory_iterator(cls.path())) {
        if (!f.is_regular_file()) continue;
        std::string name = (src == o.data ? "train-" : "val-") +
                           fs::relative(f.path(), cls.path()).string();
        std::replace(name.begin(), name.end(), '/', '_');
        fs::create_symlink(fs::absolute(f.path()), target / name);
      }
    }
  }
  return dir;
}

}  // namespace

namespace {

void check_search_options(const SearchOptions& so) {
  const TrainOptions& base = so.base;
  GRAFT_CHECK_USAGE(!base.out.empty(), "--out: the search folder is required");
  GRAFT_CHECK_USAGE(so.method == "grid" || so.method == "random" || so.method == "halving",
                    "--method: '", so.method, "' is not valid (expected grid, random or halving)");
  GRAFT_CHECK_USAGE(so.trials >= 1, "--trials: ", so.trials, " (expected at least 1)");
  GRAFT_CHECK_USAGE(so.jobs >= 1, "--jobs: ", so.jobs, " (expected at least 1)");
  GRAFT_CHECK_USAGE(so.eta > 1, "--eta: ", so.eta, " (expected a number > 1)");
  GRAFT_CHECK_USAGE(so.min_epochs >= 1 && so.min_epochs <= base.epochs, "--min-epochs: ",
                    so.min_epochs, " (expected 1 to --epochs ", base.epochs, ")");
  GRAFT_CHECK_USAGE(!(so.resume && so.overwrite), "--overwrite and --resume exclude each other");
  GRAFT_CHECK_USAGE(!base.val.empty() || base.val_split > 0,
                    "--val-split 0: a search needs validation data to score its trials");

}

// What the search is: compared on --resume, so that a resumed search is the same one.
Json describe_search(const SearchOptions& so, const std::vector<Json>& points) {
  const TrainOptions& base = so.base;
  Json search_json;
  search_json["method"] = so.method;
  search_json["space"] = so.space;
  search_json["trials"] = so.method == "grid" ? static_cast<int64_t>(points.size()) : so.trials;
  search_json["eta"] = so.eta;
  search_json["min_epochs"] = so.min_epochs;
  Json base_json = to_json(base);
  for (const char* k : {"out", "resume", "overwrite", "quiet", "threads", "workers", "device"})
    base_json.erase(k);
  search_json["base"] = base_json;

  return search_json;
}

// One trial per point, each checked as graft train would check it, and
// --data checked, before any trial runs.
std::vector<Trial> lay_out_trials(const SearchOptions& so, const std::vector<Json>& points) {
  const TrainOptions& base = so.base;
  std::vector<Trial> trials(points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    Trial& t = trials[i];
    t.r.id = static_cast<int64_t>(i);
    t.r.params = points[i];
    t.r.dir = trial_dir(base.out, t.r.id);
    Json j = to_json(base);
    for (auto it = points[i].begin(); it != points[i].end(); ++it) j[it.key()] = it.value();
    const std::string where = str_cat(so.space_source, " trial ", i, " ", points[i].dump());
    t.options = train_options_from_json(j, where);
    t.options.out = t.r.dir;
    t.options.test.clear();  // only the best trial is tested
    t.options.should_stop = base.should_stop;
    // A space over --adapt or --self-train may hold "none" (issue 19): that
    // trial is the supervised baseline and reads no --unlabeled.
    if ((points[i].contains("adapt") || points[i].contains("self_train")) && t.options.adapt == "none" &&
        t.options.self_train == "none")
      t.options.unlabeled.clear();
    try {
      validate(t.options);
    } catch (const UsageError& e) {
      throw UsageError(str_cat(where, ": ", e.what()));
    }
    GRAFT_CHECK_USAGE(t.options.weights == "none" || fs::exists(t.options.weights), where,
                      ": weights '", t.options.weights, "' do not exist");
    // textcnn word vectors (issue 18): a missing file is named before any trial runs.
    GRAFT_CHECK_USAGE(t.options.embeddings == "none" || fs::exists(t.options.embeddings), where,
                      ": embeddings '", t.options.embeddings, "' do not exist (expected a .safetensors from "
                      "graft weights convert, or none)");
  }
  {
    // A bad --data is named now, before any trial runs.
    const TaskRow& task = find_task(base.task);
    GRAFT_CHECK_USAGE(task.data_classes && task.test_run, "--task: graft search does not search ", task.name,
                      " runs (expected ", task_names(), " with a classifier)");
    const size_t classes = task.data_classes(base);
    GRAFT_CHECK(classes >= 2, "--data '", base.data, "' has ", classes,
                " class (expected at least 2)");
    if (so.refit && !base.val.empty()) {
      GRAFT_CHECK_USAGE(fs::is_directory(base.data) && fs::is_directory(base.val),
                        "--refit with --val needs folders of class folders");
    }
  }

  return trials;
}

// A new search folder, or the state of a resumed one read back into `trials`.
void open_search_folder(const SearchOptions& so, const Json& search_json, std::vector<Trial>& trials) {
  const TrainOptions& base = so.base;
  const std::string state_path = base.out + "/search.json";
  if (so.resume) {
    GRAFT_CHECK_USAGE(fs::exists(state_path), "--resume: '", base.out,
                      "' holds no search (expected ", state_path, ")");
    Json before = read_json_file(state_path);
    GRAFT_CHECK_USAGE(before == search_json, "--resume: '", state_path,
                      "' describes a different search (method, space, trials or train options "
                      "differ); start a new one with another --out");
    for (auto& t : trials) {
      if (!fs::exists(t.r.dir + "/trial.json")) continue;
      Json s = read_json_file(t.r.dir + "/trial.json");
      t.r.status = s.value("status", "");
      t.r.error = s.value("error", "");
      if (t.r.status == "interrupted") t.r.status = "";
      t.val = read_val_accuracy(t.r.dir);
      t.r.epochs = static_cast<int64_t>(t.val.size());
    }
  } else {
    if (fs::exists(base.out)) {
      GRAFT_CHECK_USAGE(fs::is_directory(base.out), "--out: '", base.out, "' is not a folder");
      bool empty = fs::directory_iterator(base.out) == fs::directory_iterator();
      GRAFT_CHECK_USAGE(empty || so.overwrite, "--out: '", base.out,
                        "' already exists (use --overwrite to replace it or --resume to continue)");
      for (const char* f : {"search.json", "trials", "results.csv", "results.json", "summary.md",
                            "refit", "refit-data"})
        fs::remove_all(fs::path(base.out) / f);
    }
    make_dirs(base.out);
    write_file_atomic(state_path, search_json.dump(2) + "\n");
  }
  // Left by a kill -9 during a write; the files they were meant to replace are intact.
  remove_stale_temporaries(base.out);
  for (auto& t : trials) make_dirs(t.r.dir);

}

// Runs the trials (halving: rung by rung, keeping the best 1/eta); false
// when interrupted.
bool run_trials(const SearchOptions& so, std::vector<Trial>& trials) {
  const TrainOptions& base = so.base;
  SearchResult result;
  std::vector<Trial*> alive;
  for (auto& t : trials) alive.push_back(&t);
  if (so.method == "halving") {
    const auto rungs = halving_rungs(so.min_epochs, so.eta, base.epochs);
    for (size_t k = 0; k < rungs.size(); ++k) {
      log_info(str_cat("rung ", k + 1, "/", rungs.size(), ": ", alive.size(), " trials to epoch ",
                       rungs[k]));
      if (!run_segment(alive, rungs[k], so)) {
        result.interrupted = true;
        break;
      }
      if (k + 1 == rungs.size()) break;
      // Ranked on the best validation accuracy up to this rung; ties by id.
      std::vector<Trial*> ranked;
      for (Trial* t : alive)
        if (t->r.status != "failed") ranked.push_back(t);
      std::stable_sort(ranked.begin(), ranked.end(), [&](Trial* a, Trial* b) {
        return best_within(a->val, rungs[k]).first > best_within(b->val, rungs[k]).first;
      });
      const int64_t keep = halving_keep(static_cast<int64_t>(alive.size()), so.eta);
      for (size_t i = static_cast<size_t>(std::min<int64_t>(keep, ranked.size())); i < ranked.size(); ++i) {
        if (ranked[i]->r.status != "done") ranked[i]->r.status = "stopped";
        write_trial_state(*ranked[i]);
      }
      ranked.resize(static_cast<size_t>(std::min<int64_t>(keep, ranked.size())));
      alive = ranked;
    }
  } else if (!run_segment(alive, 0, so)) {
    result.interrupted = true;
  }
  return !result.interrupted;
}

// Retrains the best trial's settings on train + validation; its folder.
std::string refit_best(const SearchOptions& so, const std::vector<Trial>& trials, const TrialResult& best) {
  const TrainOptions& base = so.base;
  TrainOptions r = trials[static_cast<size_t>(best.id)].options;
  r.out = base.out + "/refit";
  r.overwrite = true;
  r.resume = false;
  r.test = base.test;
  r.epochs = std::max<int64_t>(1, best.best_epoch);
  r.warmup_epochs = std::min<double>(r.warmup_epochs, static_cast<double>(r.epochs));
  r.patience = 0;
  if (base.val.empty()) {
    r.val_split = 0;  // all of --data, the held-out part included
  } else {
    r.data = merged_data(base.out, base);
    r.val.clear();
    r.val_split = 0;
  }
  r.quiet = base.quiet;
  log_info(str_cat("refit: trial ", best.id, "'s settings on train + validation for ", r.epochs,
                   " epochs"));
  TrainSummary s = train(r);
  GRAFT_CHECK(!s.interrupted, "refit interrupted; run graft search --resume --refit again");
  return r.out;
}

// results.csv, results.json, summary.md and report.html, best first.
void write_results(const SearchOptions& so, const SearchResult& result) {
  const TrainOptions& base = so.base;
  // Results, best first.
  std::ostringstream csv;
  csv << "rank,trial,score,best_epoch,epochs,status,params\n";
  Json arr = Json::array();
  for (size_t i = 0; i < result.trials.size(); ++i) {
    const auto& t = result.trials[i];
    std::string params = t.params.dump();
    std::string quoted;
    for (char c : params) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    csv << i + 1 << ',' << t.id << ',' << std::setprecision(17) << t.score << ',' << t.best_epoch
        << ',' << t.epochs << ',' << t.status << ",\"" << quoted << "\"\n";
    Json j;
    j["rank"] = i + 1;
    j["trial"] = t.id;
    j["dir"] = t.dir;
    j["score"] = t.score;
    j["best_epoch"] = t.best_epoch;
    j["epochs"] = t.epochs;
    j["status"] = t.status;
    j["params"] = t.params;
    if (!t.error.empty()) j["error"] = t.error;
    arr.push_back(j);
  }
  Json res;
  res["method"] = so.method;
  res["best"] = arr[0];
  if (!result.refit_dir.empty()) res["refit"] = result.refit_dir;
  res["trials"] = arr;
  write_file_atomic(base.out + "/results.csv", csv.str());
  write_file_atomic(base.out + "/results.json", res.dump(2) + "\n");
  write_file_atomic(base.out + "/summary.md", search_summary(result));
  try {
    write_search_report(base.out);
  } catch (const std::exception& e) {
    log_warn(str_cat("report.html not written: ", e.what()));
  }
}

}  // namespace

SearchResult run_search(const SearchOptions& so) {
  const TrainOptions& base = so.base;
  check_search_options(so);
  // The whole search is laid out and checked before the first trial.
  SearchSpace space = parse_search_space(so.space, so.space_source);
  if (so.method == "halving")
    for (const auto& d : space.dims)
      GRAFT_CHECK_USAGE(d.name != "epochs" && d.name != "patience", so.space_source, ": '", d.name,
                        "' cannot be searched with --method halving (the rungs set the epochs)");
  std::vector<Json> points = so.method == "grid" ? grid_points(space, so.space_source)
                                                 : random_points(space, so.trials, base.seed);
  const Json search_json = describe_search(so, points);
  std::vector<Trial> trials = lay_out_trials(so, points);
  open_search_folder(so, search_json, trials);
  SearchResult result;
  result.interrupted = !run_trials(so, trials);
  if (result.interrupted) {
    log_info(str_cat("search interrupted; continue with graft search --resume --out ", base.out,
                     " (and the same options)"));
    return result;
  }

  for (auto& t : trials) {
    auto [score, at] = best_within(t.val, t.r.epochs);
    t.r.score = score;
    t.r.best_epoch = at;
    if (t.r.status == "paused") t.r.status = "stopped";
    result.trials.push_back(t.r);
  }
  std::stable_sort(result.trials.begin(), result.trials.end(),
                   [](const TrialResult& a, const TrialResult& b) {
                     if ((a.status == "failed") != (b.status == "failed")) return b.status == "failed";
                     return a.score > b.score;
                   });
  GRAFT_CHECK(!result.trials.empty() && result.trials[0].status != "failed",
              "every trial failed; the first error: ", result.trials.empty() ? "" : result.trials[0].error);
  const TrialResult& best = result.trials[0];
  result.best_dir = best.dir;
  if (!so.keep_all)
    for (size_t i = 1; i < result.trials.size(); ++i) prune(result.trials[i]);
  if (!base.test.empty()) find_task(base.task).test_run(best.dir, base);
  if (so.refit) result.refit_dir = refit_best(so, trials, best);
  write_results(so, result);
  return result;
}


std::string search_summary(const SearchResult& r) {
  std::ostringstream os;
  os << "| rank | trial | val accuracy | best epoch | epochs | status | settings |\n"
     << "|---|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < r.trials.size(); ++i) {
    const auto& t = r.trials[i];
    os << "| " << i + 1 << " | " << t.id << " | " << std::fixed << std::setprecision(4) << t.score
       << " | " << t.best_epoch << " | " << t.epochs << " | " << t.status << " | `"
       << t.params.dump() << "` |\n";
  }
  os << "\nbest: " << r.best_dir << "\n";
  if (!r.refit_dir.empty()) os << "refit on train + validation: " << r.refit_dir << "\n";
  return os.str();
}

}  // namespace graft
