#pragma once
/// Every setting of a training run. config.json in the run directory is this
/// struct as JSON, so a run can be described by a file and repeated. Each
/// field that a user sets has one row in train/option_table.cpp: its key,
/// flag, help and valid values (tests/train/options_test.cpp fails without).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graft/train/epoch_row.h"

namespace graft {

namespace dist {
class Group;
}

struct TrainOptions {
  std::string task = "image";
  /// Training data: a folder of class folders or an IDX images file.
  std::string data;
  /// Validation data; when empty, a stratified val_split of `data` is held
  /// out. val_split 0 without `val`: no validation, every epoch's model is
  /// kept (the last one is the result), as when refitting on all the data.
  std::string val;
  /// Test data, evaluated once at the end with the best checkpoint.
  std::string test;
  double val_split = 0.1;
  /// Keep only these classes (by name), in this order, in every set.
  std::vector<std::string> classes;
  /// At most this many images per class of `data` (0: all), chosen seeded,
  /// before the validation split.
  int64_t per_class = 0;

  std::string backbone = "resnet18";
  /// A weight file, or "none" for random initialisation.
  std::string weights = "none";
  bool weights_strict = false;
  /// "linear" or "mlp:HIDDEN".
  std::string head = "linear";
  /// "linear", "partial:N" or "full".
  std::string strategy = "linear";

  int64_t epochs = 10;
  int64_t batch_size = 32;
  std::string optimizer = "sgd";  // sgd | adamw
  double lr = 0.01;
  double backbone_lr_mult = 0.1;
  double layer_decay = 1.0;
  double weight_decay = 1e-4;
  double momentum = 0.9;
  bool nesterov = false;
  std::string schedule = "cosine";  // cosine | linear | step | constant
  double warmup_epochs = 0;
  int64_t step_size = 0;  // step schedule: epochs between decays (0: epochs/3)
  double gamma = 0.1;     // step schedule: decay factor
  double label_smoothing = 0.0;
  std::string class_weights = "none";  // none | auto
  double clip_grad = 0.0;              // max gradient norm, 0: off
  int64_t patience = 0;                // early stopping, 0: off
  std::string select_metric = "accuracy";  // accuracy | balanced_accuracy | macro_f1 | loss
  std::string calibrate = "temperature";  // temperature | none (eval/calibration.h)
  std::string augment = "light";       // none | light | strong
  bool feature_cache = true;           // linear strategy: compute features once
  std::string precision = "fp32";      // fp32 | bf16 (CPU autocast, fp32 master weights) | int8 (linear probe's features)
  int64_t calibration = 256;           // --precision int8: images of --data that calibrate it
  std::string cache_dir;               // on-disk feature cache ("" = default)
  int64_t cache_mb = 1024;             // in-memory feature cache bound, MiB (eval/infer.h)

  uint64_t seed = 0;
  int threads = 0;  // 0: all cores
  int workers = 2;  // decoding threads
  std::string device = "auto";
  std::string out;
  bool overwrite = false;
  bool resume = false;
  bool strict = false;
  /// Images whose header claims more pixels than this are refused before
  /// decoding (skipped and counted, or an error with strict).
  int64_t max_pixels = 50'000'000;
  bool quiet = false;

  // Text task (--task text).
  /// Columns of the text set (a name or a 0-based index; empty: found by
  /// name, see text/text_data.h); text_b_column: second text of a pair.
  std::string text_column, text_b_column, label_column;
  std::string text_format = "auto";  // auto | csv | tsv | jsonl | folder
  std::string header = "auto";       // auto | yes | no
  /// WordPiece vocab.txt ("" = the one beside --weights).
  std::string vocab;
  bool cased = false;        // keep case and accents (a cased vocabulary)
  int64_t max_length = 128;  // tokens per input, [CLS] and [SEP] included
  int64_t grad_accum = 1;    // micro-batches of batch_size per optimiser step
  bool bucket = true;        // group training batches by length
  double dropout = -1;       // BERT and head dropout (-1: the model config's)
  // textcnn backbone (text/textcnn.h): word vectors to start from (a
  // .safetensors from graft weights convert, or "none": random), and
  // whether they stay fixed (CNN-static).
  std::string embeddings = "none";
  bool freeze_embeddings = false;

  // Masked-language-model pretraining (graft pretrain --task text, the
  // "mlm" task); it also reads vocab and max_length above.
  std::vector<std::string> corpus;  // plain-text files, one document each
  std::string size = "tiny";        // BERT size: tiny, mini, small, medium or base
  std::string bert_config;          // a BERT config.json instead of size
  double mask_prob = 0.15;          // share of the tokens to predict

  // Face task (--task face). There --epochs, --lr and --weight-decay are the
  // linear head's; fine-tuning has its own (a negative value: the loss's
  // default, see resolve_finetune_options in face/face_train.h).
  /// none (the embedder stays frozen), arcface, cosface or triplet.
  std::string finetune = "none";
  int64_t finetune_epochs = -1;  // 10
  double finetune_lr = -1;       // 0.001
  double margin = -1;            // arcface 0.5, cosface 0.35, triplet 0.2
  double scale = -1;             // arcface and cosface: 64
  bool detect = true;            // false (--no-detect): images are cropped faces
  std::string detector = "ssd";  // ssd | haar
  std::string face_models;       // face-api's models folder ("" = the default)
  int64_t min_face = 40;         // smallest face side kept (pixels)
  double min_confidence = 0.5;   // smallest SSD detection score kept
  std::string cascade;           // OpenCV Haar cascade ("" = Debian's)
  /// The pretrained embedder the head is trained on (issue 18): dlib
  /// (face-api's, the default) or mobilefacenet (no --finetune).
  std::string embedder = "dlib";

  // Unlabelled target data (issue 19; train/adapt.h): image task.
  /// A folder of target images without labels (nested or flat).
  std::string unlabeled;
  std::string adapt = "none";       // none | dann | dan | cdan
  double adapt_weight = 1.0;        // trade-off of the adaptation loss
  int64_t domain_hidden = 1024;     // the domain classifier's hidden width
  std::string self_train = "none";  // none | pseudo | fixmatch
  double confidence = 0.95;         // self-training: pseudo-label threshold
  double unlabeled_weight = 1.0;    // self-training: weight of the unlabelled loss
  double rampup_epochs = 0;         // self-training: ramp-up of that weight (0: none)
  int64_t unlabeled_ratio = 1;      // mu: unlabelled images per labelled one in a step

  /// Minutes of training after which the run ends as done (checkpointed,
  /// metrics and model of the epoch so far written); 0: none.
  double time_budget = 0;

  /// Not a setting (not in config.json): called after every optimiser step
  /// with the number of steps done in the run; returning true stops the run
  /// there as a SIGINT would: the state is checkpointed and --resume goes on
  /// from that step.
  std::function<bool(int64_t)> should_stop;
  /// Not a setting (not in config.json): called on rank 0 after every
  /// epoch with its metrics.csv row (the C++ API's progress callback).
  std::function<void(const EpochRow&)> on_epoch;
  /// Not a setting (not in config.json): pause after this many epochs are
  /// done (0: never), checkpointed like an interruption; --resume goes on.
  /// Successive halving runs trials rung by rung with it.
  int64_t stop_after_epoch = 0;
  /// Not a setting (not in config.json): the data-parallel group this process
  /// trains in (dist/group.h); null or of size 1: alone. --batch-size is then
  /// the global batch, split evenly between the ranks.
  std::shared_ptr<dist::Group> group;
};

/// The defaults of a task (its row of the task table, train/task.h); some
/// depend on the backbone (text: tfidf).
TrainOptions default_train_options(const std::string& task, const std::string& backbone = "");

nlohmann::json to_json(const TrainOptions& o);
/// Reads options; unknown keys are an error naming the key and `source`.
/// Keys not in `j` keep their value in `base`, or without base the defaults
/// of j's task and backbone (see default_train_options).
TrainOptions train_options_from_json(const nlohmann::json& j, const std::string& source,
                                     const TrainOptions* base = nullptr);

/// Checks option values before any work starts; throws graft::UsageError
/// naming the option, the value and what is expected.
void validate(const TrainOptions& o);

/// Throws graft::UsageError naming `option` when `value` is not in `valid`.
void check_one_of(const std::string& option, const std::string& value,
                  const std::vector<std::string>& valid);

}  // namespace graft
