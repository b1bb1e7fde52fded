#include "graft/train/trainer.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <chrono>
#include <cmath>
#include <limits>
#include <filesystem>
#include <numeric>
#include <optional>
#include <sstream>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/data/image_header.h"
#include "graft/data/image_set.h"
#include "graft/data/loader.h"
#include "graft/data/order.h"
#include "graft/dist/group.h"
#include "graft/dist/reducer.h"
#include "graft/dist/sampler.h"
#include "graft/eval/infer.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/report/report.h"
#include "graft/text/text_train.h"
#include "graft/train/checkpoint.h"
#include "graft/train/strategy.h"
#include "graft/weights/state_dict.h"

namespace fs = std::filesystem;

namespace graft {

namespace {

// Files graft owns in a run directory: --overwrite removes these and nothing
// else, so pointing --out at a folder of the user's never deletes their files.
const char* kRunFiles[] = {"config.json", "model.safetensors", "model.json", "metrics.csv",
                           "test_metrics.json", "test_predictions.csv", "report.html",
                           "checkpoint", "vocab.txt", "bert_config.json", "tfidf.txt"};

}  // namespace

void prepare_run_dir(const TrainOptions& o) {
  bool exists = fs::exists(o.out);
  if (o.resume) {
    GRAFT_CHECK_USAGE(fs::exists(checkpoint_path(o.out)), "--resume: '", o.out,
                      "' has no checkpoint to resume from (expected ", checkpoint_path(o.out), ")");
    // Left by a kill -9 during a write; the files they were meant to replace are intact.
    remove_stale_temporaries(o.out);
    remove_stale_temporaries(fs::path(checkpoint_path(o.out)).parent_path().string());
    return;
  }
  if (exists) {
    GRAFT_CHECK_USAGE(fs::is_directory(o.out), "--out: '", o.out, "' exists and is not a folder");
    bool empty = fs::directory_iterator(o.out) == fs::directory_iterator();
    GRAFT_CHECK_USAGE(empty || o.overwrite, "--out: '", o.out,
                      "' already exists (use --overwrite to replace it or --resume to continue)");
    for (const char* f : kRunFiles) fs::remove_all(fs::path(o.out) / f);
    remove_stale_temporaries(o.out);
  }
  make_dirs(o.out);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                        const std::vector<ParamGroup>& groups) {
  std::vector<torch::optim::OptimizerParamGroup> pg;
  for (const auto& g : groups) {
    if (o.optimizer == "adamw") {
      auto opt = std::make_unique<torch::optim::AdamWOptions>(g.lr);
      opt->weight_decay(g.weight_decay);
      pg.emplace_back(g.params, std::move(opt));
    } else {
      auto opt = std::make_unique<torch::optim::SGDOptions>(g.lr);
      opt->momentum(o.momentum).nesterov(o.nesterov && o.momentum > 0).weight_decay(g.weight_decay);
      pg.emplace_back(g.params, std::move(opt));
    }
  }
  if (o.optimizer == "adamw")
    return std::make_unique<torch::optim::AdamW>(pg, torch::optim::AdamWOptions(o.lr));
  return std::make_unique<torch::optim::SGD>(pg, torch::optim::SGDOptions(o.lr));
}

void set_lr(torch::optim::Optimizer& opt, const std::vector<ParamGroup>& groups, double factor) {
  auto& pg = opt.param_groups();
  for (size_t i = 0; i < pg.size(); ++i) pg[i].options().set_lr(groups[i].lr * factor);
}

TrainOptions resume_options(const TrainOptions& options) {
  // The run's own settings win; only how it runs here may change.
  std::string cfg = options.out + "/config.json";
  GRAFT_CHECK_USAGE(fs::exists(cfg), "--resume: '", options.out, "' has no config.json");
  TrainOptions stored =
      train_options_from_json(json_get<nlohmann::json>(read_json_file(cfg), "options", cfg), cfg);
  stored.threads = options.threads;
  stored.workers = options.workers;
  stored.device = options.device;
  stored.quiet = options.quiet;
  stored.stop_after_epoch = options.stop_after_epoch;
  stored.out = options.out;
  stored.resume = true;
  stored.overwrite = false;
  stored.should_stop = options.should_stop;
  stored.group = options.group;
  if (!fs::exists(checkpoint_path(options.out))) {
    // Stopped before its first checkpoint (a kill during the first epoch or
    // its first save): the run starts again from its own settings. Only the
    // files graft owns are replaced.
    log_info(str_cat("--resume: '", options.out,
                     "' has no checkpoint yet; the run starts again from its first epoch"));
    stored.resume = false;
    stored.overwrite = true;
  }
  return stored;
}

bool finish_epoch(const TrainOptions& o, int64_t epoch, int64_t step, const Metrics& val,
                  bool has_val, double lr, const char* unit, TrainerState& state,
                  TrainSummary& summary, const std::function<void()>& save_best,
                  torch::nn::Module& model, torch::optim::Optimizer& optimizer) {
  // Data parallel: every rank has the same sums (reduced) and validation
  // metrics (gathered), so all take the same decisions; rank 0 alone writes.
  const bool group = o.group && o.group->size() > 1;
  const bool lead = !group || o.group->rank() == 0;
  const double secs = state.seconds;
  const double seen = static_cast<double>(std::max<int64_t>(1, state.seen));
  EpochRow row{epoch + 1, state.loss_sum / seen, double(state.correct) / seen, val.loss,
               val.accuracy, lr, secs, state.seen / secs};
  // Never keep (or checkpoint) weights that the last steps made non-finite.
  check_finite_parameters(model, str_cat("after epoch ", epoch + 1));
  state.rows.push_back(row);
  log_info(str_cat("epoch ", row.epoch, "/", o.epochs, "  loss ", row.train_loss, "  acc ",
                   row.train_accuracy, "  val_loss ", row.val_loss, "  val_acc ", row.val_accuracy,
                   "  lr ", row.lr, "  ", static_cast<int64_t>(row.items_per_second), " ", unit));
  state.epochs_done = epoch + 1;
  state.step_in_epoch = 0;
  state.loss_sum = 0;
  state.correct = state.seen = 0;
  state.seconds = 0;
  if (state.best_epoch == 0 || !has_val || val.accuracy > state.best_accuracy) {
    state.best_accuracy = val.accuracy;
    state.best_epoch = epoch + 1;
    state.bad_epochs = 0;
    if (lead) save_best();
  } else {
    state.bad_epochs += 1;
  }
  if (lead) {
    write_file_atomic(o.out + "/metrics.csv", metrics_csv(state.rows));
    save_checkpoint(o.out, model, optimizer, state);
  }
  const bool pause = o.stop_after_epoch > 0 && state.epochs_done >= o.stop_after_epoch;
  bool stop = pause || stop_requested() || (o.should_stop && o.should_stop(step));
  // A signal may reach only some ranks: they stop together.
  if (group && state.epochs_done < o.epochs) stop = o.group->any(stop, "stop check");
  if (state.epochs_done < o.epochs && stop) {
    summary.interrupted = true;
    log_info(str_cat(pause ? "paused" : "interrupted", " after epoch ", state.epochs_done,
                     "; continue with graft train --resume --out ", o.out));
    return true;
  }
  if (o.patience > 0 && state.bad_epochs >= o.patience && state.epochs_done < o.epochs) {
    log_info(str_cat("early stop: no better validation accuracy for ", o.patience, " epochs (best ",
                     state.best_accuracy, " at epoch ", state.best_epoch, ")"));
    summary.stopped_early = true;
    return true;
  }
  return false;
}

// Every rank must train with the same settings; only how each runs may
// differ. Rank 0 publishes its options, the others compare.
std::unique_ptr<dist::GradReducer> start_data_parallel(const std::shared_ptr<dist::Group>& group,
                                                       torch::nn::Module& module,
                                                       std::vector<torch::Tensor> params) {
  if (!group) return nullptr;
  dist::broadcast_module(*group, module);
  return std::make_unique<dist::GradReducer>(group, std::move(params), group->config().overlap);
}

void share_resumed_sums(TrainerState& state, bool lead) {
  if (lead) return;
  state.loss_sum = 0;
  state.correct = state.seen = 0;
}

void reduce_epoch_sums(dist::Group* group, TrainerState& state) {
  if (!group) return;
  torch::Tensor t = torch::tensor({state.loss_sum, double(state.correct), double(state.seen)},
                                  torch::kFloat64);
  group->all_reduce(t, "sum of training metrics");
  state.loss_sum = t[0].item<double>();
  state.correct = static_cast<int64_t>(t[1].item<double>());
  state.seen = static_cast<int64_t>(t[2].item<double>());
}

void check_same_options(dist::Group& group, const TrainOptions& o) {
  nlohmann::json mine = to_json(o);
  for (const char* k : {"threads", "workers", "device", "quiet"}) mine.erase(k);
  if (group.rank() == 0) {
    group.store_set("graft/train_options", mine.dump());
    return;
  }
  nlohmann::json lead = nlohmann::json::parse(group.store_get("graft/train_options"));
  std::string diff;
  for (auto it = mine.begin(); it != mine.end(); ++it)
    if (!lead.contains(it.key()) || lead[it.key()] != it.value())
      diff += str_cat(diff.empty() ? "" : "; ", it.key(), " is ", json_excerpt(it.value()), " here but ",
                      json_excerpt(lead.value(it.key(), nlohmann::json())), " on rank 0");
  GRAFT_CHECK_USAGE(diff.empty(), "rank ", group.rank(),
                    ": the workers of a distributed run must use the same options: ", diff);
}

void check_finite_loss(double loss, int64_t epoch, int64_t step_in_epoch) {
  GRAFT_CHECK(std::isfinite(loss), "training diverged: the loss of epoch ", epoch, " step ",
              step_in_epoch, " is ", loss,
              " (expected a finite number; lower --lr, or set --clip-grad); no model of this "
              "epoch was saved");
}

void check_finite_parameters(torch::nn::Module& model, const std::string& when) {
  torch::NoGradGuard no_grad;
  for (const auto& p : model.named_parameters())
    GRAFT_CHECK(!p.value().is_floating_point() || torch::isfinite(p.value()).all().item<bool>(),
                "training diverged: parameter '", p.key(), "' holds non-finite values ", when,
                " (expected finite weights; lower --lr, or set --clip-grad); it was not saved");
}

void check_finite_weights(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                          const std::string& file) {
  for (const auto& [name, t] : tensors)
    GRAFT_CHECK(!t.is_floating_point() || torch::isfinite(t).all().item<bool>(), "--weights '",
                file, "': tensor '", name, "' holds NaN or infinite values (expected finite weights)");
}

// A test hook: GRAFT_FAULT_DIST_KILL=RANK:STEP kills that rank with SIGKILL
// after that many optimiser steps, as a crash would.
void maybe_inject_fault(int rank, int64_t step) {
  static const char* spec = std::getenv("GRAFT_FAULT_DIST_KILL");
  if (!spec || !*spec) return;
  int r = -1;
  long long s = -1;
  if (std::sscanf(spec, "%d:%lld", &r, &s) == 2 && r == rank && s == step) std::raise(SIGKILL);
}

namespace {

struct DataSets {
  ImageSet train, val, test;
  bool has_test = false;
};

DataSets open_data(const TrainOptions& o) {
  OpenOptions open;
  open.strict = o.strict;
  DataSets d;
  d.train = open_image_set(o.data, open);
  if (!o.classes.empty()) d.train = select_classes(d.train, o.classes);
  if (o.per_class > 0) d.train = take_per_class(d.train, o.per_class, mix_seed(o.seed, 102));
  if (o.val.empty()) {
    auto [train, val] = split_stratified(d.train, o.val_split, mix_seed(o.seed, 101));
    d.train = std::move(train);
    d.val = std::move(val);
  } else {
    ImageSet val = open_image_set(o.val, open);
    if (!o.classes.empty()) val = select_classes(val, o.classes);
    d.val = align_classes(val, d.train.classes, "--val");
  }
  if (!o.test.empty()) {
    ImageSet test = open_image_set(o.test, open);
    if (!o.classes.empty()) test = select_classes(test, o.classes);
    d.test = align_classes(test, d.train.classes, "--test");
    d.has_test = true;
  }
  GRAFT_CHECK_USAGE(d.train.classes.size() >= 2, "--data: '", o.data, "' has ",
                    d.train.classes.size(), " class (",
                    d.train.classes.empty() ? "" : d.train.classes[0],
                    "); a classifier needs at least 2 classes");
  auto counts = d.train.class_counts();
  for (size_t c = 0; c < counts.size(); ++c)
    GRAFT_CHECK(counts[c] > 0, "--data: class '", d.train.classes[c], "' of '", o.data,
                "' has no training images left after the split (expected at least one)");
  return d;
}

// Training images that could not be decoded, by class: reported once, in
// total and per class; a class left with no readable image is an error.
void check_readable(const TrainOptions& o, const ImageSet& train,
                    const std::vector<int64_t>& skipped) {
  const auto counts = train.class_counts();
  int64_t total = 0;
  std::string per_class;
  for (size_t c = 0; c < counts.size() && c < skipped.size(); ++c) {
    if (skipped[c] == 0) continue;
    total += skipped[c];
    per_class += str_cat(per_class.empty() ? "" : ", ", train.classes[c], " ", skipped[c], " of ",
                         counts[c]);
  }
  if (total == 0) return;
  log_warn(str_cat("--data '", o.data, "': ", total, " of ", train.size(),
                   " training images could not be decoded and were left out (", per_class, ")"));
  for (size_t c = 0; c < counts.size() && c < skipped.size(); ++c)
    GRAFT_CHECK(skipped[c] < counts[c], "--data '", o.data, "': class '", train.classes[c],
                "' has no readable training image (all ", counts[c],
                " failed to decode; expected at least one)");
}

std::string weights_file(const std::string& weights) {
  if (weights == "none") return "";
  if (fs::is_directory(weights)) return weights + "/model.safetensors";
  return weights;
}

torch::Tensor class_weight_tensor(const TrainOptions& o, const ImageSet& train) {
  if (o.class_weights != "auto") return {};
  auto counts = train.class_counts();
  std::vector<float> w;
  double n = static_cast<double>(train.size());
  for (auto c : counts) w.push_back(static_cast<float>(n / (counts.size() * std::max<int64_t>(c, 1))));
  return torch::tensor(w);
}

// Inference over `set` split between the ranks (every sample once), gathered
// into the order of the set: the same Outputs on every rank as infer() alone.
Outputs sharded_infer(dist::Group& group, BackboneImpl& model, const ImageSet& set,
                      const InputSpec& spec, const InferOptions& io, bool features,
                      int64_t width) {
  std::vector<size_t> all(set.size());
  std::iota(all.begin(), all.end(), size_t{0});
  const std::vector<size_t> mine = dist::shard_order(all, group.rank(), group.size(), /*pad=*/false);
  Outputs part;
  if (!mine.empty()) {
    part = infer(model, set.subset(mine), spec, io, features);
  } else {
    part.values = torch::zeros({0, width});
    part.labels = torch::zeros({0}, torch::kInt64);
  }
  std::vector<int64_t> pos;
  for (size_t p : part.positions) pos.push_back(static_cast<int64_t>(mine[p]));
  const std::string what = str_cat("all-gather of ", io.label);
  torch::Tensor values = group.all_gather_rows(part.values.contiguous(), what);
  torch::Tensor labels = group.all_gather_rows(part.labels.contiguous(), what);
  torch::Tensor positions = group.all_gather_rows(torch::tensor(pos, torch::kInt64), what);
  torch::Tensor by_position = positions.argsort();
  Outputs out;
  out.values = values.index_select(0, by_position);
  out.labels = labels.index_select(0, by_position);
  torch::Tensor sorted = positions.index_select(0, by_position);
  for (int64_t i = 0; i < sorted.size(0); ++i)
    out.positions.push_back(static_cast<size_t>(sorted[i].item<int64_t>()));
  return out;
}

}  // namespace

TrainSummary train(TrainOptions options) {
  if (options.resume) options = resume_options(options);
  if (options.task == "text") return train_text(options);
  const TrainOptions& o = options;
  validate(o);
  // Data parallel: rank 0 ("lead") alone writes the run directory.
  const std::shared_ptr<dist::Group> group =
      o.group && o.group->size() > 1 ? o.group : nullptr;
  const int rank = group ? group->rank() : 0, world = group ? group->size() : 1;
  const bool lead = rank == 0;
  GRAFT_CHECK_USAGE(o.batch_size % world == 0, "--batch-size ", o.batch_size,
                    " is the global batch of ", world, " workers and must be a multiple of ", world);
  const int64_t local_batch = o.batch_size / world;
  if (group) check_same_options(*group, o);
  const BackboneSpec& spec = find_backbone(o.backbone);
  // The model is built (seeded) before the data is read: it is cheap, and the
  // strategy is checked against its stages before any long work.
  seed_everything(mix_seed(o.seed, 201));
  Backbone model = spec.make(spec.source_classes);
  const Strategy strategy = parse_strategy(o.strategy, static_cast<int>(model->stages().size()));
  const Augment augment = parse_augment(o.augment);
  const std::string wfile = weights_file(o.weights);
  GRAFT_CHECK_USAGE(wfile.empty() || fs::exists(wfile), "--weights: '", o.weights,
                    "' does not exist (expected a weight file, a run directory, or none)");
  set_threads(o.threads);
  // The run's pixel limit, for this call only (the library may train again).
  struct PixelLimit {
    const int64_t before = max_image_pixels();
    explicit PixelLimit(int64_t pixels) { set_max_image_pixels(pixels); }
    ~PixelLimit() { set_max_image_pixels(before); }
  } pixel_limit(o.max_pixels);
  const torch::Device device = parse_device(o.device);
  make_head(o.head, 8, 2);  // checks --head before any long work

  // Source weights: read and checked before the run directory is touched.
  std::string model_key = o.backbone + "|random-init|" + std::to_string(o.seed);
  if (!wfile.empty()) {
    const TensorList source = read_weights(wfile);
    check_finite_weights(source, wfile);
    LoadReport report = load_state_dict(*model, source, {model->classifier_name()});
    GRAFT_CHECK(report.clean() || !o.weights_strict, "--weights '", wfile, "' does not match ",
                o.backbone, " (--weights-strict): ", report.summary());
    GRAFT_CHECK(report.loaded > 0, "--weights '", wfile, "' shares no tensor with ", o.backbone,
                ": ", report.summary());
    if (!report.clean()) log_warn(str_cat("--weights '", wfile, "': ", report.summary()));
    model_key = o.backbone + "|" + sha256_file(wfile);
  }
  const Precision precision = resolve_precision(parse_precision(o.precision), std::cerr);
  if (precision != Precision::kFp32) model_key += std::string("|") + precision_name(precision);

  DataSets data = open_data(o);
  const int64_t num_classes = static_cast<int64_t>(data.train.classes.size());
  if (lead) prepare_run_dir(o);
  if (group) group->barrier("start of training (rank 0 prepares the run directory)");

  model->set_classifier(make_head(o.head, model->feature_dim(), num_classes));
  const auto trainable = apply_strategy(*model, strategy);
  model->to(device);
  to_channels_last(*model);

  ModelInfo info;
  info.backbone = o.backbone;
  info.head = o.head;
  info.classes = data.train.classes;
  info.input = spec.input;
  info.source_weights = o.weights;

  nlohmann::ordered_json config;
  config["graft_version"] = GRAFT_VERSION;
  config["options"] = to_json(o);
  config["classes"] = data.train.classes;
  config["counts"] = {{"train", data.train.size()}, {"val", data.val.size()},
                      {"test", data.test.size()}};
  config["trainable_stages"] = trainable;
  if (!o.resume && lead) write_file_atomic(o.out + "/config.json", config.dump(2) + "\n");

  // Features are computed once when the backbone is frozen.
  const bool cached = strategy.kind == Strategy::kLinear && o.feature_cache;
  InferOptions io;
  io.batch_size = std::max<int64_t>(o.batch_size, 64);
  io.workers = o.workers;
  io.strict = o.strict;
  io.device = device;
  io.precision = precision;
  Outputs train_feats, val_feats;
  if (cached) {
    if (augment != Augment::None)
      log_info("linear probe on cached features: --augment is not applied");
    const std::string cache_dir = o.cache_dir.empty() ? default_cache_dir() : o.cache_dir;
    // Distributed: unless every rank already has them, the features are
    // computed in shards and gathered; rank 0 keeps them in the cache.
    auto features = [&](const ImageSet& set) {
      if (!group) return cached_features(*model, model_key, set, spec.input, io, cache_dir);
      auto hit = find_cached_features(model_key, set, spec.input, cache_dir);
      if (!group->any(!hit, "feature cache check")) return *hit;
      Outputs out = sharded_infer(*group, *model, set, spec.input, io, /*features=*/true,
                                  model->feature_dim());
      if (lead) store_cached_features(model_key, set, spec.input, cache_dir, out);
      return out;
    };
    io.label = "features train";
    train_feats = features(data.train);
    if (!group) {
      // The cache holds the samples that decoded: the rest were skipped.
      std::vector<int64_t> skipped = data.train.class_counts();
      const torch::Tensor read =
          torch::bincount(train_feats.labels.to(torch::kCPU), {}, static_cast<int64_t>(skipped.size()));
      for (size_t c = 0; c < skipped.size(); ++c) skipped[c] -= read[static_cast<int64_t>(c)].item<int64_t>();
      check_readable(o, data.train, skipped);
    }
    if (data.val.size() > 0) {
      io.label = "features val";
      val_feats = features(data.val);
    }
  }

  auto groups = param_groups(*model, o.lr, o.backbone_lr_mult, o.layer_decay, o.weight_decay);
  auto optimizer = make_optimizer(o, groups);
  const int64_t n_train = cached ? train_feats.values.size(0) : static_cast<int64_t>(data.train.size());
  // This rank's share of an epoch (the distributed sampler pads to equal shares).
  const int64_t n_local = (n_train + world - 1) / world;
  const int64_t steps_per_epoch = (n_local + local_batch - 1) / local_batch;
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t warmup_steps = static_cast<int64_t>(o.warmup_epochs * steps_per_epoch);
  const int64_t step_size =
      steps_per_epoch * (o.step_size > 0 ? o.step_size : std::max<int64_t>(1, o.epochs / 3));
  torch::Tensor class_w = class_weight_tensor(o, data.train);
  if (class_w.defined()) class_w = class_w.to(device);
  auto loss_fn = [&](const torch::Tensor& logits, const torch::Tensor& y) {
    auto opts = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(o.label_smoothing);
    if (class_w.defined()) opts.weight(class_w);
    return torch::nn::functional::cross_entropy(logits, y, opts);
  };

  TrainerState state;
  if (o.resume) {
    state = load_checkpoint(o.out, *model, *optimizer);
    log_info(str_cat("resuming ", o.out, " after epoch ", state.epochs_done));
    share_resumed_sums(state, lead);
  }

  // Gradients averaged over the ranks; everyone starts from rank 0's weights.
  std::unique_ptr<dist::GradReducer> reducer = start_data_parallel(group, *model, model->parameters());
  const bool sync_buffers = group && strategy.kind != Strategy::kLinear;

  auto head = model->named_modules()[model->classifier_name()];
  const bool has_val = data.val.size() > 0;
  if (!has_val) log_info("no validation data (--val-split 0): every epoch's model is kept");
  auto evaluate_val = [&]() -> Metrics {
    if (!has_val) {
      Metrics none;
      none.loss = none.accuracy = std::numeric_limits<double>::quiet_NaN();
      return none;
    }
    if (cached) {
      torch::InferenceMode guard;
      model->eval();
      torch::Tensor logits = model->classify(val_feats.values.to(device));
      return compute_metrics(logits, val_feats.labels, data.train.classes);
    }
    io.label = "validate";
    // Distributed: each rank scores a shard; the logits are gathered, so the
    // metrics are those of the whole validation set on every rank.
    Outputs out = group ? sharded_infer(*group, *model, data.val, spec.input, io, false, num_classes)
                        : infer(*model, data.val, spec.input, io, /*features=*/false);
    return compute_metrics(out.values, out.labels, data.train.classes);
  };

  TrainSummary summary;
  summary.out = o.out;
  bool readable_checked = false;
  for (int64_t epoch = state.epochs_done; epoch < o.epochs && !summary.interrupted; ++epoch) {
    auto t0 = std::chrono::steady_clock::now();
    // A resumed epoch continues from its checkpointed step, sums and random
    // state; a new one starts from a seed that depends only on the epoch.
    const int64_t first_step = state.step_in_epoch;
    if (first_step == 0) torch::manual_seed(mix_seed(o.seed, 301, static_cast<uint64_t>(epoch)));
    if (strategy.kind == Strategy::kLinear) {
      model->eval();
      head->train();
    } else {
      set_train_mode(*model);
    }
    int64_t step = epoch * steps_per_epoch + first_step;
    Progress progress(str_cat("epoch ", epoch + 1, "/", o.epochs), n_local);
    progress.advance(state.seen);
    // Returns false when the run must stop here (signal or should_stop).
    auto train_step = [&](const torch::Tensor& x, const torch::Tensor& y, bool features) {
      set_lr(*optimizer, groups,
             lr_factor(o.schedule, step, total_steps, warmup_steps, step_size, o.gamma));
      optimizer->zero_grad();
      // As DistributedDataParallel: rank 0's buffers (BatchNorm running
      // statistics) before every forward.
      if (sync_buffers) dist::broadcast_module(*group, *model, /*buffers_only=*/true);
      if (reducer) reducer->prepare();
      torch::Tensor logits;
      {
        Autocast autocast(precision);
        logits = features ? model->classify(x) : model->forward(x);
      }
      torch::Tensor loss = loss_fn(logits.to(torch::kFloat32), y);
      loss.backward();
      if (reducer) reducer->finish();
      if (o.clip_grad > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), o.clip_grad);
      optimizer->step();
      const double loss_value = loss.item<double>();
      check_finite_loss(loss_value, epoch + 1, state.step_in_epoch + 1);
      state.loss_sum += loss_value * y.size(0);
      state.correct += logits.argmax(1).eq(y).sum().item<int64_t>();
      state.seen += y.size(0);
      state.step_in_epoch += 1;
      progress.advance(y.size(0));
      ++step;
      if (group) maybe_inject_fault(rank, step);
      bool last = state.step_in_epoch == steps_per_epoch;
      bool stop = !last && (stop_requested() || (o.should_stop && o.should_stop(step)));
      // All ranks stop at the same step (a signal may reach only some).
      if (group && !last) stop = group->any(stop, "stop check");
      if (stop) {
        summary.interrupted = true;
        return false;
      }
      return true;
    };
    if (cached) {
      auto order = epoch_order(static_cast<size_t>(n_train), o.seed, epoch, true);
      if (group) order = dist::shard_order(order, rank, world);
      const int64_t n = static_cast<int64_t>(order.size());
      for (int64_t b = first_step * local_batch; b < n; b += local_batch) {
        int64_t e = std::min(n, b + local_batch);
        std::vector<int64_t> idx(order.begin() + b, order.begin() + e);
        torch::Tensor it = torch::tensor(idx, torch::kInt64);
        if (!train_step(train_feats.values.index_select(0, it).to(device),
                        train_feats.labels.index_select(0, it).to(device), true))
          break;
      }
    } else {
      LoaderOptions lo;
      lo.batch_size = local_batch;
      lo.shuffle = true;
      if (group)
        lo.order = dist::shard_order(epoch_order(data.train.size(), o.seed, epoch, true), rank, world);
      lo.augment = strategy.kind == Strategy::kLinear ? Augment::None : augment;
      lo.seed = o.seed;
      lo.epoch = epoch;
      lo.workers = o.workers;
      lo.strict = o.strict;
      lo.start_batch = first_step;
      Loader loader(data.train, spec.input, lo);
      // The frozen backbone of a linear probe without the cache is evaluated
      // as infer() does: BatchNorm folded, bf16 autocast when asked for.
      std::optional<FoldedBatchNorm> fold;
      if (strategy.kind == Strategy::kLinear) fold.emplace(*model);
      while (auto batch = loader.next()) {
        torch::Tensor x = channels_last(batch->images.to(device)), y = batch->labels.to(device);
        torch::Tensor f;
        if (strategy.kind == Strategy::kLinear) {
          torch::NoGradGuard no_grad;
          Autocast autocast(precision);
          f = model->features(x).to(torch::kFloat32);
        }
        if (!train_step(f.defined() ? f : x, y, f.defined())) break;
      }
      // Once per process, over a whole epoch (every sample is tried once).
      if (!group && !summary.interrupted && first_step == 0 && !readable_checked) {
        readable_checked = true;
        check_readable(o, data.train, loader.skipped_per_class());
      }
    }
    progress.finish();
    state.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    reduce_epoch_sums(group.get(), state);
    if (summary.interrupted) {
      if (lead) save_checkpoint(o.out, *model, *optimizer, state);
      log_info(str_cat("interrupted in epoch ", epoch + 1, " after step ", state.step_in_epoch,
                       "; the state is saved: continue with graft train --resume --out ", o.out));
      break;
    }
    GRAFT_CHECK(state.seen > 0, "no training image of '", o.data, "' could be decoded");
    Metrics val = evaluate_val();
    if (reducer) {
      const auto& rs = reducer->stats();
      log_info(str_cat("dist: ", world, " workers, ", rs.buckets, " gradient bucket(s) of ",
                       rs.bytes / 1e6, " MB in all, all-reduce wait after backward ",
                       1e3 * rs.wait_seconds / std::max<int64_t>(1, rs.steps), " ms/step over ",
                       rs.steps, " steps"));
    }
    if (finish_epoch(o, epoch, step, val, has_val, optimizer->param_groups()[0].options().get_lr(),
                     "images/s", state, summary, [&] { save_model(o.out, *model, info); }, *model,
                     *optimizer))
      break;
  }
  summary.epochs_run = state.epochs_done;
  auto report = [&] {
    // A report that cannot be written must not fail the run it describes.
    try {
      write_run_report(o.out);
    } catch (const std::exception& e) {
      log_warn(str_cat("report.html not written: ", e.what()));
    }
  };
  summary.best_epoch = state.best_epoch;
  summary.best_val_accuracy = state.best_accuracy;

  // Rank 0 alone evaluates the test set once and writes the report.
  if (!lead) return summary;
  if (data.has_test && !summary.interrupted) {
    LoadedModel best = load_model(o.out);
    best.model->to(device);
    io.label = "test";
    Outputs out = infer(*best.model, data.test, spec.input, io, /*features=*/false);
    summary.has_test = true;
    summary.test = compute_metrics(out.values, out.labels, data.train.classes);
    write_file_atomic(o.out + "/test_metrics.json", to_json(summary.test).dump(2) + "\n");
    std::vector<std::string> ids;
    for (size_t p : out.positions) ids.push_back(data.test.identity(p));
    write_file_atomic(o.out + "/test_predictions.csv",
                      predictions_csv(out.values, out.labels, ids, data.train.classes));
  }
  report();
  return summary;
}

}  // namespace graft
