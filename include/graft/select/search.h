#pragma once
/// graft search: hyper-parameter search over graft train options (grid,
/// random, successive halving) that returns the best model, not just the
/// best settings.
///
/// A search space is a JSON object; each key is a train option (as in
/// config.json, "weight_decay", or as its flag, "--weight-decay") and each
/// value one of:
///   [v1, v2, ...]                          a list of values
///   {"uniform": [lo, hi], "num": K}        a range (K grid points)
///   {"log_uniform": [lo, hi], "num": K}    a log range, 0 < lo <= hi
///   {"int": [lo, hi], "step": S}           integers lo, lo+S, ... <= hi
/// A list element that is an object sets several options together, e.g.
///   "source": [{"backbone": "resnet18", "weights": "r18.pth"}, ...]
/// (the key then only names the dimension). "num" is needed for grid search
/// over a continuous range.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graft/train/options.h"

namespace graft {

struct SearchDimension {
  enum class Kind { kList, kUniform, kLogUniform, kInt };
  std::string name;  // the option (normalised) or, for object lists, a label
  Kind kind = Kind::kList;
  std::vector<nlohmann::json> values;  // kList
  double low = 0, high = 0;            // ranges
  int64_t num = 0;                     // grid points of a range (0: none given)
  int64_t step = 1;                    // kInt
};

struct SearchSpace {
  std::vector<SearchDimension> dims;
};

/// Parses and checks a space; throws graft::UsageError naming `source`, the
/// dimension and what is wrong (unknown option, empty list or range, log
/// range with a non-positive bound, ...).
SearchSpace parse_search_space(const nlohmann::json& j, const std::string& source);

/// Every combination, dimensions in the order of their keys (a JSON object
/// is unordered; keys compare as strings) and the last varying fastest. Each
/// point is a JSON object of option overrides.
std::vector<nlohmann::json> grid_points(const SearchSpace& space, const std::string& source);

/// n points drawn independently (seeded): lists uniformly, ranges
/// uniformly, log ranges log-uniformly, int ranges uniformly on their steps.
std::vector<nlohmann::json> random_points(const SearchSpace& space, int64_t n, uint64_t seed);

/// The rungs of successive halving: min_epochs * eta^k below max_epochs,
/// then max_epochs.
std::vector<int64_t> halving_rungs(int64_t min_epochs, double eta, int64_t max_epochs);

/// How many of n trials go on past a rung: max(1, floor(n / eta)).
int64_t halving_keep(int64_t n, double eta);

struct SearchOptions {
  TrainOptions base;  // every trial starts from these; base.out is the search folder
  nlohmann::json space;
  std::string space_source = "--space";
  std::string method = "random";  // grid | random | halving
  int64_t trials = 10;            // random and halving
  double eta = 3;                 // halving
  int64_t min_epochs = 1;         // halving: the first rung
  int jobs = 1;                   // trials at once, each in its own process when > 1
  bool resume = false;
  bool overwrite = false;
  bool keep_all = false;  // keep every trial's model and checkpoint
  bool refit = false;     // retrain the best settings on train + validation
  std::string executable;  // the graft binary for jobs > 1 ("" = this process's)
};

struct TrialResult {
  int64_t id = 0;
  nlohmann::json params;  // the overrides
  std::string dir;
  std::string status;     // done | stopped (lost at a rung) | failed
  std::string error;      // when failed
  int64_t epochs = 0;     // epochs run
  int64_t best_epoch = 0; // 1-based
  double score = 0;       // best validation accuracy over the epochs run
};

struct SearchResult {
  std::vector<TrialResult> trials;  // sorted by score, best first
  std::string best_dir;
  std::string refit_dir;  // when refit
  bool interrupted = false;
};

/// Runs the search; writes search.json, trials/NNN/ (one run directory
/// each), results.csv, results.json and summary.md in base.out.
SearchResult run_search(const SearchOptions& options);

/// The markdown table of summary.md.
std::string search_summary(const SearchResult& result);

}  // namespace graft
