#pragma once
/// Process-wide runtime settings: threads, seeding, allocator, device.

#include <cstdint>
#include <string>

#include <torch/types.h>

namespace graft {

/// Number of cores this process may use (sched affinity, else hardware).
int available_cores();

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
