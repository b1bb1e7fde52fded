#include "graft/core/runtime.h"

#include <malloc.h>
#include <sched.h>

#include <csignal>
#include <cstdlib>
#include <thread>

#include <torch/torch.h>

#include "graft/core/error.h"

namespace graft {

int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

int set_threads(int n) {
  int threads = n > 0 ? n : available_cores();
  torch::set_num_threads(threads);
  return threads;
}

void seed_everything(uint64_t seed) {
  torch::manual_seed(seed);
  std::srand(static_cast<unsigned>(seed));
}

void tune_allocator() {
  // 1 GiB: activations of a batch are reused from the heap instead of being
  // mmap'd and page-faulted afresh by every operation.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

torch::Device parse_device(const std::string& name) {
  if (name == "auto" || name.empty())
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    GRAFT_CHECK_USAGE(torch::cuda::is_available(), "--device ", name,
                      ": this LibTorch has no CUDA device available (expected cpu or auto)");
    try {
      return torch::Device(name);
    } catch (const std::exception&) {
    }
  }
  throw UsageError(str_cat("--device: '", name, "' is not a device (expected auto, cpu, cuda or cuda:N)"));
}

namespace {
volatile std::sig_atomic_t g_stop = 0;

void on_stop_signal(int) {
  if (g_stop) std::_Exit(130);
  g_stop = 1;
}
}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

bool stop_requested() { return g_stop != 0; }
void request_stop() { g_stop = 1; }
void clear_stop_request() { g_stop = 0; }

uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b) {
  auto splitmix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  return splitmix(splitmix(splitmix(seed) ^ a) ^ (b * 0x632be59bd9b4e019ULL + 1));
}

}  // namespace graft
