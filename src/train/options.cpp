#include "graft/train/options.h"

#include <cmath>
#include <limits>
#include <tuple>
#include <type_traits>

#include "graft/core/error.h"
#include "graft/core/json.h"
#include "graft/train/task.h"

namespace graft {

namespace {
// Upper bounds of the integer options: far above any real run, low enough
// that a typo or an overflowed number is caught rather than clamped.
constexpr int64_t kMaxEpochs = 1000000;
constexpr int64_t kMaxBatch = 1 << 20;
}  // namespace

#define GRAFT_OPTION_FIELDS(X)                                                              \
  X(task) X(data) X(val) X(test) X(val_split) X(classes) X(per_class) X(backbone)         \
  X(weights) X(weights_strict) X(head) X(strategy) X(epochs) X(batch_size) X(optimizer)   \
  X(lr) X(backbone_lr_mult) X(layer_decay) X(weight_decay) X(momentum) X(nesterov)        \
  X(schedule) X(warmup_epochs) X(step_size) X(gamma) X(label_smoothing) X(class_weights)  \
  X(clip_grad) X(patience) X(augment) X(feature_cache) X(precision) X(cache_dir) X(seed) X(threads)    \
  X(workers) X(device) X(out) X(overwrite) X(resume) X(strict) X(max_pixels) X(quiet) X(text_column)       \
  X(text_b_column) X(label_column) X(text_format) X(header) X(vocab) X(cased) X(max_length) \
  X(grad_accum) X(bucket) X(dropout) X(time_budget) X(finetune) X(finetune_epochs)          \
  X(finetune_lr) X(margin) X(scale) X(detect) X(detector) X(face_models) X(min_face)      \
  X(min_confidence) X(cascade)

TrainOptions default_train_options(const std::string& task, const std::string& backbone) {
  return find_task(task).defaults(backbone);
}

nlohmann::json to_json(const TrainOptions& o) {
  nlohmann::json j;
#define GRAFT_TO_JSON(f) j[#f] = o.f;
  GRAFT_OPTION_FIELDS(GRAFT_TO_JSON)
#undef GRAFT_TO_JSON
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
    bool known = false;
    try {
#define GRAFT_FROM_JSON(f)                  \
  if (key == #f) {                          \
    read_option(it.value(), o.f, source, key); \
    known = true;                           \
  }
      GRAFT_OPTION_FIELDS(GRAFT_FROM_JSON)
#undef GRAFT_FROM_JSON
    } catch (const nlohmann::json::exception& e) {
      throw UsageError(str_cat(source, ": option '", key, "' has the wrong type (", e.what(), ")"));
    }
    GRAFT_CHECK_USAGE(known, source, ": unknown option '", key, "'");
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
  const TaskRow& task = find_task(o.task);
  // Every number must be finite: an inf or nan option trains a model of NaNs.
  const std::pair<const char*, double> reals[] = {
      {"--val-split", o.val_split},         {"--lr", o.lr},
      {"--backbone-lr-mult", o.backbone_lr_mult}, {"--layer-decay", o.layer_decay},
      {"--weight-decay", o.weight_decay},   {"--momentum", o.momentum},
      {"--warmup-epochs", o.warmup_epochs}, {"--gamma", o.gamma},
      {"--label-smoothing", o.label_smoothing}, {"--clip-grad", o.clip_grad},
      {"--dropout", o.dropout}, {"--time-budget", o.time_budget}};
  for (const auto& [flag, v] : reals)
    GRAFT_CHECK_USAGE(std::isfinite(v), flag, ": ", v, " (expected a finite number)");
  const std::tuple<const char*, int64_t, int64_t, int64_t> ints[] = {
      {"--epochs", o.epochs, 1, kMaxEpochs},
      {"--batch-size", o.batch_size, 1, kMaxBatch},
      {"--per-class", o.per_class, 0, std::numeric_limits<int32_t>::max()},
      {"--step-size", o.step_size, 0, kMaxEpochs},
      {"--patience", o.patience, 0, kMaxEpochs},
      {"--stop-after-epoch", o.stop_after_epoch, 0, kMaxEpochs},
      {"--grad-accum", o.grad_accum, 1, kMaxBatch},
      {"--threads", o.threads, 0, 4096},
      {"--workers", o.workers, 0, 4096},
      {"--max-pixels", o.max_pixels, 1, int64_t{1} << 40}};
  for (const auto& [flag, v, lo, hi] : ints)
    GRAFT_CHECK_USAGE(v >= lo && v <= hi, flag, ": ", v, " (expected an integer from ", lo, " to ",
                      hi, ")");
  GRAFT_CHECK_USAGE(o.momentum >= 0 && o.momentum < 1, "--momentum: ", o.momentum,
                    " (expected a number in [0, 1))");
  GRAFT_CHECK_USAGE(o.gamma > 0, "--gamma: ", o.gamma, " (expected a positive number)");
  GRAFT_CHECK_USAGE(!o.out.empty(), "--out: an output run directory is required");
  task.check(o);
  GRAFT_CHECK_USAGE(o.epochs >= 1, "--epochs: ", o.epochs, " (expected at least 1)");
  GRAFT_CHECK_USAGE(o.batch_size >= 1, "--batch-size: ", o.batch_size, " (expected at least 1)");
  GRAFT_CHECK_USAGE(o.lr > 0, "--lr: ", o.lr, " (expected a positive number)");
  GRAFT_CHECK_USAGE(o.backbone_lr_mult >= 0, "--backbone-lr-mult: ", o.backbone_lr_mult,
                    " (expected >= 0)");
  GRAFT_CHECK_USAGE(o.layer_decay > 0 && o.layer_decay <= 1, "--layer-decay: ", o.layer_decay,
                    " (expected a number in (0, 1])");
  GRAFT_CHECK_USAGE(o.weight_decay >= 0, "--weight-decay: ", o.weight_decay, " (expected >= 0)");
  GRAFT_CHECK_USAGE(o.val.empty() ? (o.val_split >= 0 && o.val_split < 1) : true,
                    "--val-split: ", o.val_split,
                    " (expected a fraction in [0, 1); 0 trains on all of --data without validation)");
  GRAFT_CHECK_USAGE(!(o.val.empty() && o.val_split == 0 && o.patience > 0),
                    "--patience needs validation data (--val or --val-split > 0)");
  GRAFT_CHECK_USAGE(o.stop_after_epoch >= 0, "--stop-after-epoch: ", o.stop_after_epoch,
                    " (expected >= 0)");
  GRAFT_CHECK_USAGE(o.per_class >= 0, "--per-class: ", o.per_class, " (expected >= 0)");
  check_one_of("--optimizer", o.optimizer, {"sgd", "adamw"});
  check_one_of("--schedule", o.schedule, {"cosine", "linear", "step", "constant"});
  check_one_of("--class-weights", o.class_weights, {"none", "auto"});
  check_one_of("--precision", o.precision, {"fp32", "bf16"});
  GRAFT_CHECK_USAGE(o.label_smoothing >= 0 && o.label_smoothing < 1, "--label-smoothing: ",
                    o.label_smoothing, " (expected a number in [0, 1))");
  GRAFT_CHECK_USAGE(o.warmup_epochs == -1 || (o.warmup_epochs >= 0 && o.warmup_epochs <= o.epochs),
                    "--warmup-epochs: ", o.warmup_epochs, " (expected 0 to --epochs, or -1: 6% of the run)");
  GRAFT_CHECK_USAGE(o.time_budget >= 0, "--time-budget: ", o.time_budget, " (expected minutes >= 0; 0: none)");
  GRAFT_CHECK_USAGE(o.clip_grad >= 0, "--clip-grad: ", o.clip_grad, " (expected >= 0)");
  GRAFT_CHECK_USAGE(o.patience >= 0, "--patience: ", o.patience, " (expected >= 0)");
  GRAFT_CHECK_USAGE(o.workers >= 0, "--workers: ", o.workers, " (expected >= 0)");
  GRAFT_CHECK_USAGE(!(o.overwrite && o.resume), "--overwrite and --resume exclude each other");
}

}  // namespace graft
