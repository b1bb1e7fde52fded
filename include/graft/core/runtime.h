#pragma once
/// Process-wide runtime settings: threads, seeding, allocator, device.

#include <cstdint>
#include <string>

#include <torch/types.h>

namespace graft {

/// Number of cores this process may use: the CPUs of its affinity mask (else
/// the hardware's), at most its cgroup's CPU quota rounded up (a container
/// or systemd scope limited to 1.5 CPUs gets 2 threads, to 1 CPU 1 thread).
int available_cores();

/// The CPU quota of the cgroup that `proc_self_cgroup` (the text of
/// /proc/self/cgroup) names, under the cgroup file system mounted at
/// `cgroup_root`, in CPUs: the smallest of the group's and its ancestors'
/// limits (v2: cpu.max; v1: cpu.cfs_quota_us / cpu.cfs_period_us in the cpu
/// controller's hierarchy). 0 when there is none, or it cannot be read.
double cgroup_cpu_quota(const std::string& proc_self_cgroup, const std::string& cgroup_root = "/sys/fs/cgroup");

/// Sets LibTorch's intra-op thread count. n <= 0 means all cores: LibTorch 1.13
/// otherwise starts with half of them, assuming SMT. Returns the count set.
int set_threads(int n);

/// Seeds LibTorch's global generator (and the C library's) from `seed`.
void seed_everything(uint64_t seed);

/// Raises glibc's mmap and trim thresholds so that large activations are
/// reused instead of mmap'd and page-faulted on every operation (measured
/// 4-7x on ResNet inference here). Called once at start-up by the CLI.
void tune_allocator();

/// Parses "cpu", "cuda", "cuda:N" or "auto" (best available).
/// Throws graft::UsageError naming --device on anything else.
torch::Device parse_device(const std::string& name);

/// Deterministic 64-bit mix of a seed and stream numbers (splitmix64), used to
/// derive independent per-epoch and per-sample random streams, so that results
/// do not depend on thread scheduling or on where a run was resumed.
uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0);

/// Installs SIGINT and SIGTERM handlers that only record a stop request, so
/// that long work can finish its step and save its state. A second signal
/// while one is pending ends the process at once (exit 130).
void install_stop_handlers();
/// True once a stop was requested (by a signal or request_stop()).
bool stop_requested();
void request_stop();
void clear_stop_request();

}  // namespace graft
