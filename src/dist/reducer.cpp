#include "graft/dist/reducer.h"

#include <chrono>

#include "graft/core/error.h"

namespace graft::dist {

struct GradReducer::Bucket {
  torch::Tensor flat;
  std::vector<size_t> params;
  size_t pending = 0;
  bool launched = false;
  Work work;
};

GradReducer::GradReducer(std::shared_ptr<Group> group, std::vector<torch::Tensor> params,
                         bool overlap)
    : group_(std::move(group)), overlap_(overlap) {
  for (auto& p : params)
    if (p.requires_grad()) params_.push_back(p);
  const int64_t cap = std::max<int64_t>(
      1, static_cast<int64_t>(group_->config().bucket_mb * 1024 * 1024));
  bucket_of_.assign(params_.size(), 0);
  offset_of_.assign(params_.size(), 0);
  got_.assign(params_.size(), false);
  // Reverse order: the last layers' gradients come first in backward. A
  // bucket holds one dtype.
  int64_t used = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const auto& p = params_[k];
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    // A parameter larger than a bucket gets one of its own.
    bool fresh = buckets_.empty() || (used > 0 && used + bytes > cap) ||
                 buckets_.back()->flat.scalar_type() != p.scalar_type();
    if (fresh) {
      buckets_.push_back(std::make_unique<Bucket>());
      buckets_.back()->flat = torch::zeros({0}, p.options().requires_grad(false));
      used = 0;
    }
    Bucket& b = *buckets_.back();
    bucket_of_[k] = buckets_.size() - 1;
    offset_of_[k] = static_cast<size_t>(used / p.element_size());
    b.params.push_back(k);
    used += bytes;
    stats_.bytes += bytes;
  }
  for (auto& b : buckets_) {
    int64_t n = 0;
    for (size_t k : b->params) n += params_[k].numel();
    b->flat = torch::zeros({n}, params_[b->params[0]].options().requires_grad(false));
  }
  stats_.buckets = static_cast<int64_t>(buckets_.size());
  for (size_t k = 0; k < params_.size(); ++k)
    hooks_.push_back(params_[k].register_hook([this, k](torch::Tensor grad) { on_grad(k, grad); }));
}

GradReducer::~GradReducer() {
  for (size_t k = 0; k < hooks_.size(); ++k) params_[k].remove_hook(hooks_[k]);
  // Collectives still in flight (an exception unwound a step) finish on
  // Gloo's threads and write only into our buffers, so wait for them.
  for (auto& b : buckets_) {
    if (!b->launched) continue;
    try {
      b->work.wait();
    } catch (...) {
    }
  }
}

void GradReducer::prepare() {
  for (auto& b : buckets_) {
    b->pending = b->params.size();
    b->launched = false;
    b->work = Work();
  }
  std::fill(got_.begin(), got_.end(), false);
  next_launch_ = 0;
  armed_ = true;
}

void GradReducer::on_grad(size_t k, const torch::Tensor& grad) {
  if (!armed_ || got_[k]) return;
  got_[k] = true;
  Bucket& b = *buckets_[bucket_of_[k]];
  b.flat.narrow(0, static_cast<int64_t>(offset_of_[k]), grad.numel()).copy_(grad.reshape(-1));
  b.pending -= 1;
  if (overlap_) launch_ready();
}

void GradReducer::launch(Bucket& b) {
  b.launched = true;
  b.work = group_->all_reduce_async(b.flat, "all-reduce of gradients");
}

void GradReducer::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_]->pending == 0)
    launch(*buckets_[next_launch_++]);
}

void GradReducer::finish() {
  GRAFT_CHECK(armed_, "GradReducer::finish() without prepare()");
  armed_ = false;
  auto t0 = std::chrono::steady_clock::now();
  // Parameters without a gradient this step contribute zeros.
  for (size_t k = 0; k < params_.size(); ++k) {
    if (got_[k]) continue;
    Bucket& b = *buckets_[bucket_of_[k]];
    b.flat.narrow(0, static_cast<int64_t>(offset_of_[k]), params_[k].numel()).zero_();
    b.pending -= 1;
  }
  while (next_launch_ < buckets_.size()) launch(*buckets_[next_launch_++]);
  for (auto& b : buckets_) b->work.wait();
  const double inv = 1.0 / group_->size();
  for (auto& b : buckets_) {
    b->flat.mul_(inv);
    for (size_t k : b->params) {
      auto& p = params_[k];
      torch::Tensor avg =
          b->flat.narrow(0, static_cast<int64_t>(offset_of_[k]), p.numel()).view(p.sizes());
      if (p.grad().defined()) p.mutable_grad().copy_(avg);
      else p.mutable_grad() = avg.clone();
    }
  }
  stats_.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stats_.steps += 1;
}

void GradReducer::reduce_accumulated() {
  prepare();
  for (size_t k = 0; k < params_.size(); ++k)
    if (params_[k].grad().defined()) on_grad(k, params_[k].grad());
  finish();
}

void broadcast_module(Group& group, torch::nn::Module& module, bool buffers_only) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> ts;
  if (!buffers_only)
    for (auto& p : module.parameters()) ts.push_back(p);
  for (auto& b : module.buffers()) ts.push_back(b);
  if (ts.empty() || group.size() == 1) return;
  // Gloo broadcasts dense CPU tensors in place, byte for byte; parameters are
  // dense (contiguous or channels-last, the same layout on every rank).
  std::vector<torch::Tensor> views;
  for (auto& t : ts) {
    GRAFT_CHECK(t.is_non_overlapping_and_dense(), "broadcast_module: a tensor that is not dense");
    views.push_back(t);
  }
  group.broadcast(views, buffers_only ? "broadcast of buffers" : "broadcast of parameters");
}

}  // namespace graft::dist
