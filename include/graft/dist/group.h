#pragma once
/// A process group for data-parallel training: rendezvous through c10d's
/// TCPStore (rank 0 runs the server) and collectives through c10d's
/// ProcessGroupGloo, the engine PyTorch itself uses. Every failure of c10d or
/// Gloo (a peer that died, a timeout, a wrong address) is turned into a
/// graft::Error that names this rank, the operation and what to check.
///
/// Any task's trainer can use it: the image trainer does (train/trainer.cpp),
/// through GradReducer (reducer.h) and shard_order (sampler.h).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

namespace graft::dist {

/// Where one worker stands in the job and how it meets the others. The fields
/// are those of torchrun's environment (see from_environment).
struct WorldConfig {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  /// Seconds to wait for the rendezvous and for any one collective; a worker
  /// that hangs (rather than dies: that is noticed at once) is given up on
  /// after this long.
  double timeout_s = 300;
  /// Size of a gradient bucket (flattened, all-reduced as one) in MiB.
  double bucket_mb = 25;
  /// All-reduce buckets as backward fills them (false: all after backward,
  /// to measure the communication time alone; GRAFT_DIST_OVERLAP=0).
  bool overlap = true;
};

/// The WorldConfig that torchrun-style launchers describe in the environment:
/// WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT
/// (and graft's GRAFT_DIST_TIMEOUT, GRAFT_DIST_BUCKET_MB, GRAFT_DIST_OVERLAP). nullopt when
/// WORLD_SIZE is not set. Throws graft::UsageError naming the variable when a
/// value is malformed or out of range (RANK >= WORLD_SIZE, ...).
std::optional<WorldConfig> from_environment();

/// An asynchronous collective in flight.
class Work {
 public:
  Work() = default;
  /// Blocks until done; throws graft::Error (clear message) if it failed.
  void wait();
  bool valid() const { return impl_ != nullptr; }

 private:
  friend class Group;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

class Group {
 public:
  /// Rendezvous: rank 0 starts the TCPStore server on master_port and waits
  /// for world_size workers; the others connect to it. Then every rank checks
  /// that all agree on the world size and that no rank number is taken twice,
  /// and the Gloo group is built. Throws graft::Error naming the address, the
  /// port and the timeout when that fails (port in use, master unreachable,
  /// disagreeing world sizes).
  static std::shared_ptr<Group> connect(const WorldConfig& config);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const;
  int size() const;
  const WorldConfig& config() const;

  /// In-place sum over ranks, asynchronous (what the gradient reducer uses
  /// to overlap communication with the backward pass). `what` names the
  /// operation in errors.
  Work all_reduce_async(torch::Tensor& t, const std::string& what);
  /// In-place sum (or max) over ranks.
  void all_reduce(torch::Tensor& t, const std::string& what, bool max = false);
  /// True on every rank when `flag` is true on any rank.
  bool any(bool flag, const std::string& what);
  /// Copies rank `root`'s tensors into every rank's (same shapes everywhere).
  void broadcast(std::vector<torch::Tensor>& tensors, const std::string& what, int root = 0);
  /// The rows of every rank's `t` ([n_r, ...], n_r may differ between ranks,
  /// the other dimensions and the dtype may not), concatenated in rank order.
  torch::Tensor all_gather_rows(const torch::Tensor& t, const std::string& what);
  void barrier(const std::string& what);

  /// Key-value rendezvous store shared by the ranks (rank 0 hosts it).
  void store_set(const std::string& key, const std::string& value);
  /// Waits up to the timeout for the key; throws graft::Error naming it.
  std::string store_get(const std::string& key);

 private:
  Group();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace graft::dist
