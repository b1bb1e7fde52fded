// The image task's stream of unlabelled target images (issue 19).

#include "unlabeled.h"

#include "graft/core/error.h"
#include "graft/core/runtime.h"
#include "graft/data/order.h"
#include "graft/dist/sampler.h"

namespace graft {

UnlabeledStream::UnlabeledStream(const TrainOptions& o, const InputSpec& spec, Augment augment, int64_t batch,
                                 int rank, int world)
    : o_(o), spec_(spec), augment_(augment), batch_(batch), rank_(rank), world_(world),
      fixmatch_(o.self_train == "fixmatch") {
  OpenOptions open;
  open.strict = o.strict;
  open.as_class = "unlabeled";
  try {
    set_ = open_image_set(o.unlabeled, open);
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(str_cat("--unlabeled '", o.unlabeled, "': ", e.what()));
  }
}

void UnlabeledStream::begin_epoch(int64_t epoch, int64_t steps, int64_t first_step) {
  const size_t n = features_.defined() ? static_cast<size_t>(features_.size(0)) : set_.size();
  const size_t need = static_cast<size_t>(steps * batch_ * world_);
  std::vector<size_t> order;
  for (int64_t cycle = 0; order.size() < need; ++cycle) {
    const std::vector<size_t> p =
        epoch_order(n, mix_seed(o_.seed, 401, static_cast<uint64_t>(epoch)), cycle, /*shuffle=*/true);
    order.insert(order.end(), p.begin(), p.end());
  }
  order.resize(need);
  if (world_ > 1) order = dist::shard_order(order, rank_, world_);
  order_ = std::move(order);
  if (weak_) skipped_before_ += weak_->skipped();
  weak_.reset();
  strong_.reset();
  if (features_.defined()) return;
  auto loader = [&](Augment a, uint64_t salt) {
    LoaderOptions lo;
    lo.batch_size = batch_;
    lo.order = order_;
    lo.augment = a;
    lo.seed = mix_seed(o_.seed, salt);
    lo.epoch = epoch;
    lo.workers = o_.workers;
    lo.strict = o_.strict;
    lo.start_batch = first_step;
    return lo;
  };
  weak_.emplace(set_, spec_, loader(fixmatch_ ? Augment::Light : augment_, 402));
  if (fixmatch_) strong_.emplace(set_, spec_, loader(Augment::Strong, 403));
}

std::optional<UnlabeledBatch> UnlabeledStream::next(int64_t s, const torch::Device& device) {
  UnlabeledBatch out;
  if (features_.defined()) {
    const int64_t b = s * batch_, e = std::min<int64_t>(static_cast<int64_t>(order_.size()), b + batch_);
    if (b >= e) return std::nullopt;
    torch::Tensor it =
        torch::tensor(std::vector<int64_t>(order_.begin() + b, order_.begin() + e), torch::kInt64);
    out.weak = features_.index_select(0, it).to(device);
    return out;
  }
  auto weak = weak_->next();
  std::optional<Batch> strong;
  if (strong_) strong = strong_->next();
  if (!weak) return std::nullopt;
  out.weak = weak->images.to(device);
  if (strong_) {
    // The same images fail to decode in both views, so the batches match.
    GRAFT_CHECK(strong && strong->positions == weak->positions, "--unlabeled '", o_.unlabeled,
                "': the weak and strong views of step ", s + 1, " hold different images");
    out.strong = strong->images.to(device);
  }
  return out;
}

int64_t UnlabeledStream::skipped() const { return skipped_before_ + (weak_ ? weak_->skipped() : 0); }

}  // namespace graft
