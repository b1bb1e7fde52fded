// The image task: a backbone from the registry with a new head, trained by
// the loop (train/loop.h) as a linear probe (on cached features when
// --feature-cache), the last N stages or the whole network.

#include "graft/train/image_train.h"

#include <filesystem>
#include <limits>
#include <numeric>
#include <optional>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/data/image_header.h"
#include "graft/data/image_set.h"
#include "graft/data/loader.h"
#include "graft/data/order.h"
#include "graft/dist/group.h"
#include "graft/dist/sampler.h"
#include "graft/eval/calibration.h"
#include "graft/eval/infer.h"
#include "graft/eval/int8_run.h"
#include "graft/models/head.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/train/adapt.h"
#include "graft/train/strategy.h"
#include "graft/weights/state_dict.h"
#include "unlabeled.h"

namespace fs = std::filesystem;

namespace graft {

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

// Training images that could not be decoded: reported once, by reason and
// class; none left, or a class left with none, is an error saying why.
void check_readable(const TrainOptions& o, const ImageSet& train,
                    const std::vector<UnreadableImage>& failures) {
  if (failures.empty()) return;
  const int64_t total = static_cast<int64_t>(train.size());
  const std::string summary = unreadable_summary(failures, total, train.classes, "training images");
  GRAFT_CHECK(static_cast<int64_t>(failures.size()) < total, "--data '", o.data, "': ", summary);
  log_warn(str_cat("--data '", o.data, "': ", summary));
  const auto counts = train.class_counts();
  for (size_t c = 0; c < counts.size(); ++c) {
    std::vector<UnreadableImage> here;
    for (const UnreadableImage& u : failures)
      if (u.label == static_cast<int>(c)) here.push_back(u);
    GRAFT_CHECK(static_cast<int64_t>(here.size()) < counts[c], "--data '", o.data, "': class '", train.classes[c],
                "' has no readable training image (all ", counts[c], " failed to decode: ",
                unreadable_reasons(here, {}), "; expected at least one; graft reads ", supported_image_formats(), ")");
  }
}

// The samples of `set` missing from `decoded` (positions that decoded), with
// the reason each fails to load: for features that came from the cache.
std::vector<UnreadableImage> unreadable_samples(const ImageSet& set, const std::vector<size_t>& decoded) {
  std::vector<bool> ok(set.size(), false);
  for (size_t p : decoded)
    if (p < ok.size()) ok[p] = true;
  std::vector<UnreadableImage> out;
  for (size_t p = 0; p < set.size(); ++p) {
    if (ok[p]) continue;
    try {
      set.load(p);
      out.push_back(UnreadableImage{set.identity(p), set.samples[p].label, ImageProblem::kDamaged, "",
                                    "decoded now, but not when the features were cached"});
    } catch (const Error& e) {
      out.push_back(unreadable_image(e, set.identity(p), set.samples[p].label));
    }
  }
  return out;
}

std::string weights_file(const std::string& weights) {
  if (weights == "none") return "";
  if (fs::is_directory(weights)) return weights + "/model.safetensors";
  return weights;
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

// The run's pixel limit, for this run only (the library may train again).
class PixelLimit {
 public:
  explicit PixelLimit(int64_t pixels) { set_max_image_pixels(pixels); }
  ~PixelLimit() { set_max_image_pixels(before_); }
  PixelLimit(const PixelLimit&) = delete;
  PixelLimit& operator=(const PixelLimit&) = delete;

 private:
  const int64_t before_ = max_image_pixels();
};

// One image run: everything before the loop in the constructor (checked
// before any long work where possible), the steps for the loop after.
class ImageTask final : public TaskRun {
 public:
  explicit ImageTask(const TrainOptions& o) : TaskRun(o), pixel_limit_(o.max_pixels) {
    GRAFT_CHECK_USAGE(o.batch_size % world_ == 0, "--batch-size ", o.batch_size,
                      " is the global batch of ", world_, " workers and must be a multiple of ", world_);
    local_batch_ = o.batch_size / world_;
    GRAFT_CHECK_USAGE(world_ == 1 || o.head != "centroid", "--head centroid with ", world_, " workers: a centroid "
                      "head is fitted in one pass over the features, in one process (expected --nproc 1)");
    build_model();
    data_ = open_data(o);
    classes_ = static_cast<int64_t>(data_.train.classes.size());
    if (o.adapt != "none" || o.self_train != "none")  // issue 19: the second stream
      unlabeled_.emplace(o, spec_->input, augment_, local_batch_ * o.unlabeled_ratio, rank_, world_);
    if (rank_ == 0) prepare_run_dir(o);
    if (group_) group_->barrier("start of training (rank 0 prepares the run directory)");
    attach_head();
    if (o.adapt != "none") attach_adapter();
    if (cached_) cache_features();
    n_train_ = cached_ ? train_feats_.values.size(0) : static_cast<int64_t>(data_.train.size());
    class_w_ = class_weight_tensor(o, data_.train.class_counts());
    if (class_w_.defined()) class_w_ = class_w_.to(device_);
    head_ = model_->named_modules()[model_->classifier_name()];
    centroid_ = as_centroid(*head_);
  }

  torch::nn::Module& module() override { return with_adapter_ ? *with_adapter_ : *model_; }
  std::vector<ParamGroup> param_groups() override {
    auto groups = graft::param_groups(*model_, o_.lr, o_.backbone_lr_mult, o_.layer_decay, o_.weight_decay);
    // --adapt dann|cdan: the domain classifier learns at the head's rate.
    if (adapter_ && !adapter_->parameters().empty())
      groups.push_back(ParamGroup{"domain", adapter_->parameters(), o_.lr, o_.weight_decay});
    return groups;
  }
  // This rank's share of an epoch (the distributed sampler pads to equal shares).
  int64_t items_per_epoch() override { return (n_train_ + world_ - 1) / world_; }
  int64_t steps_per_epoch() override { return (items_per_epoch() + local_batch_ - 1) / local_batch_; }
  const char* unit() const override { return "images/s"; }
  bool sync_buffers() const override { return strategy_.kind != Strategy::kLinear; }
  bool one_pass() const override { return centroid_ != nullptr; }

  void begin_epoch(int64_t epoch, int64_t first_step) override {
    // A resumed epoch continues from its checkpointed step, sums and random
    // state; a new one starts from a seed that depends only on the epoch.
    if (first_step == 0) torch::manual_seed(mix_seed(o_.seed, 301, static_cast<uint64_t>(epoch)));
    if (strategy_.kind == Strategy::kLinear) {
      model_->eval();
      head_->train();
    } else {
      set_train_mode(*model_);
    }
    epoch_count_ = 0;
    if (unlabeled_) {
      if (first_step == 0) unlabeled_counts_ = {};  // a resumed epoch counts from there
      unlabeled_->begin_epoch(epoch, steps_per_epoch(), first_step);
    }
    if (cached_) {
      order_ = epoch_order(static_cast<size_t>(n_train_), o_.seed, epoch, true);
      if (group_) order_ = dist::shard_order(order_, rank_, world_);
      return;
    }
    LoaderOptions lo;
    lo.batch_size = local_batch_;
    lo.shuffle = true;
    if (group_) lo.order = dist::shard_order(epoch_order(data_.train.size(), o_.seed, epoch, true), rank_, world_);
    lo.augment = strategy_.kind == Strategy::kLinear ? Augment::None : augment_;
    lo.seed = o_.seed;
    lo.epoch = epoch;
    lo.workers = o_.workers;
    lo.strict = o_.strict;
    lo.start_batch = first_step;
    loader_.emplace(data_.train, spec_->input, lo);
    // The frozen backbone of a linear probe without the cache is evaluated
    // as infer() does: BatchNorm folded, bf16 autocast when asked for.
    if (strategy_.kind == Strategy::kLinear) fold_.emplace(*model_);
  }

  StepStats step(int64_t epoch, int64_t s) override {
    torch::Tensor x, y;
    bool features = cached_;
    if (cached_) {
      const int64_t n = static_cast<int64_t>(order_.size());
      const int64_t b = s * local_batch_, e = std::min(n, b + local_batch_);
      torch::Tensor it = torch::tensor(std::vector<int64_t>(order_.begin() + b, order_.begin() + e), torch::kInt64);
      x = train_feats_.values.index_select(0, it).to(device_);
      y = train_feats_.labels.index_select(0, it).to(device_);
    } else {
      auto batch = loader_->next();
      // Batches whose every image failed to decode are left out by the loader.
      if (!batch) return StepStats{0, 0, 0, 0, /*skip=*/true};
      x = channels_last(batch->images.to(device_));
      y = batch->labels.to(device_);
      if (strategy_.kind == Strategy::kLinear) {
        torch::NoGradGuard no_grad;
        Autocast autocast(precision_);
        x = model_->features(x).to(torch::kFloat32);
        features = true;
      }
    }
    if (centroid_) {
      // A centroid head is fitted, not trained: the features are summed
      // into their class rows and the optimiser does not step.
      centroid_->add(x.to(torch::kFloat32), y);
      epoch_count_ += y.size(0);
      StepStats st;
      st.items = y.size(0);
      st.skip = true;
      return st;
    }
    if (unlabeled_) return unlabeled_step(epoch, s, x, y, features);
    torch::Tensor logits;
    {
      Autocast autocast(precision_);
      logits = features ? model_->classify(x) : model_->forward(x);
    }
    torch::Tensor loss = classification_loss(o_, logits.to(torch::kFloat32), y, class_w_);
    loss.backward();
    StepStats st;
    st.count = st.items = y.size(0);
    st.loss_sum = loss.item<double>() * static_cast<double>(st.count);
    st.correct = logits.argmax(1).eq(y).sum().item<int64_t>();
    epoch_count_ += st.count;
    return st;
  }

  void end_epoch(int64_t /*epoch*/, bool whole) override {
    fold_.reset();
    if (unlabeled_) finish_unlabeled_epoch();
    if (cached_ || group_ || !whole) return;
    // Once per process, over a whole epoch (every sample is tried once).
    if (!readable_checked_) check_readable(o_, data_.train, loader_->failures());
    readable_checked_ = true;
    GRAFT_CHECK(epoch_count_ > 0, "no training image of '", o_.data, "' could be decoded");
  }

  bool has_validation() override { return data_.val.size() > 0; }

  Metrics validate() override {
    finish_centroids();
    if (cached_) {
      torch::InferenceMode guard;
      model_->eval();
      val_logits_ = {model_->classify(val_feats_.values.to(device_)).cpu(), val_feats_.labels};
      return compute_metrics(val_logits_.first, val_logits_.second, data_.train.classes);
    }
    io_.label = "validate";
    // Distributed: each rank scores a shard; the logits are gathered, so the
    // metrics are those of the whole validation set on every rank.
    Outputs out = group_ ? sharded_infer(*group_, *model_, data_.val, spec_->input, io_, false, classes_)
                         : infer(*model_, data_.val, spec_->input, io_, /*features=*/false);
    val_logits_ = {out.values, out.labels};
    return compute_metrics(out.values, out.labels, data_.train.classes);
  }

  std::pair<torch::Tensor, torch::Tensor> validation_logits() override { return val_logits_; }

  void save_model() override {
    finish_centroids();
    graft::save_model(o_.out, *model_, info_);
  }

  void test(TrainSummary& summary) override {
    if (!data_.has_test) return;
    LoadedModel best = load_model(o_.out);
    best.model->to(device_);
    io_.label = "test";
    Outputs out = infer(*best.model, data_.test, spec_->input, io_, /*features=*/false);
    std::vector<std::string> ids;
    for (size_t p : out.positions) ids.push_back(data_.test.identity(p));
    summary.has_test = true;
    summary.test = run_scoring(o_.out, {}).score(out.values, out.labels, data_.train.classes, ids, o_.out).metrics;
  }

 private:
  std::pair<torch::Tensor, torch::Tensor> val_logits_;  // of the last validate()

  // ---- Unlabelled target data (issue 19, train/adapt.h) ----

  // The domain adapter beside the model: the loop checkpoints, broadcasts
  // and optimises both (as "model." and "adapter."); model.safetensors holds
  // the model alone.
  void attach_adapter() {
    AdaptSpec spec;
    spec.method = o_.adapt;
    spec.feature_dim = model_->feature_dim();
    spec.classes = classes_;
    spec.hidden = o_.domain_hidden;
    spec.weight = o_.adapt_weight;
    spec.seed = o_.seed;
    seed_everything(mix_seed(o_.seed, 203));
    adapter_ = DomainAdapter(spec);
    adapter_->to(device_);
    with_adapter_ = std::make_shared<torch::nn::Module>();
    with_adapter_->register_module("model", model_.ptr());
    with_adapter_->register_module("adapter", adapter_.ptr());
  }

  // The head's input and logits of labelled and unlabelled inputs in one
  // forward pass (BatchNorm sees both domains, as in TLlib). `features`: the
  // inputs are features already (a linear probe).
  std::pair<torch::Tensor, torch::Tensor> forward_features(const torch::Tensor& x, bool features) {
    Autocast autocast(precision_);
    torch::Tensor f = features ? x : model_->features(x);
    return {f.to(torch::kFloat32), model_->classify(f).to(torch::kFloat32)};
  }

  // A linear probe's frozen backbone on images (no gradient, as in step()).
  torch::Tensor frozen_features(const torch::Tensor& images) {
    torch::NoGradGuard no_grad;
    Autocast autocast(precision_);
    return model_->features(channels_last(images)).to(torch::kFloat32);
  }

  StepStats unlabeled_step(int64_t epoch, int64_t s, const torch::Tensor& x, const torch::Tensor& y,
                           bool features) {
    std::optional<UnlabeledBatch> u = unlabeled_->next(s, device_);
    if (u && !features && !cached_) {
      if (strategy_.kind == Strategy::kLinear) {
        u->weak = frozen_features(u->weak);
        if (u->strong.defined()) u->strong = frozen_features(u->strong);
      } else {
        u->weak = channels_last(u->weak);
        if (u->strong.defined()) u->strong = channels_last(u->strong);
      }
    }
    const bool as_features = features || strategy_.kind == Strategy::kLinear;
    const int64_t b = x.size(0);
    std::vector<torch::Tensor> parts = {x};
    if (u) {
      parts.push_back(u->weak);
      if (u->strong.defined()) parts.push_back(u->strong);
    }
    auto [f, logits] = forward_features(parts.size() == 1 ? x : torch::cat(parts), as_features);
    torch::Tensor lab_logits = logits.narrow(0, 0, b);
    torch::Tensor loss = classification_loss(o_, lab_logits, y, class_w_);
    if (u) {
      const UnlabeledTerm t = unlabeled_term(o_, adapter_, strategy_.kind == Strategy::kLinear, f, logits, b,
                                             u->weak.size(0), epoch, s, steps_per_epoch());
      if (t.loss.defined()) loss = loss + t.loss;
      unlabeled_counts_ += t.counts;
    }
    loss.backward();
    StepStats st;
    st.count = st.items = b;
    st.loss_sum = loss.item<double>() * static_cast<double>(b);
    st.correct = lab_logits.argmax(1).eq(y).sum().item<int64_t>();
    epoch_count_ += b;
    return st;
  }

  // The class sums of a centroid head become unit-length means once its
  // pass is over (before the model is validated or saved; a checkpoint
  // taken during the pass keeps the sums, so --resume adds the rest).
  void finish_centroids() {
    if (!centroid_ || centroids_done_) return;
    centroid_->finish();
    centroids_done_ = true;
  }

  // The model is built (seeded) before the data is read: it is cheap, and
  // the strategy is checked against its stages before any long work. The
  // source weights are read and checked before the run directory is touched.
  void build_model() {
    spec_ = &find_backbone(o_.backbone);
    seed_everything(mix_seed(o_.seed, 201));
    model_ = spec_->make(spec_->source_classes);
    strategy_ = parse_strategy(o_.strategy, static_cast<int>(model_->stages().size()));
    augment_ = parse_augment(o_.augment);
    const std::string wfile = weights_file(o_.weights);
    GRAFT_CHECK_USAGE(wfile.empty() || fs::exists(wfile), "--weights: '", o_.weights,
                      "' does not exist (expected a weight file, a run directory, or none)");
    set_threads(o_.threads);
    device_ = parse_device(o_.device);
    make_head(o_.head, 8, 2);  // checks --head before any long work
    GRAFT_CHECK_USAGE(o_.head != "centroid" || strategy_.kind == Strategy::kLinear, "--head centroid with "
                      "--strategy ", o_.strategy, ": a centroid head is fitted on the frozen backbone's features "
                      "(expected --strategy linear; to fine-tune, train a linear head)");
    const std::string backbone_id = backbone_key(o_.backbone, spec_->transform_input);
    model_key_ = backbone_id + "|random-init|" + std::to_string(o_.seed);
    if (!wfile.empty()) {
      const TensorList source = read_weights(wfile);
      check_finite_weights(source, wfile);
      LoadReport report = load_state_dict(*model_, source, {model_->classifier_name()});
      GRAFT_CHECK(report.clean() || !o_.weights_strict, "--weights '", wfile, "' does not match ",
                  o_.backbone, " (--weights-strict): ", report.summary());
      GRAFT_CHECK(report.loaded > 0, "--weights '", wfile, "' shares no tensor with ", o_.backbone, ": ",
                  report.summary());
      if (!report.clean()) log_warn(str_cat("--weights '", wfile, "': ", report.summary()));
      model_key_ = backbone_id + "|" + sha256_file(wfile);
    }
    precision_ = resolve_precision(parse_precision(o_.precision), std::cerr);
    if (precision_ != Precision::kFp32) model_key_ += std::string("|") + precision_name(precision_);
    // FixMatch's views are augmented every step: no cached features (issue 19).
    cached_ = strategy_.kind == Strategy::kLinear && o_.feature_cache && o_.self_train != "fixmatch";
    if (precision_ == Precision::kInt8) {
      // issue 21: the frozen backbone's features through the int8 network
      // that graft eval --precision int8 builds for the run (same data, N and
      // seed: the same calibration), so the head trains on what it will see.
      GRAFT_CHECK_USAGE(cached_, "--precision int8: for the linear probe's cached features (expected --strategy "
                        "linear with the feature cache, without --self-train fixmatch; fine-tuning trains in fp32 "
                        "or bf16)");
      check_int8_supported(*model_, o_.backbone);
      model_key_ += str_cat("|", o_.calibration, "|", fs::absolute(o_.data).string());
      io_.calibration = o_.calibration;
      io_.calibration_data = o_.data;
    }
    io_.batch_size = std::max<int64_t>(o_.batch_size, 64);
    io_.workers = o_.workers;
    io_.strict = o_.strict;
    io_.device = device_;
    io_.precision = precision_;
  }

  // The new head, the strategy's trainable stages, config.json.
  void attach_head() {
    model_->set_classifier(make_head(o_.head, model_->feature_dim(), classes_));
    const auto trainable = apply_strategy(*model_, strategy_);
    model_->to(device_);
    to_channels_last(*model_);
    info_.backbone = o_.backbone;
    info_.head = o_.head;
    info_.classes = data_.train.classes;
    info_.input = spec_->input;
    info_.source_weights = o_.weights;
    info_.transform_input = spec_->transform_input;
    nlohmann::ordered_json config;
    config["graft_version"] = GRAFT_VERSION;
    config["options"] = to_json(o_);
    config["classes"] = data_.train.classes;
    config["counts"] = {{"train", data_.train.size()}, {"val", data_.val.size()}, {"test", data_.test.size()}};
    if (unlabeled_) config["counts"]["unlabeled"] = unlabeled_->set().size();
    config["trainable_stages"] = trainable;
    if (!o_.resume && rank_ == 0) write_file_atomic(o_.out + "/config.json", config.dump(2) + "\n");
  }

  // Features are computed once when the backbone is frozen. Distributed:
  // unless every rank already has them, they are computed in shards and
  // gathered; rank 0 keeps them in the cache.
  void cache_features() {
    if (augment_ != Augment::None) log_info("linear probe on cached features: --augment is not applied");
    const std::string cache_dir = o_.cache_dir.empty() ? default_cache_dir() : o_.cache_dir;
    set_feature_cache_limit_mb(o_.cache_mb);
    // --precision int8: calibrated before the first features not in the cache.
    auto int8_ready = [&] {
      if (precision_ == Precision::kInt8 && !model_->int8())
        prepare_int8_source(*model_, o_.backbone, spec_->input, io_);
    };
    auto features = [&](const ImageSet& set) {
      if (!group_) {
        if (precision_ == Precision::kInt8 && !find_cached_features(model_key_, set, spec_->input, cache_dir))
          int8_ready();
        return cached_features(*model_, model_key_, set, spec_->input, io_, cache_dir);
      }
      auto hit = find_cached_features(model_key_, set, spec_->input, cache_dir);
      if (!group_->any(!hit, "feature cache check")) return *hit;
      int8_ready();
      Outputs out = sharded_infer(*group_, *model_, set, spec_->input, io_, /*features=*/true,
                                  model_->feature_dim());
      if (rank_ == 0) store_cached_features(model_key_, set, spec_->input, cache_dir, out);
      return out;
    };
    io_.label = "features train";
    train_feats_ = features(data_.train);
    if (!group_) {
      // The cache holds the samples that decoded: the rest were skipped.
      check_readable(o_, data_.train,
                     train_feats_.unreadable.size() + train_feats_.positions.size() == data_.train.size()
                         ? train_feats_.unreadable
                         : unreadable_samples(data_.train, train_feats_.positions));
    }
    if (data_.val.size() > 0) {
      io_.label = "features val";
      val_feats_ = features(data_.val);
    }
    if (unlabeled_) {  // issue 19: --self-train pseudo and --adapt dan on cached features
      io_.label = "features unlabeled";
      unlabeled_->use_features(features(unlabeled_->set()).values);
    }
  }

  PixelLimit pixel_limit_;
  int64_t local_batch_ = 1, classes_ = 0, n_train_ = 0, epoch_count_ = 0;
  const BackboneSpec* spec_ = nullptr;
  Backbone model_{nullptr};
  Strategy strategy_;
  Augment augment_ = Augment::None;
  torch::Device device_{torch::kCPU};
  Precision precision_ = Precision::kFp32;
  std::string model_key_;
  bool cached_ = false, readable_checked_ = false, centroids_done_ = false;
  InferOptions io_;
  DataSets data_;
  ModelInfo info_;
  Outputs train_feats_, val_feats_;
  torch::Tensor class_w_;
  std::shared_ptr<torch::nn::Module> head_;
  CentroidHeadImpl* centroid_ = nullptr;  // the head, when --head centroid
  std::vector<size_t> order_;
  std::optional<Loader> loader_;
  std::optional<FoldedBatchNorm> fold_;
  // Unlabelled target data (issue 19).
  std::optional<UnlabeledStream> unlabeled_;
  DomainAdapter adapter_{nullptr};
  std::shared_ptr<torch::nn::Module> with_adapter_;  // model + adapter, what the loop trains
};

}  // namespace

TrainSummary train_image(const TrainOptions& o) { return run_task<ImageTask>(o); }

}  // namespace graft
