#pragma once
/// The declaration table of the training options: one row per TrainOptions
/// field that a user sets. to_json, train_options_from_json, the flags of
/// graft train/search/pretrain (cli/train_options.h) and the per-option
/// checks of validate() are all made from it, so an option is declared once.
/// tests/train/options_test.cpp fails when a TrainOptions field has no row.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "graft/train/options.h"

namespace graft {

/// The TrainOptions field a row reads and writes.
using OptionMember =
    std::variant<std::string TrainOptions::*, int TrainOptions::*, int64_t TrainOptions::*,
                 uint64_t TrainOptions::*, double TrainOptions::*, bool TrainOptions::*,
                 std::vector<std::string> TrainOptions::*>;
/// The value of such a field (the alternatives in the same order).
using OptionValue =
    std::variant<std::string, int, int64_t, uint64_t, double, bool, std::vector<std::string>>;

/// Valid numbers: lo to hi, each end open or closed; an infinite end is no
/// bound.
struct OptionRange {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;

  bool contains(double v) const;
  /// What the range accepts, for an error message: "an integer from 1 to
  /// 1000000", "a number in [0, 1)", "a positive number", ">= 0".
  std::string expected(bool integral) const;

  static OptionRange closed(double lo, double hi);      ///< [lo, hi]
  static OptionRange right_open(double lo, double hi);  ///< [lo, hi)
  static OptionRange left_open(double lo, double hi);   ///< (lo, hi]
  static OptionRange at_least(double lo);               ///< [lo, inf)
  static OptionRange above(double lo);                  ///< (lo, inf)
};

/// The CLI11 group of the text task's flags (graft pretrain leaves it out:
/// it declares its own --vocab and --max-length).
inline const char* const kTextTaskGroup = "Text task (--task text)";
inline const char* const kFaceGroup = "Face task (--task face)";
inline const char* const kUnlabeledGroup = "Unlabelled target data (--unlabeled; image and text tasks)";
inline const char* const kPretrainGroup = "Pretraining BERT (graft pretrain --task text)";

/// One training option. Rows are written in option_table.cpp with the
/// setters below, e.g.
///   OptionRow(GRAFT_OPTION_FIELD(epochs), "--epochs", "Epochs").within(OptionRange::closed(1, kMaxEpochs)).shown()
struct OptionRow {
  /// JSON key in config.json: the field's name (GRAFT_OPTION_FIELD keeps them equal).
  std::string key;
  OptionMember member;
  /// CLI11 names: "--val-split"; "!--no-bucket" is a flag that sets false.
  std::string flags;
  std::string help;
  /// CLI11 group; "" for the verb's own options.
  std::string group;
  /// Stored in config.json (a run's settings, how-to-run ones included).
  bool in_config = true;
  /// How this process runs (threads, device, ...), not what the run is: may
  /// differ between the ranks of a job, and --resume takes it from the
  /// command line instead of config.json (as it does every row not in it).
  bool per_process = false;
  /// The help shows the default (CLI11's capture_default_str).
  bool show_default = false;
  /// The tasks whose runs use the option and check its value; empty: every
  /// task but those in `not_tasks`.
  std::vector<std::string> tasks;
  /// Tasks that ignore an option other tasks share (face: its embedder and
  /// its optimiser are fixed).
  std::vector<std::string> not_tasks;
  /// Help that one task gives instead of `help` (face's --epochs are its
  /// linear head's full-batch steps). A task named here is offered the option
  /// even when `tasks` leaves it out: its own check reads the value (face's
  /// --head centroid|linear).
  std::vector<std::pair<std::string, std::string>> task_help;
  /// Valid values: a range (numbers), a list of words (strings), and/or a
  /// check for what neither can say ("mlp:HIDDEN"), with what it expects.
  std::optional<OptionRange> range;
  std::vector<std::string> one_of;
  bool (*accepts)(const OptionValue&) = nullptr;
  std::string expected;

  OptionRow(std::string key, OptionMember member, std::string flags, std::string help);
  OptionRow& in_group(std::string g);
  OptionRow& for_tasks(std::vector<std::string> t);
  OptionRow& except_for(std::vector<std::string> t);
  OptionRow& help_for(std::string task, std::string text);
  OptionRow& not_in_config();
  OptionRow& for_this_process();
  OptionRow& shown();
  OptionRow& within(OptionRange r);
  OptionRow& words(std::vector<std::string> w);
  OptionRow& check(bool (*f)(const OptionValue&), std::string what);

  /// The flag that error messages name: "--val-split", "--no-bucket".
  std::string flag() const;
  /// The row checks the option's value for `task`.
  bool applies_to(const std::string& task) const;
  /// `task`'s --help lists the option and its command line takes it.
  bool offered_to(const std::string& task) const;
  const std::string& help_of(const std::string& task) const;
  OptionValue get(const TrainOptions& o) const;
  /// Sets the field; `v` must hold the field's type.
  void set(TrainOptions& o, const OptionValue& v) const;
  /// "" when `v` is valid, else the error: the flag, the value and what is
  /// expected ("--momentum: -1 (expected a number in [0, 1))"). A number
  /// must also be finite: an inf or nan option trains a model of NaNs.
  std::string problem(const OptionValue& v) const;
};

/// "epochs, &TrainOptions::epochs": the key is the field's name.
#define GRAFT_OPTION_FIELD(name) #name, &::graft::TrainOptions::name

/// Every row, in the order of graft train --help.
const std::vector<OptionRow>& train_option_table();
/// The row of `key`; throws graft::Error for a key that has none.
const OptionRow& train_option(const std::string& key);

/// A value for messages: 'text' for strings, numbers as they are.
std::string option_value_text(const OptionValue& v);

}  // namespace graft
