// The OpenMP wait policy chosen before libgomp starts (graft/core/wait_policy.h).
// No LibTorch here: the graft launcher is compiled from this file.

#include "graft/core/wait_policy.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

namespace graft {

WaitPolicyChoice choose_wait_policy(const char* omp_wait_policy, const char* gomp_spincount,
                                    const std::vector<int>& procs_running) {
  if (omp_wait_policy != nullptr) return {"", std::string("OMP_WAIT_POLICY=") + omp_wait_policy + " (from the environment)"};
  if (gomp_spincount != nullptr) return {"", std::string("GOMP_SPINCOUNT=") + gomp_spincount + " (from the environment)"};
  if (procs_running.empty()) return {"", "the OpenMP default (spin, then sleep): /proc/stat was not readable"};
  int least = procs_running.front();
  for (int n : procs_running) least = n < least ? n : least;
  const int others = least - 1;  // every sample counts this process
  if (others >= 1)
    return {"PASSIVE", "passive: " + std::to_string(others) + " other task" + (others == 1 ? " was" : "s were") +
                           " running at start"};
  return {"", "the OpenMP default (spin, then sleep): no other task was running at start"};
}

int parse_procs_running(const std::string& proc_stat) {
  std::istringstream in(proc_stat);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("procs_running ", 0) != 0) continue;
    try {
      return std::stoi(line.substr(14));
    } catch (const std::exception&) {
      return -1;
    }
  }
  return -1;
}

std::vector<int> sample_procs_running(int samples, int interval_ms) {
  std::vector<int> out;
  for (int i = 0; i < samples; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    std::ifstream f("/proc/stat");
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const int n = parse_procs_running(text);
    if (n >= 1) out.push_back(n);
  }
  return out;
}

void apply_wait_policy() {
  if (std::getenv("GRAFT_WAIT_POLICY") != nullptr && std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  const WaitPolicyChoice c = choose_wait_policy(std::getenv("OMP_WAIT_POLICY"), std::getenv("GOMP_SPINCOUNT"),
                                                sample_procs_running(5, 2));
  if (!c.policy.empty()) setenv("OMP_WAIT_POLICY", c.policy.c_str(), 1);
  setenv("GRAFT_WAIT_POLICY", c.reason.c_str(), 1);
}

std::string wait_policy_report() {
  if (const char* r = std::getenv("GRAFT_WAIT_POLICY")) return r;
  const WaitPolicyChoice c = choose_wait_policy(std::getenv("OMP_WAIT_POLICY"), std::getenv("GOMP_SPINCOUNT"), {1});
  return c.reason.find("environment") != std::string::npos ? c.reason
                                                             : "the OpenMP default (graft's launcher did not run)";
}

}  // namespace graft
