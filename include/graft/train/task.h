#pragma once
/// The task table: one row per kind of run graft trains (image, text, face,
/// mlm), like the backbone registry. A row names what differs between tasks:
/// its defaults and checks of the options, how a run is trained (a LoopTask
/// driven by train/loop.h; data, model, loss and metrics live in the task's
/// own files), which files its run folder gets. `--task` help, the train and
/// pretrain verbs, eval, predict and search look tasks up here; nothing
/// outside this table compares task names.
///
/// A new task: a LoopTask in its own files, a train function that builds it
/// and calls run_loop, and a row in task_table() (src/train/task.cpp).

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graft/eval/embed.h"
#include "graft/eval/metrics.h"
#include "graft/eval/run_eval.h"
#include "graft/text/text_data.h"
#include "graft/train/loop.h"
#include "graft/train/options.h"

namespace graft {

/// How graft eval and graft predict use a run: settings, not context.
struct RunUseSettings {
  int64_t batch_size = 64;
  int workers = 2;
  std::string device = "auto";
  std::string precision = "fp32";
  bool strict = false;
  std::vector<std::string> classes;  // image sets: keep only these
  TextReadOptions text;              // how a labelled text file is read
  int64_t top_k = 5;
  RejectOptions reject;              // "unknown" below a confidence (image and text runs)
  std::string tta = "none";          // test-time augmentation (image runs): parse_tta
  int64_t calibration = 256;         // --precision int8: calibration images (InferOptions)
  std::string calibration_data;      // and where from ("" = the run's training data)
};

/// The image evaluation settings of `s` (device and precision parsed).
ImageEvalOptions image_eval_options(const RunUseSettings& s);

struct TaskRow {
  /// --task of graft train (and of a run's config.json).
  std::string name;
  /// One line for --task help.
  std::string summary;
  /// graft pretrain --task PRETRAIN_NAME runs this row ("": not a pretraining).
  std::string pretrain_name;
  /// The options of the task before the command line's (backbone: the one
  /// given, "" for the default; some defaults depend on it).
  TrainOptions (*defaults)(const std::string& backbone);
  /// The task's own checks of the options, after the shared ones (validate()).
  void (*check)(const TrainOptions& o);
  /// Trains a run (o.resume: settings already restored from config.json).
  TrainSummary (*train)(const TrainOptions& o);
  /// The model of a run folder is of this task (read from its files).
  bool (*owns_run)(const std::string& run);
  /// graft eval: the run's metrics on labelled `data`, as printed (null:
  /// the task's runs are not evaluated this way).
  nlohmann::ordered_json (*evaluate)(const std::string& run, const std::string& data,
                                     const RunUseSettings& s) = nullptr;
  /// graft predict: each input's prediction handed to `each` as soon as it
  /// is made; throws graft::Error naming how many failed, after all.
  void (*predict)(const std::string& run, const std::vector<std::string>& inputs, const RunUseSettings& s,
                  const PredictionCallback& each) = nullptr;
  /// graft search: the classes of o.data (checked before any trial runs);
  /// null: the task is not searched.
  size_t (*data_classes)(const TrainOptions& o) = nullptr;
  /// graft search: the best trial's run evaluated on o.test, writing
  /// test_metrics.json and test_predictions.csv into it.
  void (*test_run)(const std::string& run, const TrainOptions& o) = nullptr;
  /// graft pretrain's defaults (null: `defaults`).
  TrainOptions (*pretrain_defaults)(const std::string& backbone) = nullptr;
  /// The line a finished run prints on stdout (null: run, epochs,
  /// best_epoch, val_accuracy and test_accuracy).
  nlohmann::ordered_json (*summary_json)(const TrainSummary& s) = nullptr;
  /// graft enroll: class `name` added to the run (or replacing its class of
  /// that name) from the examples in `input`, without training; returns what
  /// is printed. Null: the task's runs are not enrolled this way.
  nlohmann::ordered_json (*enroll)(const std::string& run, const std::string& name, const std::string& input,
                                   const RunUseSettings& s) = nullptr;
  /// graft embed: the features the run's head reads, of each of `inputs`
  /// (eval/embed.h). Null: the task's runs are not embedded.
  Embeddings (*embed)(const std::string& run, const std::vector<std::string>& inputs,
                      const RunUseSettings& s) = nullptr;
  /// graft export --format onnx: the run's model as a serialised ONNX
  /// ModelProto (include/graft/export/onnx.h). Null: not exported.
  std::string (*export_onnx)(const std::string& run) = nullptr;
  /// graft export --format safetensors-hf: the run as a folder `out` that
  /// torchvision or transformers loads (include/graft/export/hf.h). Null: not
  /// exported that way.
  void (*export_hf)(const std::string& run, const std::string& out) = nullptr;
};

/// Every task, in --task help order.
const std::vector<TaskRow>& task_table();
/// The row named `name`; throws graft::UsageError naming `option` (--task),
/// the value and the names there are.
const TaskRow& find_task(const std::string& name, const std::string& option = "--task");
/// The row that graft pretrain --task NAME runs; UsageError otherwise.
const TaskRow& find_pretrain_task(const std::string& name);
/// The row whose model a run folder holds; graft::Error when none does.
const TaskRow& task_of_run(const std::string& run);
/// The stdout line of a finished run of `task`.
nlohmann::ordered_json summary_json(const TaskRow& task, const TrainSummary& s);
/// "image, text or face" (the train verb's) for help texts.
std::string task_names();
/// The same for graft pretrain.
std::string pretrain_task_names();

}  // namespace graft
