// The task table (train/task.h): the one place that knows which tasks exist.

#include "graft/train/task.h"

#include <filesystem>

#include "graft/core/error.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/eval/run_eval.h"
#include "graft/export/hf.h"    // [onnx export]
#include "graft/export/onnx.h"  // [onnx export]
#include "graft/data/image_set.h"
#include "graft/face/face_train.h"
#include "graft/models/fast.h"
#include "graft/text/text_data.h"
#include "graft/text/text_eval.h"
#include "graft/models/registry.h"
#include "graft/text/mlm.h"
#include "graft/text/text_model.h"
#include "graft/text/text_train.h"
#include "graft/train/image_train.h"

namespace fs = std::filesystem;

namespace graft {

namespace {

// The task a saved model.json names ("" without one; saved_model_task
// reads it).
std::string model_json_task(const std::string& run) {
  return fs::exists(run + "/model.json") ? saved_model_task(run) : "";
}

TrainOptions image_defaults(const std::string&) { return TrainOptions{}; }

void image_check(const TrainOptions& o) {
  GRAFT_CHECK_USAGE(!o.data.empty(), "--data: a training folder or IDX file is required");
  find_backbone(o.backbone);
  check_one_of("--augment", o.augment, {"none", "light", "strong"});
}

// Fine-tuning BERT the way Hugging Face's Trainer recipes do: backbone bert
// (its size from --weights), strategy full, AdamW at lr 1e-4, weight decay
// 0.01, linear schedule with 10% warmup, 3 epochs, gradient clipping at 1,
// no augmentation, backbone at the head's learning rate. Backbone tfidf:
// strategy linear, AdamW at lr 0.01 without weight decay, 10 epochs.
TrainOptions text_defaults(const std::string& backbone) {
  TrainOptions o;
  o.task = "text";
  o.optimizer = "adamw";
  o.schedule = "linear";
  o.augment = "none";
  if (backbone == "tfidf") {
    o.backbone = "tfidf";
    o.strategy = "linear";
    o.lr = 0.01;
    o.weight_decay = 0.0;
    o.epochs = 10;
    return o;
  }
  if (backbone == "textcnn") {  // textcnn: Kim's batch 50; AdamW at 1e-3 for his Adadelta
    o.backbone = "textcnn";
    o.strategy = "full";
    o.lr = 1e-3;
    o.weight_decay = 0.0;
    o.batch_size = 50;
    o.epochs = 10;
    return o;
  }
  o.backbone = "bert";
  o.strategy = "full";
  o.lr = 1e-4;
  o.backbone_lr_mult = 1.0;
  o.weight_decay = 0.01;
  o.epochs = 3;
  o.warmup_epochs = 0.3;
  o.clip_grad = 1.0;
  return o;
}

void text_check(const TrainOptions& o) {
  GRAFT_CHECK_USAGE(!o.data.empty(), "--data: a labelled text file (CSV, TSV, JSONL) or folder is required");
  check_text_backbone(o.backbone);
  check_one_of("--text-format", o.text_format, {"auto", "csv", "tsv", "jsonl", "folder"});
  check_one_of("--header", o.header, {"auto", "yes", "no"});
  GRAFT_CHECK_USAGE(o.max_length >= 3 && o.max_length <= 4096, "--max-length: ", o.max_length,
                    " (expected 3 to 4096 tokens)");
  GRAFT_CHECK_USAGE(o.dropout == -1 || (o.dropout >= 0 && o.dropout < 1), "--dropout: ", o.dropout,
                    " (expected a fraction in [0, 1), or -1 for the model's own)");
  GRAFT_CHECK_USAGE(o.augment == "none", "--augment: '", o.augment,
                    "' (the text task has no augmentation; expected none)");
  check_one_of("--head", o.head, {"linear", "centroid"});
  // textcnn (issue 18): checked here too, so that graft search refuses such a trial before any runs.
  GRAFT_CHECK_USAGE(!(o.backbone == "textcnn" && o.freeze_embeddings && o.embeddings == "none"),
                    "--freeze-embeddings with --embeddings none: random vectors kept fixed (expected --embeddings FILE)");
  GRAFT_CHECK_USAGE(o.head == "linear" || o.backbone != "tfidf", "--head centroid: the tfidf backbone takes "
                    "--head linear (a centroid head reads BERT's features)");
}

// graft pretrain: a source model from random initialisation.
TrainOptions image_pretrain_defaults(const std::string&) {
  TrainOptions o;
  o.weights = "none";
  o.strategy = "full";
  o.lr = 0.1;
  o.weight_decay = 5e-4;
  o.backbone = "resnet20";
  return o;
}

// BERT pretraining as Hugging Face's run_mlm recipe: AdamW at 1e-3 with
// weight decay 0.01, linear decay after a warmup of 6% of the steps,
// clipping at 1, 2% of the sequences held out.
TrainOptions mlm_defaults(const std::string&) {
  TrainOptions o;
  o.task = "mlm";
  o.backbone = "bert";
  o.strategy = "full";
  o.optimizer = "adamw";
  o.lr = 1e-3;
  o.weight_decay = 0.01;
  o.schedule = "linear";
  o.warmup_epochs = -1;
  o.clip_grad = 1.0;
  o.val_split = 0.02;
  o.epochs = 1;
  o.augment = "none";
  return o;
}

// Every input is checked before the corpus is read.
void mlm_check(const TrainOptions& o) {
  GRAFT_CHECK_USAGE(!o.corpus.empty(), "--corpus: give at least one text file");
  for (const auto& f : o.corpus) GRAFT_CHECK_USAGE(fs::is_regular_file(f), "--corpus: '", f, "' is not a file");
  GRAFT_CHECK_USAGE(!o.vocab.empty(), "--vocab: a WordPiece vocab.txt is required");
  GRAFT_CHECK_USAGE(o.max_length >= 8, "--max-length ", o.max_length, " (expected at least 8)");
  GRAFT_CHECK_USAGE(o.mask_prob > 0 && o.mask_prob < 1, "--mask-prob ", o.mask_prob,
                    " (expected a fraction in (0, 1))");
  GRAFT_CHECK_USAGE(o.val_split >= 0 && o.val_split < 0.5, "--val-split ", o.val_split,
                    " (pretraining holds out a fraction in [0, 0.5) of the sequences)");
}

nlohmann::ordered_json mlm_summary(const TrainSummary& s) {
  nlohmann::ordered_json j;
  j["run"] = s.out;
  j["epochs"] = s.epochs_run;
  j["steps"] = s.steps;
  j["val_mlm_loss"] = s.last_val.loss;
  j["val_mlm_accuracy"] = s.last_val.accuracy;
  j["seconds"] = s.seconds;
  j["time_budget_reached"] = s.budget_reached;
  return j;
}

bool mlm_owns(const std::string& run) { return model_json_task(run) == "text-mlm"; }
bool image_owns(const std::string& run) { return model_json_task(run) == "image"; }
bool text_owns(const std::string& run) { return model_json_task(run) == "text"; }

// ---- graft eval and graft predict on a run of each task.

}  // namespace

ImageEvalOptions image_eval_options(const RunUseSettings& s) {
  ImageEvalOptions io;
  io.device = parse_device(s.device);
  io.batch_size = s.batch_size;
  io.workers = s.workers;
  io.strict = s.strict;
  io.precision = parse_precision(s.precision);
  io.classes = s.classes;
  io.top_k = s.top_k;
  io.reject = s.reject;
  io.tta = parse_tta(s.tta);
  io.calibration = s.calibration;
  io.calibration_data = s.calibration_data;
  return io;
}

namespace {

nlohmann::ordered_json image_evaluate(const std::string& run, const std::string& data, const RunUseSettings& s) {
  GRAFT_CHECK_USAGE(!data.empty(), "--data: a labelled image folder or IDX file is required");
  const ImageEvalOptions io = image_eval_options(s);
  const ImageEvaluation e = evaluate_image_run(run, data, io);
  auto j = evaluation_json(e);
  j["skipped"] = e.skipped;
  if (io.tta != Tta::None) j["tta"] = to_string(io.tta);  // without --tta, the output is as before
  return j;
}

void image_predict(const std::string& run, const std::vector<std::string>& inputs, const RunUseSettings& s,
                   const PredictionCallback& each) {
  const auto results = predict_image_run(run, inputs, image_eval_options(s), each);
  std::vector<UnreadableImage> unreadable;
  for (const auto& p : results)
    if (p.unreadable) unreadable.push_back(*p.unreadable);
  GRAFT_CHECK(unreadable.empty(), unreadable_summary(unreadable, static_cast<int64_t>(inputs.size()), {}, "inputs"));
}

nlohmann::ordered_json image_enroll(const std::string& run, const std::string& name, const std::string& input,
                                    const RunUseSettings& s) {
  return enrolment_json(enroll_image_class(run, name, input, image_eval_options(s)));
}

// --tta averages views of an image: text and face runs refuse it (any value
// but none, a bad one first as such).
void image_only_tta(const std::string& run, const RunUseSettings& s, const char* kind) {
  GRAFT_CHECK_USAGE(parse_tta(s.tta) == Tta::None, "--tta ", s.tta, ": test-time augmentation averages views of an image, and '",
                    run, "' is a ", kind, " run (expected --tta none, or no --tta, for a ", kind, " run)");
}

nlohmann::ordered_json text_evaluate(const std::string& run, const std::string& data, const RunUseSettings& s) {
  image_only_tta(run, s, "text");
  GRAFT_CHECK_USAGE(!data.empty(), "--data: a labelled text file (CSV, TSV, JSONL) or folder is required");
  TextReadOptions r = s.text;
  r.strict = s.strict;
  const TextEvaluation e =
      evaluate_text_run(run, data, r, s.batch_size, "--data", "", s.reject, parse_precision(s.precision));
  auto j = evaluation_json(e);
  j["skipped"] = e.skipped_empty;
  j["truncated"] = e.truncated;
  return j;
}

nlohmann::ordered_json text_enroll(const std::string& run, const std::string& name, const std::string& input,
                                   const RunUseSettings& s) {
  return enrolment_json(enroll_text_class(run, name, input, s.batch_size));
}

// Every line of every input file ("-": standard input) is one text; for a
// model of text pairs, a tab separates the two texts.
void text_predict(const std::string& run, const std::vector<std::string>& inputs, const RunUseSettings& s,
                  const PredictionCallback& each) {
  image_only_tta(run, s, "text");
  const auto results = predict_text_run(run, inputs, s.top_k, 64, each, s.reject, parse_precision(s.precision));
  int64_t failures = 0;
  for (const auto& p : results) failures += !p.error.empty();
  GRAFT_CHECK(failures == 0, failures, " inputs could not be read or classified");
}

// A face run answers "unknown" past its own distance threshold (face_model.json).
void no_face_reject(const RunUseSettings& s) {
  GRAFT_CHECK_USAGE(s.reject.reject_below == 0 && s.reject.reject_at_frr == 0,
                    "--reject-below / --reject-at-frr: a face run says \"unknown\" past its own distance "
                    "threshold (set at training, see graft face evaluate --far); these flags are for image "
                    "and text runs");
}

// --precision and int8's calibration flags for a face run's embedder.
FaceRunUse face_use(const RunUseSettings& s) {
  FaceRunUse u;
  u.precision = s.precision;
  u.calibration = s.calibration;
  u.calibration_data = s.calibration_data;
  return u;
}

nlohmann::ordered_json face_evaluate(const std::string& run, const std::string& data, const RunUseSettings& s) {
  no_face_reject(s);
  image_only_tta(run, s, "face");
  GRAFT_CHECK_USAGE(!data.empty(), "--data: a folder of identity folders is required");
  return evaluate_face_run(run, data, face_use(s));
}

void face_predict(const std::string& run, const std::vector<std::string>& inputs, const RunUseSettings& s,
                  const PredictionCallback& each) {
  no_face_reject(s);
  image_only_tta(run, s, "face");
  const auto results = predict_face_run(run, inputs, s.top_k, each, face_use(s));
  std::vector<UnreadableImage> unreadable;
  int64_t faceless = 0;
  for (const auto& p : results) {
    if (p.unreadable) unreadable.push_back(*p.unreadable);
    else faceless += !p.error.empty();
  }
  const int64_t n = static_cast<int64_t>(inputs.size()), bad = static_cast<int64_t>(unreadable.size());
  GRAFT_CHECK(faceless > 0 || bad == 0, unreadable_summary(unreadable, n, {}, "inputs"));
  GRAFT_CHECK(faceless == 0, faceless + bad, " of ", n, " inputs could not be used: ", faceless,
              " gave no usable face",
              bad == 0 ? "" : str_cat("; ", bad, " could not be read: ", unreadable_reasons(unreadable, {}),
                                      "; graft reads ", supported_image_formats()));
}

// ---- graft embed.

Embeddings image_embed(const std::string& run, const std::vector<std::string>& inputs, const RunUseSettings& s) {
  return embed_image_run(run, inputs, image_eval_options(s), default_cache_dir());
}

Embeddings text_embed(const std::string& run, const std::vector<std::string>& inputs, const RunUseSettings& s) {
  return embed_text_run(run, inputs, s.batch_size);
}

Embeddings face_embed(const std::string& run, const std::vector<std::string>& inputs, const RunUseSettings& s) {
  return embed_face_run(run, inputs, face_use(s));
}

// ---- graft search.

size_t image_data_classes(const TrainOptions& o) {
  OpenOptions open;
  open.strict = o.strict;
  ImageSet data = open_image_set(o.data, open);
  if (!o.classes.empty()) data = select_classes(data, o.classes);
  return data.classes.size();
}

void image_test_run(const std::string& run, const TrainOptions& o) {
  ImageEvalOptions io;
  io.workers = o.workers;
  io.device = parse_device(o.device);
  io.strict = o.strict;
  io.classes = o.classes;
  io.max_pixels = o.max_pixels;  // the trials' limit
  io.label = "test";
  evaluate_image_run(run, o.test, io, "--test", run);
}

size_t text_data_classes(const TrainOptions& o) {
  GRAFT_CHECK_USAGE(fs::exists(o.data), "--data: '", o.data, "' does not exist");
  return read_text_set(o.data, text_read_options(o)).classes.size();
}

// A text run's test set is a text file, read as its training data was.
void text_test_run(const std::string& run, const TrainOptions& o) {
  evaluate_text_run(run, o.test, text_read_options(o), std::max<int64_t>(o.batch_size, 64), "--test", run);
}

std::string join_names(bool pretrain) {
  std::vector<std::string> names;
  for (const auto& t : task_table()) {
    const std::string& n = pretrain ? t.pretrain_name : t.name;
    if (!n.empty()) names.push_back(n);
  }
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return out;
}

}  // namespace

const std::vector<TaskRow>& task_table() {
  static const std::vector<TaskRow> rows = {
      {"image", "classify images: a backbone of the registry with a new head", "image", image_defaults,
       image_check, train_image, image_owns, image_evaluate, image_predict, image_data_classes, image_test_run,
       image_pretrain_defaults, nullptr, image_enroll, image_embed, image_run_onnx, export_image_run_hf},
      {"text", "classify texts: BERT (or TF-IDF) with a new head", "", text_defaults, text_check, train_text,
       text_owns, text_evaluate, text_predict, text_data_classes, text_test_run, nullptr, nullptr, text_enroll,
       text_embed, text_run_onnx, export_text_run_hf},
      {"face", "identify faces: a centroid or linear head on face-api's or MobileFaceNet's embeddings "
       "(--embedder), optionally after fine-tuning face-api's last stage (--finetune)", "", face_defaults, face_check, train_face,
       face_owns_run, face_evaluate, face_predict, nullptr, nullptr, nullptr, nullptr, nullptr, face_embed,
       face_run_onnx},
      {"mlm", "pretrain BERT by masked-language modelling on a text corpus (graft pretrain --task text)",
       "text", mlm_defaults, mlm_check, pretrain_mlm, mlm_owns, nullptr, nullptr, nullptr, nullptr, nullptr, mlm_summary},
  };
  return rows;
}

const TaskRow& find_task(const std::string& name, const std::string& option) {
  for (const auto& t : task_table())
    if (t.name == name) return t;
  throw UsageError(str_cat(option, ": '", name, "' is not a task (expected ", task_names(), ")"));
}

const TaskRow& find_pretrain_task(const std::string& name) {
  for (const auto& t : task_table())
    if (!t.pretrain_name.empty() && t.pretrain_name == name) return t;
  throw UsageError(str_cat("--task: '", name, "' cannot be pretrained (expected ", pretrain_task_names(), ")"));
}

const TaskRow& task_of_run(const std::string& run) {
  for (const auto& t : task_table())
    if (t.owns_run(run)) return t;
  throw Error(str_cat("'", run, "' holds no model graft knows (expected a folder written by graft train)"));
}

nlohmann::ordered_json summary_json(const TaskRow& task, const TrainSummary& s) {
  if (task.summary_json) return task.summary_json(s);
  nlohmann::ordered_json j;
  j["run"] = s.out;
  j["epochs"] = s.epochs_run;
  j["best_epoch"] = s.best_epoch;
  j["val_accuracy"] = s.best_val_accuracy;
  if (s.has_test) j["test_accuracy"] = s.test.accuracy;
  return j;
}

std::string task_names() { return join_names(false); }
std::string pretrain_task_names() { return join_names(true); }

}  // namespace graft
