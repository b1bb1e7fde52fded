#include "graft/train/option_table.h"

#include "graft/train/task.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "graft/core/error.h"
#include "graft/models/registry.h"
#include "graft/text/text_model.h"

namespace graft {

namespace {

// Upper bounds of the integer options: far above any real run, low enough
// that a typo or an overflowed number is caught rather than clamped.
constexpr int64_t kMaxEpochs = 1000000;
constexpr int64_t kMaxBatch = 1 << 20;

std::string option_table_join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

// "PREFIX" followed by 1 to `digits` decimal digits, not all zero.
bool option_table_numbered(const std::string& s, const std::string& prefix, size_t digits) {
  if (s.rfind(prefix, 0) != 0) return false;
  const std::string n = s.substr(prefix.size());
  return !n.empty() && n.size() <= digits && n.find_first_not_of("0123456789") == std::string::npos &&
         n.find_first_not_of('0') != std::string::npos;
}

// The syntax that make_head and parse_strategy (train/strategy.cpp) accept;
// whether a backbone has N stages is checked once the model is built.
bool head_spec(const OptionValue& v) {
  const auto& s = std::get<std::string>(v);
  return s == "linear" || s == "centroid" || option_table_numbered(s, "mlp:", 6);
}

bool strategy_spec(const OptionValue& v) {
  const auto& s = std::get<std::string>(v);
  return s == "linear" || s == "full" || option_table_numbered(s, "partial:", 3);
}

bool dropout_value(const OptionValue& v) {
  const double d = std::get<double>(v);
  return d == -1 || (d >= 0 && d < 1);
}

bool known_task(const OptionValue& v) {
  for (const auto& t : task_table())
    if (t.name == std::get<std::string>(v)) return true;
  return false;
}

using Rows = std::vector<OptionRow>;

void data_rows(Rows& t) {
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(task), "--task",
                        "The task (" + task_names() + "); the defaults shown are this task's (--task text "
                        "--help: text's; --task face --help: face's own options)")
                  .check(known_task, "a task: " + task_names())
                  .shown());
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(data), "--data",
                        "Training data: a folder of class folders or an IDX images file; --task "
                        "text: a CSV, TSV or JSONL file or a folder of class files")
                  .help_for("face", "Folder with one sub-folder per identity (required unless --resume)"));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(val), "--val",
                        "Validation data, like --data (default: a stratified split of --data)")
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(val_split), "--val-split",
                        "Fraction of --data held out for validation when --val is not given (0: "
                        "no validation, the last epoch's model is kept)")
                  .shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(test), "--test",
                        "Test data, evaluated once at the end with the best model")
                  .help_for("face", "Test folder (same identities), evaluated once at the end"));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(classes), "--classes",
                        "Keep only these classes, in this order (comma-separated)")
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(per_class), "--per-class",
                        "At most N examples per class of --data (0: all), before the validation split")
                  .within(OptionRange::closed(0, std::numeric_limits<int32_t>::max()))
                  .shown()
                  .except_for({"face"}));
}

void model_rows(Rows& t) {
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(backbone), "--backbone",
                        "Backbone: " + backbone_names() + "; --task text: " +
                            option_table_join(text_backbone_names()) + " (text default: bert)")
                  .shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(weights), "--weights",
                        "Source weights: a file (.safetensors, .pt/.pth), a run directory, or none")
                  .shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(weights_strict), "--weights-strict",
                        "Missing or unexpected weight names are an error")
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(head), "--head",
                        "New head: linear, mlp:HIDDEN, or centroid (nearest class mean of the "
                        "L2-normalised features, cosine; fitted in one pass, --strategy linear)")
                  .check(head_spec, "linear, mlp:HIDDEN or centroid")
                  .for_tasks({"image", "text"})
                  .shown()
                  .help_for("face", "centroid (nearest class mean) or linear"));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(strategy), "--strategy",
                        "linear (frozen backbone), partial:N (last N stages) or full (text default: "
                        "full)")
                  .check(strategy_spec, "linear, partial:N or full")
                  .shown()
                  .except_for({"face"}));
}

void optimiser_rows(Rows& t) {
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(epochs), "--epochs", "Epochs")
                  .within(OptionRange::closed(1, kMaxEpochs)).shown()
                  .help_for("face", "linear head: full-batch SGD steps"));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(batch_size), "--batch-size", "Batch size")
                  .within(OptionRange::closed(1, kMaxBatch)).shown()
                  .help_for("face", "Chips per fine-tuning step, the global batch with --nproc (default 32)"));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(optimizer), "--optimizer",
                        "sgd or adamw (default sgd; text: adamw)")
                  .words({"sgd", "adamw"}).shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(lr), "--lr", "Learning rate of the head")
                  .within(OptionRange::above(0)).shown()
                  .help_for("face", "linear head: learning rate"));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(backbone_lr_mult), "--backbone-lr-mult",
                        "Backbone learning rate = lr x this")
                  .within(OptionRange::at_least(0)).shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(layer_decay), "--layer-decay",
                        "Each earlier stage's learning rate x this")
                  .within(OptionRange::left_open(0, 1)).shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(weight_decay), "--weight-decay",
                        "Weight decay (not on norms and biases)")
                  .within(OptionRange::at_least(0)).shown()
                  .help_for("face", "linear head: weight decay"));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(momentum), "--momentum", "SGD momentum")
                  .within(OptionRange::right_open(0, 1)).shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(nesterov), "--nesterov", "Nesterov momentum")
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(schedule), "--schedule",
                        "cosine, linear, step, constant or annealed (lr / (1 + 10 p)^0.75, p the run's progress: "
                        "the DANN paper's) (default cosine; text: linear)")
                  .words({"cosine", "linear", "step", "constant", "annealed"}).shown()
                  .except_for({"face"}));
  // 0 to --epochs: validate() checks it against epochs.
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(warmup_epochs), "--warmup-epochs",
                        "Linear warmup length in epochs, 0 to --epochs (fractions allowed)").shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(step_size), "--step-size",
                        "step schedule: epochs between decays (0: epochs/3)")
                  .within(OptionRange::closed(0, kMaxEpochs)).shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(gamma), "--gamma", "step schedule: decay factor")
                  .within(OptionRange::above(0)).shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(label_smoothing), "--label-smoothing", "Label smoothing")
                  .within(OptionRange::right_open(0, 1)).shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(class_weights), "--class-weights",
                        "none or auto (inverse class frequency)")
                  .words({"none", "auto"}).shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(clip_grad), "--clip-grad", "Max gradient norm (0: off)")
                  .within(OptionRange::at_least(0)).shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(calibrate), "--calibrate",
                        "temperature (fit one temperature on the validation logits of the saved model; "
                        "eval and predict use it) or none")
                  .words({"temperature", "none"}).for_tasks({"image", "text"}).shown());
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(select_metric), "--select-metric",
                        "What picks the best epoch (and early stopping's patience): validation "
                        "accuracy, balanced_accuracy, macro_f1 or loss")
                  .words({"accuracy", "balanced_accuracy", "macro_f1", "loss"}).for_tasks({"image", "text"}).shown());
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(patience), "--patience",
                        "Early stopping patience in epochs (0: off)")
                  .within(OptionRange::closed(0, kMaxEpochs)).shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(augment), "--augment",
                        "none, light or strong (default light; text: none, the only choice; face "
                        "fine-tuning: face or none)")
                  .words({"none", "light", "strong"}).for_tasks({"image", "text", "mlm"}).shown()
                  .help_for("face", "Fine-tuning: face (flip, rotation +-10 deg, scale +-10%, brightness +-20%, seeded) or none "
                            "(default face)"));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(feature_cache), "!--no-feature-cache",
                        "linear: recompute features every epoch instead of caching them")
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(precision), "--precision",
                        "fp32, or bf16: bfloat16 autocast on CPUs with AVX512-BF16 or AMX (image "
                        "models and face embedders; fp32 master weights when training), or int8: the image "
                        "linear probe's cached features through graft eval's int8 network (the head trains in fp32)")
                  .words({"fp32", "bf16", "int8"}).shown()
                  .help_for("face", "fp32; bf16: bfloat16 autocast on CPUs with AVX512-BF16 or AMX; or int8 "
                            "(face-api's embedder, --embedder dlib, without --finetune): post-training static int8 "
                            "on the onednn engine, calibrated on --calibration faces"));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(calibration), "--calibration",
                        "--precision int8: images of --data that calibrate the activation ranges (seeded, as "
                        "graft eval --precision int8 draws them)")
                  .within(OptionRange::closed(16, 1 << 30)).for_tasks({"image", "face"})
                  .help_for("face", "--precision int8: faces that calibrate the embedder's activation ranges "
                            "(the largest face of images drawn in a seeded order from --data, or from "
                            "--calibration-data)"));
}

void run_rows(Rows& t) {
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(cache_dir), "--cache-dir",
                        "Feature cache folder (default $GRAFT_CACHE_DIR/features or "
                        "~/.cache/graft/features)")
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(cache_mb), "--cache-mb",
                        "In-memory feature cache bound in MiB: the least recently used features leave first "
                        "(they stay on disk); 0 keeps none in memory")
                  .within(OptionRange::closed(0, 1 << 30)).for_this_process()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(seed), "--seed", "Random seed").shown()
                  .help_for("face", "Seed of the linear head's initialisation and of fine-tuning"));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(threads), "--threads", "Intra-op threads (0: all cores)")
                  .within(OptionRange::closed(0, 4096)).for_this_process().shown());
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(workers), "--workers", "Image decoding threads")
                  .within(OptionRange::closed(0, 4096)).for_this_process().shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(device), "--device", "auto, cpu, cuda or cuda:N")
                  .for_this_process().shown()
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(out), "--out", "Run directory to write"));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(overwrite), "--overwrite",
                        "Replace graft's files in an existing --out"));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(resume), "--resume",
                        "Continue the run in --out from its last checkpoint")
                  .help_for("face", "Continue the fine-tune in --out from its last checkpoint"));
  // How far this invocation goes, not a setting of the run.
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(stop_after_epoch), "--stop-after-epoch",
                        "Pause after this many epochs (checkpointed, exit 130; --resume goes on)")
                  .within(OptionRange::closed(0, kMaxEpochs))
                  .not_in_config());
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(strict), "--strict",
                        "Unreadable images (or empty texts) are errors instead of counted warnings")
                  .except_for({"face"}));
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(max_pixels), "--max-pixels",
                        "Images claiming more pixels than this (in their header) are refused "
                        "before decoding")
                  .within(OptionRange::closed(1, static_cast<double>(int64_t{1} << 40))).shown());
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(quiet), "--quiet", "No progress or per-epoch lines")
                  .for_this_process()
                  .help_for("face", "No progress or per-epoch fine-tuning lines"));
}

void text_rows(Rows& t) {
  auto text = [](OptionRow r) { return r.in_group(kTextTaskGroup).for_tasks({"text"}); };
  // Read by masked-LM pretraining too.
  auto text_and_mlm = [](OptionRow r) { return r.in_group(kTextTaskGroup).for_tasks({"text", "mlm"}); };
  t.push_back(text(OptionRow(GRAFT_OPTION_FIELD(text_column), "--text-column",
                             "Text column: a name or 0-based index (default: found by name)")));
  t.push_back(text(OptionRow(GRAFT_OPTION_FIELD(text_b_column), "--text-b-column",
                             "Second text column of sentence pairs")));
  t.push_back(text(OptionRow(GRAFT_OPTION_FIELD(label_column), "--label-column",
                             "Label column: a name or 0-based index (default: found by name)")));
  t.push_back(text(OptionRow(GRAFT_OPTION_FIELD(text_format), "--text-format",
                             "auto, csv, tsv, jsonl or folder")
                       .words({"auto", "csv", "tsv", "jsonl", "folder"}).shown()));
  t.push_back(text(OptionRow(GRAFT_OPTION_FIELD(header), "--header",
                             "Line 1 of CSV/TSV is a header: auto, yes or no")
                       .words({"auto", "yes", "no"}).shown()));
  t.push_back(text_and_mlm(OptionRow(GRAFT_OPTION_FIELD(vocab), "--vocab",
                             "WordPiece vocab.txt (default: the one beside --weights)")));
  t.push_back(text(OptionRow(GRAFT_OPTION_FIELD(cased), "--cased",
                             "Keep case and accents (a cased vocabulary)")));
  t.push_back(text_and_mlm(OptionRow(GRAFT_OPTION_FIELD(max_length), "--max-length",
                             "Tokens per text, [CLS] and [SEP] included; longer texts are "
                             "truncated and counted")
                       .within(OptionRange::closed(3, 4096)).shown()));
  t.push_back(text(OptionRow(GRAFT_OPTION_FIELD(grad_accum), "--grad-accum",
                             "Micro-batches of --batch-size per optimiser step")
                       .within(OptionRange::closed(1, kMaxBatch)).shown()));
  t.push_back(text(OptionRow(GRAFT_OPTION_FIELD(bucket), "!--no-bucket",
                             "Do not group training batches by text length")));
  t.push_back(text(OptionRow(GRAFT_OPTION_FIELD(dropout), "--dropout",
                             "BERT and head dropout (-1: the model config's)")
                       .check(dropout_value, "a fraction in [0, 1), or -1 for the model's own")
                       .shown()));
  // textcnn (issue 18)
  t.push_back(text(OptionRow(GRAFT_OPTION_FIELD(embeddings), "--embeddings",
                             "textcnn: word vectors to start from (a .safetensors from graft weights convert), "
                             "or none (random)")
                       .shown()));
  t.push_back(text(OptionRow(GRAFT_OPTION_FIELD(freeze_embeddings), "--freeze-embeddings",
                             "textcnn: keep the word vectors fixed (CNN-static)")));
}

void pretrain_rows(Rows& t) {
  auto mlm = [](OptionRow r) { return r.in_group(kPretrainGroup).for_tasks({"mlm"}); };
  t.push_back(mlm(OptionRow(GRAFT_OPTION_FIELD(corpus), "--corpus", "Plain-text files, one document each")));
  t.push_back(mlm(OptionRow(GRAFT_OPTION_FIELD(size), "--size", "BERT size (unless --bert-config)")
                      .words({"tiny", "mini", "small", "medium", "base"}).shown()));
  t.push_back(mlm(OptionRow(GRAFT_OPTION_FIELD(bert_config), "--bert-config",
                            "A BERT config.json instead of --size")));
  t.push_back(mlm(OptionRow(GRAFT_OPTION_FIELD(mask_prob), "--mask-prob", "Share of the tokens to predict")
                      .within(OptionRange::above(0)).shown()));
  // Every task: the loop owns it.
  t.push_back(OptionRow(GRAFT_OPTION_FIELD(time_budget), "--time-budget",
                        "Stop after this many minutes of training, as done (checkpointed, model and "
                        "metrics of the epoch so far kept; 0: none)")
                  .within(OptionRange::at_least(0)).shown());
}

void face_rows(Rows& t) {
  auto face = [](OptionRow r) { return r.in_group(kFaceGroup).for_tasks({"face"}); };
  t.push_back(face(OptionRow(GRAFT_OPTION_FIELD(finetune), "--finetune",
                             "none (embedder frozen), arcface, cosface or triplet: fine-tune the embedder's "
                             "last stage with this loss first")
                       .words({"none", "arcface", "cosface", "triplet"}).shown()));
  t.push_back(face(OptionRow(GRAFT_OPTION_FIELD(finetune_epochs), "--finetune-epochs",
                             "Fine-tuning epochs (-1: 10)")));
  t.push_back(face(OptionRow(GRAFT_OPTION_FIELD(finetune_lr), "--finetune-lr",
                             "Fine-tuning SGD learning rate (-1: 0.001)")));
  t.push_back(face(OptionRow(GRAFT_OPTION_FIELD(margin), "--margin",
                             "Margin of the fine-tuning loss (-1: arcface 0.5 rad, cosface 0.35, triplet 0.2)")));
  t.push_back(face(OptionRow(GRAFT_OPTION_FIELD(scale), "--scale", "arcface/cosface logit scale s (-1: 64)")));
  // issue 18: the embedder under the head (face/pipeline.h's names).
  t.push_back(face(OptionRow(GRAFT_OPTION_FIELD(embedder), "--embedder",
                             "The pretrained embedder: dlib (face-api's dlib-style ResNet, 150x150 chips, 128-d) or "
                             "mobilefacenet (MobileFaceNet, 112x112 ArcFace chips, 192-d; no --finetune)")
                       .words({"dlib", "mobilefacenet"}).shown()));
  t.push_back(face(OptionRow(GRAFT_OPTION_FIELD(detect), "!--no-detect",
                             "Images are already-cropped faces: landmarks on the whole image, no detector")));
  t.push_back(face(OptionRow(GRAFT_OPTION_FIELD(detector), "--detector",
                             "ssd (face-api's SSD MobileNet v1) or haar (OpenCV's Haar cascade)")
                       .words({"ssd", "haar"}).shown()));
  t.push_back(face(OptionRow(GRAFT_OPTION_FIELD(face_models), "--face-models",
                             "Folder of face-api's TF.js models (default $GRAFT_CACHE_DIR or "
                             "~/.cache/graft: face-api-1.7.15/model, filled by scripts/face_models.sh)")));
  t.push_back(face(OptionRow(GRAFT_OPTION_FIELD(min_face), "--min-face", "Smallest face side kept (pixels)")
                       .within(OptionRange::closed(1, 1 << 20)).shown()));
  t.push_back(face(OptionRow(GRAFT_OPTION_FIELD(min_confidence), "--min-confidence",
                             "Smallest SSD detection score kept")
                       .within(OptionRange::closed(0, 1)).shown()));
  t.push_back(face(OptionRow(GRAFT_OPTION_FIELD(cascade), "--cascade",
                             "OpenCV Haar cascade for --detector haar (default: Debian opencv-data's)")));
}

// Unlabelled target data (issue 19, train/adapt.h): the image and text tasks'.
void unlabeled_rows(Rows& t) {
  auto unl = [](OptionRow r) { return r.in_group(kUnlabeledGroup).for_tasks({"image", "text"}); };
  t.push_back(unl(OptionRow(GRAFT_OPTION_FIELD(unlabeled), "--unlabeled",
                            "Target inputs without labels (for --adapt or --self-train): images, a folder, nested "
                            "or flat; text, a file of one text per line, a CSV/TSV/JSONL file with a text column "
                            "(--text-column), or a folder of such line files")));
  t.push_back(unl(OptionRow(GRAFT_OPTION_FIELD(adapt), "--adapt",
                            "Domain adaptation to --unlabeled: none, dann (gradient reversal), dan (multi-kernel "
                            "MMD) or cdan (conditional adversarial, entropy-weighted)")
                      .words({"none", "dann", "dan", "cdan"}).shown()));
  t.push_back(unl(OptionRow(GRAFT_OPTION_FIELD(adapt_weight), "--adapt-weight",
                            "Trade-off: loss = classification + this x adaptation loss")
                      .within(OptionRange::at_least(0)).shown()));
  t.push_back(unl(OptionRow(GRAFT_OPTION_FIELD(domain_hidden), "--domain-hidden",
                            "Hidden width of the domain classifier (dann, cdan)")
                      .within(OptionRange::closed(1, 1 << 16)).shown()));
  t.push_back(unl(OptionRow(GRAFT_OPTION_FIELD(self_train), "--self-train",
                            "Semi-supervised training on --data plus --unlabeled: none, pseudo (pseudo-labels) "
                            "or fixmatch (weak view labels, strong view learns; text's strong view drops 10% of the tokens)")
                      .words({"none", "pseudo", "fixmatch"}).shown()));
  t.push_back(unl(OptionRow(GRAFT_OPTION_FIELD(confidence), "--confidence",
                            "Self-training: an unlabelled image counts when its top probability is at least this")
                      .within(OptionRange::closed(0, 1)).shown()));
  t.push_back(unl(OptionRow(GRAFT_OPTION_FIELD(unlabeled_weight), "--unlabeled-weight",
                            "Self-training: weight of the unlabelled loss")
                      .within(OptionRange::at_least(0)).shown()));
  t.push_back(unl(OptionRow(GRAFT_OPTION_FIELD(rampup_epochs), "--rampup-epochs",
                            "Self-training: the unlabelled weight rises as exp(-5(1-t)^2) over this many epochs "
                            "(0: none)")
                      .within(OptionRange::at_least(0)).shown()));
  t.push_back(unl(OptionRow(GRAFT_OPTION_FIELD(unlabeled_ratio), "--unlabeled-ratio",
                            "mu: unlabelled images per labelled image in a step (FixMatch's paper: 7)")
                      .within(OptionRange::closed(1, 64)).shown()));
}

Rows make_train_option_table() {
  Rows t;
  data_rows(t);
  model_rows(t);
  optimiser_rows(t);
  run_rows(t);
  text_rows(t);
  pretrain_rows(t);
  face_rows(t);
  unlabeled_rows(t);  // issue 19
  return t;
}

}  // namespace

bool OptionRange::contains(double v) const {
  return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
}

std::string OptionRange::expected(bool integral) const {
  auto num = [&](double v) {
    return integral ? std::to_string(static_cast<int64_t>(v)) : str_cat(v);
  };
  const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  if (integral && has_lo && has_hi) return str_cat("an integer from ", num(lo), " to ", num(hi));
  if (has_lo && has_hi)
    return str_cat("a number in ", lo_open ? "(" : "[", num(lo), ", ", num(hi), hi_open ? ")" : "]");
  if (has_lo && lo == 0 && lo_open) return "a positive number";
  if (has_lo) return str_cat(lo_open ? "> " : ">= ", num(lo));
  if (has_hi) return str_cat(hi_open ? "< " : "<= ", num(hi));
  return "a number";
}

OptionRange OptionRange::closed(double lo, double hi) { return {lo, hi, false, false}; }
OptionRange OptionRange::right_open(double lo, double hi) { return {lo, hi, false, true}; }
OptionRange OptionRange::left_open(double lo, double hi) { return {lo, hi, true, false}; }
OptionRange OptionRange::at_least(double lo) {
  return {lo, std::numeric_limits<double>::infinity(), false, false};
}
OptionRange OptionRange::above(double lo) {
  return {lo, std::numeric_limits<double>::infinity(), true, false};
}

OptionRow::OptionRow(std::string key_, OptionMember member_, std::string flags_, std::string help_)
    : key(std::move(key_)), member(member_), flags(std::move(flags_)), help(std::move(help_)) {}

OptionRow& OptionRow::in_group(std::string g) {
  group = std::move(g);
  return *this;
}
OptionRow& OptionRow::for_tasks(std::vector<std::string> t) {
  tasks = std::move(t);
  return *this;
}
OptionRow& OptionRow::not_in_config() {
  in_config = false;
  return *this;
}
OptionRow& OptionRow::except_for(std::vector<std::string> t) {
  not_tasks = std::move(t);
  return *this;
}
OptionRow& OptionRow::help_for(std::string task, std::string text) {
  task_help.emplace_back(std::move(task), std::move(text));
  return *this;
}
OptionRow& OptionRow::for_this_process() {
  per_process = true;
  return *this;
}
OptionRow& OptionRow::shown() {
  show_default = true;
  return *this;
}
OptionRow& OptionRow::within(OptionRange r) {
  range = r;
  return *this;
}
OptionRow& OptionRow::words(std::vector<std::string> w) {
  one_of = std::move(w);
  return *this;
}
OptionRow& OptionRow::check(bool (*f)(const OptionValue&), std::string what) {
  accepts = f;
  expected = std::move(what);
  return *this;
}

std::string OptionRow::flag() const {
  std::string f = flags.substr(flags.rfind(',') == std::string::npos ? 0 : flags.rfind(',') + 1);
  if (!f.empty() && f[0] == '!') f.erase(0, 1);
  return f;
}

bool OptionRow::applies_to(const std::string& task) const {
  auto named = [&](const std::vector<std::string>& list) {
    return std::find(list.begin(), list.end(), task) != list.end();
  };
  return tasks.empty() ? !named(not_tasks) : named(tasks);
}

bool OptionRow::offered_to(const std::string& task) const {
  if (applies_to(task)) return true;
  for (const auto& [t, text] : task_help)
    if (t == task) return true;
  return false;
}

const std::string& OptionRow::help_of(const std::string& task) const {
  for (const auto& [t, text] : task_help)
    if (t == task) return text;
  return help;
}

OptionValue OptionRow::get(const TrainOptions& o) const {
  return std::visit(
      [&](auto m) {
        using T = std::decay_t<decltype(o.*m)>;
        return OptionValue(std::in_place_type<T>, o.*m);
      },
      member);
}

void OptionRow::set(TrainOptions& o, const OptionValue& v) const {
  std::visit(
      [&](auto m) {
        using T = std::decay_t<decltype(o.*m)>;
        o.*m = std::get<T>(v);
      },
      member);
}

std::string option_value_text(const OptionValue& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) return "'" + x + "'";
        else if constexpr (std::is_same_v<T, std::vector<std::string>>)
          return "'" + option_table_join(x) + "'";
        else if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
        else return str_cat(x);
      },
      v);
}

std::string OptionRow::problem(const OptionValue& v) const {
  if (const double* d = std::get_if<double>(&v); d && !std::isfinite(*d))
    return str_cat(flag(), ": ", *d, " (expected a finite number)");
  if (range) {
    const bool integral = !std::holds_alternative<double>(v);
    const double x = std::visit(
        [](const auto& n) -> double {
          if constexpr (std::is_arithmetic_v<std::decay_t<decltype(n)>>) return static_cast<double>(n);
          else return 0;  // a range is declared on numeric rows only
        },
        v);
    if (!range->contains(x))
      return str_cat(flag(), ": ", option_value_text(v), " (expected ", range->expected(integral), ")");
  }
  if (!one_of.empty()) {
    const auto& s = std::get<std::string>(v);
    bool found = false;
    for (const auto& w : one_of) found = found || w == s;
    if (!found)
      return str_cat(flag(), ": '", s, "' is not valid (expected one of ", option_table_join(one_of), ")");
  }
  if (accepts && !accepts(v))
    return str_cat(flag(), ": ", option_value_text(v), " (expected ", expected, ")");
  return "";
}

const std::vector<OptionRow>& train_option_table() {
  static const Rows table = make_train_option_table();
  return table;
}

const OptionRow& train_option(const std::string& key) {
  for (const auto& row : train_option_table())
    if (row.key == key) return row;
  throw Error(str_cat("no training option '", key, "' (see option_table.cpp)"));
}

}  // namespace graft
