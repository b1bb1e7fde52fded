#include "graft/core/runtime.h"

#include <malloc.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <cstdlib>
#include <thread>

#include <torch/torch.h>

#include "graft/core/error.h"

namespace graft {

namespace {

std::string read_small_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return f ? ss.str() : std::string();
}

// The CPUs allowed by one group's files, 0 for none: cgroup v2's cpu.max
// ("max 100000" or "150000 100000"), v1's quota and period (-1: none).
double group_quota(const std::filesystem::path& dir, bool v2) {
  double quota = -1, period = 0;
  if (v2) {
    std::istringstream in(read_small_file((dir / "cpu.max").string()));
    std::string q;
    if (!(in >> q >> period) || q == "max") return 0;
    quota = std::atof(q.c_str());
  } else {
    quota = std::atof(read_small_file((dir / "cpu.cfs_quota_us").string()).c_str());
    period = std::atof(read_small_file((dir / "cpu.cfs_period_us").string()).c_str());
  }
  return quota > 0 && period > 0 ? quota / period : 0;
}

// The smallest quota of `dir` and its ancestors up to `top`.
double smallest_quota(std::filesystem::path dir, const std::filesystem::path& top, bool v2) {
  double best = 0;
  for (;;) {
    const double q = group_quota(dir, v2);
    if (q > 0 && (best == 0 || q < best)) best = q;
    if (dir == top || !dir.has_relative_path() || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  return best;
}

}  // namespace

double cgroup_cpu_quota(const std::string& proc_self_cgroup, const std::string& cgroup_root) {
  namespace fs = std::filesystem;
  std::istringstream lines(proc_self_cgroup);
  double v1 = 0, v2 = 0;
  for (std::string line; std::getline(lines, line);) {
    // ID:CONTROLLERS:PATH
    const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    const fs::path rel = fs::path(path).relative_path();
    if (controllers.empty()) {
      // v2's unified hierarchy: mounted at the root, or at root/unified
      // beside v1's controllers.
      for (const fs::path& top : {fs::path(cgroup_root), fs::path(cgroup_root) / "unified"})
        if (fs::exists(top / "cgroup.controllers")) v2 = smallest_quota(top / rel, top, true);
      continue;
    }
    std::istringstream names(controllers);
    bool cpu = false;
    for (std::string n; std::getline(names, n, ',');) cpu = cpu || n == "cpu";
    if (!cpu) continue;
    for (const std::string& mount : {controllers, std::string("cpu"), std::string("cpu,cpuacct")}) {
      const fs::path top = fs::path(cgroup_root) / mount;
      if (fs::exists(top / "cpu.cfs_quota_us")) {
        v1 = smallest_quota(top / rel, top, false);
        break;
      }
    }
  }
  if (v1 > 0 && v2 > 0) return std::min(v1, v2);
  return v1 > 0 ? v1 : v2;
}

int available_cores() {
  int n = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  n = std::max(n, 1);
  static const double quota = cgroup_cpu_quota(read_small_file("/proc/self/cgroup"));
  if (quota > 0) n = std::min(n, std::max(1, static_cast<int>(std::ceil(quota - 1e-9))));
  return n;
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
