#include "graft/face/finetune.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "graft/core/error.h"
#include "graft/core/runtime.h"
#include "graft/dist/group.h"
#include "graft/face/margin_loss.h"

namespace graft {

namespace {

// The epoch's order of chip indices: a plain shuffle, or for triplet whole
// groups of up to `k` chips of one identity, the groups shuffled.
std::vector<int64_t> epoch_order(const std::vector<int64_t>& labels, int64_t classes, bool grouped, int64_t k,
                                 std::mt19937_64& rng) {
  std::vector<int64_t> order(labels.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::shuffle(order.begin(), order.end(), rng);
  if (!grouped) return order;
  std::vector<std::vector<int64_t>> by_id(static_cast<size_t>(classes));
  for (int64_t i : order) by_id[static_cast<size_t>(labels[static_cast<size_t>(i)])].push_back(i);
  std::vector<std::vector<int64_t>> groups;
  for (const auto& ids : by_id)
    for (size_t s = 0; s < ids.size(); s += static_cast<size_t>(k))
      groups.emplace_back(ids.begin() + static_cast<int64_t>(s),
                          ids.begin() + static_cast<int64_t>(std::min(ids.size(), s + static_cast<size_t>(k))));
  std::shuffle(groups.begin(), groups.end(), rng);
  order.clear();
  for (const auto& g : groups) order.insert(order.end(), g.begin(), g.end());
  return order;
}

torch::Tensor chips_input(const std::vector<cv::Mat>& chips, const std::vector<int64_t>& idx, bool augment,
                          const FaceAugmentOptions& aug, uint64_t seed, int64_t epoch) {
  std::vector<torch::Tensor> inputs;
  for (int64_t i : idx) {
    const cv::Mat& chip = chips[static_cast<size_t>(i)];
    inputs.push_back(face_net_input(
        augment ? augment_face_chip(chip, mix_seed(seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(i)), aug)
                : chip,
        150));
  }
  return torch::stack(inputs);
}

}  // namespace

namespace {

// The module the loop checkpoints: the embedder and the class centres.
struct FaceFinetuneHolder : torch::nn::Module {
  FaceFinetuneHolder(FaceEmbedder net, const torch::Tensor& centres) {
    register_module("embedder", std::move(net));
    if (centres.defined()) register_parameter("centres", centres);
  }
};

}  // namespace

FaceFinetuneTask::FaceFinetuneTask(FaceEmbedder net, const std::vector<cv::Mat>& chips,
                                   const std::vector<int64_t>& labels, int64_t classes,
                                   const torch::Tensor& centres, const FaceFinetuneOptions& o,
                                   std::shared_ptr<dist::Group> group)
    : net_(std::move(net)), chips_(chips), label_list_(labels), classes_(classes), o_(o), group_(std::move(group)) {
  const bool triplet = o.loss == "triplet";
  GRAFT_CHECK(triplet || o.loss == "arcface" || o.loss == "cosface", "--finetune: \"", o.loss,
              "\" (expected arcface, cosface or triplet)");
  GRAFT_CHECK(o.epochs >= 1, "--finetune-epochs: ", o.epochs, " (expected at least 1)");
  GRAFT_CHECK(o.lr > 0 && std::isfinite(o.lr), "--finetune-lr: ", o.lr, " (expected a positive number)");
  GRAFT_CHECK(o.batch_size >= 2, "--batch-size: ", o.batch_size, " (expected at least 2)");
  GRAFT_CHECK(chips.size() == labels.size() && !chips.empty(), "fine-tuning: ", chips.size(), " chips and ",
              labels.size(), " labels (expected the same number, at least 1)");
  for (int64_t l : labels) GRAFT_CHECK(l >= 0 && l < classes, "fine-tuning: label ", l, " outside 0..", classes - 1);
  if (!triplet)
    GRAFT_CHECK(centres.defined() && centres.dim() == 2 && centres.size(0) == classes && centres.size(1) == 128,
                "fine-tuning: class centres ", centres.defined() ? centres.sizes() : torch::IntArrayRef{},
                ", expected [", classes, ", 128]");
  if (group_ && group_->size() > 1) {
    rank_ = group_->rank();
    world_ = group_->size();
  }
  labels_ = torch::tensor(labels, torch::kInt64);
  net_->set_last_stage_trainable(true);
  if (!triplet) centres_ = centres.detach().to(torch::kFloat32).clone().set_requires_grad(true);
  holder_ = std::make_shared<FaceFinetuneHolder>(net_, centres_);
  // Without augmentation the frozen trunk sees the same chips every epoch
  // (every rank computes all of them: a few seconds for a face folder).
  if (!o.augment) {
    const int64_t n = static_cast<int64_t>(chips_.size());
    std::vector<torch::Tensor> parts;
    for (int64_t s = 0; s < n; s += 32) {
      std::vector<int64_t> idx;
      for (int64_t i = s; i < std::min(n, s + 32); ++i) idx.push_back(i);
      parts.push_back(trunk_of(idx, 0));
    }
    cached_ = torch::cat(parts);
  }
}

std::vector<ParamGroup> FaceFinetuneTask::param_groups() {
  std::vector<torch::Tensor> params = net_->last_stage_parameters();
  if (centres_.defined()) params.push_back(centres_);
  return {ParamGroup{"last_stage", params, o_.lr, o_.weight_decay}};
}

int64_t FaceFinetuneTask::steps_per_epoch() {
  const int64_t n = static_cast<int64_t>(chips_.size());
  return (n + o_.batch_size - 1) / o_.batch_size;
}

int64_t FaceFinetuneTask::items_per_epoch() {
  return (static_cast<int64_t>(chips_.size()) + world_ - 1) / world_;
}

void FaceFinetuneTask::begin_epoch(int64_t epoch, int64_t /*first_step*/) {
  // Seeded per epoch (not one generator across epochs), so that a resumed
  // run draws the same order; epoch 0's seed is that of the chained one.
  std::mt19937_64 rng(mix_seed(o_.seed, 0x5eed, static_cast<uint64_t>(epoch)));
  order_ = epoch_order(label_list_, classes_, o_.loss == "triplet", o_.per_identity, rng);
  // Modes stay as they are: the embedder has no dropout or batch statistics.
}

torch::Tensor FaceFinetuneTask::trunk_of(const std::vector<int64_t>& idx, int64_t epoch) {
  torch::NoGradGuard no_grad;
  return net_->forward_trunk(chips_input(chips_, idx, o_.augment, o_.augmentation, o_.seed, epoch));
}

StepStats FaceFinetuneTask::step(int64_t epoch, int64_t s) {
  const int64_t n = static_cast<int64_t>(chips_.size());
  const int64_t b0 = s * o_.batch_size, len = std::min(n, b0 + o_.batch_size) - b0;
  // This rank's contiguous share of the global batch.
  const int64_t lo = b0 + len * rank_ / world_, hi = b0 + len * (rank_ + 1) / world_;
  StepStats st;
  st.items = st.count = hi - lo;
  if (hi == lo) {
    // Nothing here this step; the reducer still waits for every gradient.
    torch::Tensor zero = torch::zeros({});
    for (const auto& p : param_groups()[0].params) zero = zero + p.sum() * 0.0;
    zero.backward();
    return st;
  }
  const std::vector<int64_t> idx(order_.begin() + lo, order_.begin() + hi);
  const auto index = torch::tensor(idx, torch::kInt64);
  const torch::Tensor trunk = o_.augment ? trunk_of(idx, epoch) : cached_.index_select(0, index);
  const auto y = labels_.index_select(0, index);
  const auto e = net_->forward_last_stage(trunk);
  torch::Tensor loss;
  if (o_.loss == "triplet") {
    loss = batch_hard_triplet_loss(e, y, o_.margin);
  } else {
    const auto logits = o_.loss == "arcface" ? arcface_logits(e, centres_, y, o_.scale, o_.margin)
                                             : cosface_logits(e, centres_, y, o_.scale, o_.margin);
    loss = torch::nn::functional::cross_entropy(logits, y);
    st.correct = logits.argmax(1).eq(y).sum().item<int64_t>();
  }
  const double v = loss.item<double>();
  GRAFT_CHECK(std::isfinite(v), "fine-tuning: the ", o_.loss, " loss is ", v, " at epoch ", epoch + 1,
              " (lower --finetune-lr, now ", o_.lr, ")");
  // Each rank's mean weighs its share, so that the ranks' average gradient
  // is that of the whole batch's mean (alone: weight 1, left out).
  if (world_ > 1) loss = loss * (static_cast<double>(world_ * (hi - lo)) / static_cast<double>(len));
  loss.backward();
  st.loss_sum = v * static_cast<double>(hi - lo);
  return st;
}

TrainOptions finetune_loop_options(const TrainOptions& run, const FaceFinetuneOptions& f) {
  TrainOptions o = run;  // where and how it runs: out, seed, threads, resume, stops, budget, group
  o.epochs = f.epochs;
  o.batch_size = f.batch_size;
  o.lr = f.lr;
  o.optimizer = "sgd";
  o.momentum = f.momentum;
  o.nesterov = false;
  o.weight_decay = f.weight_decay;
  o.schedule = "cosine";
  o.warmup_epochs = 0;
  o.clip_grad = 0;
  o.patience = 0;
  return o;
}

TrainSummary finetune_face_embedder(FaceEmbedder& net, const std::vector<cv::Mat>& chips,
                                    const std::vector<int64_t>& labels, int64_t classes,
                                    const torch::Tensor& centres, const FaceFinetuneOptions& o,
                                    const TrainOptions& loop) {
  try {
    FaceFinetuneTask task(net, chips, labels, classes, centres, o, loop.group);
    TrainSummary s = run_loop(loop, task);
    net->set_last_stage_trainable(false);
    return s;
  } catch (...) {
    net->set_last_stage_trainable(false);
    throw;
  }
}

}  // namespace graft
