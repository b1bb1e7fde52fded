#include "graft/train/options.h"

#include <cmath>
#include <limits>
#include <type_traits>
#include <variant>

#include "graft/core/error.h"
#include "graft/core/json.h"
#include "graft/train/option_table.h"
#include "graft/train/adapt.h"
#include "graft/train/task.h"

namespace graft {

TrainOptions default_train_options(const std::string& task, const std::string& backbone) {
  return find_task(task).defaults(backbone);
}

nlohmann::json to_json(const TrainOptions& o) {
  nlohmann::json j = nlohmann::json::object();
  for (const OptionRow& row : train_option_table())
    if (row.in_config) std::visit([&](auto m) { j[row.key] = o.*m; }, row.member);
  return j;
}

namespace {

// Like get_to, but an integer option takes only a JSON integer in its range
// (a float such as 1e300 would otherwise be cast, which is undefined).
template <typename T>
void read_option(const nlohmann::json& v, T& out, const std::string& source, const std::string& key) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    GRAFT_CHECK_USAGE(v.is_number_integer(), source, ": option '", key,
                      "' must be an integer, got ", json_excerpt(v));
    if constexpr (std::is_signed_v<T>) {
      GRAFT_CHECK_USAGE(!v.is_number_unsigned() ||
                            v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max()),
                        source, ": option '", key, "' is out of range: ", json_excerpt(v));
      GRAFT_CHECK_USAGE(v.is_number_unsigned() || (v.get<int64_t>() >= std::numeric_limits<T>::min() &&
                                                   v.get<int64_t>() <= std::numeric_limits<T>::max()),
                        source, ": option '", key, "' is out of range: ", json_excerpt(v));
    } else {
      GRAFT_CHECK_USAGE(v.is_number_unsigned() ||
                            v.get<int64_t>() >= 0,
                        source, ": option '", key, "' must not be negative: ", json_excerpt(v));
    }
  }
  v.get_to(out);
}

}  // namespace

TrainOptions train_options_from_json(const nlohmann::json& j, const std::string& source,
                                     const TrainOptions* base) {
  GRAFT_CHECK_USAGE(j.is_object(), source, ": expected a JSON object of training options");
  auto text_of = [&](const char* key, const std::string& fallback) {
    if (!j.contains(key)) return fallback;
    GRAFT_CHECK_USAGE(j[key].is_string(), source, ": option '", key, "' must be a string, got ",
                      json_excerpt(j[key]));
    return j[key].get<std::string>();
  };
  TrainOptions o = base ? *base
                        : default_train_options(text_of("task", "image"), text_of("backbone", ""));
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const OptionRow* row = nullptr;
    for (const OptionRow& r : train_option_table())
      if (r.in_config && r.key == key) row = &r;
    GRAFT_CHECK_USAGE(row, source, ": unknown option '", key, "'");
    try {
      std::visit([&](auto m) { read_option(it.value(), o.*m, source, key); }, row->member);
    } catch (const nlohmann::json::exception& e) {
      throw UsageError(str_cat(source, ": option '", key, "' has the wrong type (", e.what(), ")"));
    }
  }
  return o;
}

void check_one_of(const std::string& option, const std::string& value,
                  const std::vector<std::string>& valid) {
  for (const auto& v : valid)
    if (v == value) return;
  std::string list;
  for (const auto& v : valid) list += (list.empty() ? "" : ", ") + v;
  throw UsageError(str_cat(option, ": '", value, "' is not valid (expected one of ", list, ")"));
}

void validate(const TrainOptions& o) {
  // Per option (option_table.cpp): finite numbers, ranges, word lists and
  // the formats of --head and --strategy. --task is the first row.
  for (const OptionRow& row : train_option_table()) {
    if (!row.applies_to(o.task)) continue;
    const std::string problem = row.problem(row.get(o));
    GRAFT_CHECK_USAGE(problem.empty(), problem);
  }
  // Checks that involve more than one option or the task (its row of the
  // task table: its data, backbone, augmentation...).
  GRAFT_CHECK_USAGE(!o.out.empty(), "--out: an output run directory is required");
  check_unlabeled_options(o);  // --unlabeled, --adapt, --self-train (train/adapt.h)
  find_task(o.task).check(o);
  GRAFT_CHECK_USAGE(o.val.empty() ? (o.val_split >= 0 && o.val_split < 1) : true,
                    "--val-split: ", o.val_split,
                    " (expected a fraction in [0, 1); 0 trains on all of --data without validation)");
  GRAFT_CHECK_USAGE(!(o.val.empty() && o.val_split == 0 && o.patience > 0),
                    "--patience needs validation data (--val or --val-split > 0)");
  GRAFT_CHECK_USAGE(o.warmup_epochs == -1 || (o.warmup_epochs >= 0 && o.warmup_epochs <= o.epochs),
                    "--warmup-epochs: ", o.warmup_epochs, " (expected 0 to --epochs, or -1: 6% of the run)");
  GRAFT_CHECK_USAGE(!(o.overwrite && o.resume), "--overwrite and --resume exclude each other");
}

}  // namespace graft
