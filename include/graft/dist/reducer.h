#pragma once
/// The missing C++ DistributedDataParallel: gradients averaged over the ranks
/// of a Group with bucketed all-reduce that overlaps with the backward pass.
///
/// The trainable parameters are packed, in reverse order (roughly the order
/// in which backward produces their gradients), into buckets of about
/// WorldConfig::bucket_mb. A hook on every parameter copies its gradient
/// into its bucket's flat buffer; when a bucket is full it is all-reduced
/// asynchronously while backward goes on. Buckets are launched strictly in
/// index order (a bucket that is ready waits for the ones before it), so all
/// ranks issue the same collectives in the same order whatever the order of
/// the hooks. finish() waits for the rest and writes the average into every
/// parameter's .grad.
///
/// Contract: prepare() before backward, finish() after it and before the
/// optimiser step, on every rank, every step. A parameter that gets no
/// gradient on a rank in a step contributes zeros to the average.

#include <memory>
#include <vector>

#include <torch/torch.h>

#include "graft/dist/group.h"

namespace graft::dist {

struct ReducerStats {
  int64_t steps = 0;
  int64_t buckets = 0;
  int64_t bytes = 0;  // gradient bytes all-reduced per step
  /// Seconds spent in finish() waiting for communication that backward did
  /// not hide (the exposed communication time), summed over steps.
  double wait_seconds = 0;
};

class GradReducer {
 public:
  /// overlap = false launches every bucket in finish() instead of from the
  /// hooks: the communication time is then all exposed (benchmarks).
  GradReducer(std::shared_ptr<Group> group, std::vector<torch::Tensor> params,
              bool overlap = true);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  /// Arms the hooks for the next backward.
  void prepare();
  /// Completes the all-reduce and sets every parameter's .grad to the mean
  /// over ranks. Throws graft::Error if a peer failed.
  void finish();

  /// Instead of prepare() / backward / finish(): averages the gradients the
  /// parameters already hold (summed over several backward passes, as in
  /// gradient accumulation, with the hooks not armed) over the ranks and
  /// writes the mean back into .grad. Same buckets, no overlap.
  void reduce_accumulated();
  const ReducerStats& stats() const { return stats_; }

 private:
  struct Bucket;
  void on_grad(size_t param, const torch::Tensor& grad);
  void launch_ready();
  void launch(Bucket& b);

  std::shared_ptr<Group> group_;
  std::vector<torch::Tensor> params_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  std::vector<size_t> bucket_of_, offset_of_;
  std::vector<unsigned> hooks_;
  std::vector<bool> got_;
  size_t next_launch_ = 0;
  bool armed_ = false, overlap_ = true;
  ReducerStats stats_;
};

/// Copies rank 0's parameters and buffers into every rank's module (at the
/// start of training, as DistributedDataParallel does).
void broadcast_module(Group& group, torch::nn::Module& module, bool buffers_only = false);

}  // namespace graft::dist
