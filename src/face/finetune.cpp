#include "graft/face/finetune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "graft/core/error.h"
#include "graft/core/runtime.h"
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

FaceFinetuneStats finetune_face_embedder(FaceEmbedder& net, const std::vector<cv::Mat>& chips,
                                         const std::vector<int64_t>& labels, int64_t classes,
                                         const torch::Tensor& centres, const FaceFinetuneOptions& o,
                                         const std::function<void(int64_t, const FaceFinetuneStats&)>& on_epoch) {
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

  net->set_last_stage_trainable(true);
  std::vector<torch::Tensor> params = net->last_stage_parameters();
  torch::Tensor w;
  if (!triplet) {
    w = centres.detach().to(torch::kFloat32).clone().set_requires_grad(true);
    params.push_back(w);
  }
  torch::optim::SGD opt(params, torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));

  // Without augmentation the frozen trunk sees the same chips every epoch.
  const int64_t n = static_cast<int64_t>(chips.size());
  torch::Tensor cached;
  if (!o.augment) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> parts;
    for (int64_t s = 0; s < n; s += 32) {
      std::vector<int64_t> idx;
      for (int64_t i = s; i < std::min(n, s + 32); ++i) idx.push_back(i);
      parts.push_back(net->forward_trunk(chips_input(chips, idx, false, o.augmentation, o.seed, 0)));
    }
    cached = torch::cat(parts);
  }
  const auto all_labels = torch::tensor(labels, torch::kInt64);
  std::mt19937_64 rng(mix_seed(o.seed, 0x5eed));
  FaceFinetuneStats stats;
  try {
    for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
      const auto t0 = std::chrono::steady_clock::now();
      const double lr = o.lr * 0.5 * (1 + std::cos(M_PI * static_cast<double>(epoch) / static_cast<double>(o.epochs)));
      for (auto& g : opt.param_groups()) static_cast<torch::optim::SGDOptions&>(g.options()).lr(lr);
      const auto order = epoch_order(labels, classes, triplet, o.per_identity, rng);
      double loss_sum = 0;
      int64_t steps = 0;
      for (int64_t s = 0; s < n; s += o.batch_size) {
        const std::vector<int64_t> idx(order.begin() + s, order.begin() + std::min(n, s + o.batch_size));
        const auto index = torch::tensor(idx, torch::kInt64);
        torch::Tensor trunk;
        if (o.augment) {
          torch::NoGradGuard no_grad;
          trunk = net->forward_trunk(chips_input(chips, idx, true, o.augmentation, o.seed, epoch));
        } else {
          trunk = cached.index_select(0, index);
        }
        const auto y = all_labels.index_select(0, index);
        const auto e = net->forward_last_stage(trunk);
        const auto loss = triplet ? batch_hard_triplet_loss(e, y, o.margin)
                                  : margin_softmax_loss(o.loss, e, w, y, o.scale, o.margin);
        const double v = loss.item<double>();
        GRAFT_CHECK(std::isfinite(v), "fine-tuning: the ", o.loss, " loss is ", v, " at epoch ", epoch + 1,
                    " (lower --finetune-lr, now ", o.lr, ")");
        opt.zero_grad();
        loss.backward();
        opt.step();
        loss_sum += v;
        ++steps;
      }
      stats.steps += steps;
      stats.epoch_loss.push_back(loss_sum / static_cast<double>(std::max<int64_t>(1, steps)));
      stats.epoch_seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      if (on_epoch) on_epoch(epoch + 1, stats);
    }
  } catch (...) {
    net->set_last_stage_trainable(false);
    throw;
  }
  net->set_last_stage_trainable(false);
  return stats;
}

}  // namespace graft
