#pragma once
/// How graft's OpenMP threads wait at the end of a parallel region, chosen
/// before LibTorch's OpenMP runtime (libgomp) starts.
///
/// libgomp's default makes a thread that reaches a barrier early spin for
/// about 300,000 iterations before it sleeps. That is best on an idle
/// machine, and bad on a shared one: while another process holds one of the
/// cores, the thread that was pre-empted holds up the barrier and its
/// partner burns the other core spinning (bench/RESULTS.md, "Graceful under
/// load": ResNet-18 kept 40-45% of its alone-throughput beside one busy
/// process with the default, 54-56% with passive waiting).
///
/// The `graft` program is a small launcher (src/cli/main.cpp) that links no
/// LibTorch: it calls apply_wait_policy(), then loads libgraft.so, so
/// libgomp reads the chosen environment when it starts. The rule
/// (choose_wait_policy):
///  - OMP_WAIT_POLICY or GOMP_SPINCOUNT already set: left alone (the user's);
///  - else, if another task was running on the machine in every one of a few
///    samples of /proc/stat's procs_running taken at start (a busy laptop, a
///    shared CI runner): OMP_WAIT_POLICY=PASSIVE (threads sleep at once);
///  - else libgomp's default (spinning), which is faster for small models on
///    an idle machine (passive cost ResNet-20 and BERT-mini inference 10-15%
///    there) and equal for ResNet-18.
/// The choice and its reason are kept in GRAFT_WAIT_POLICY for
/// `graft --version`. This file uses no LibTorch: the launcher is built from it.

#include <string>
#include <vector>

namespace graft {

struct WaitPolicyChoice {
  std::string policy;  ///< "PASSIVE" to set, or "" to leave the environment as it is
  std::string reason;  ///< one line for graft --version
};

/// The rule above. `omp_wait_policy` and `gomp_spincount` are the
/// environment's values (nullptr when unset); `procs_running` holds samples of
/// /proc/stat's procs_running, each counting this process itself.
WaitPolicyChoice choose_wait_policy(const char* omp_wait_policy, const char* gomp_spincount,
                                    const std::vector<int>& procs_running);

/// procs_running from the text of /proc/stat, or -1 when it has none.
int parse_procs_running(const std::string& proc_stat);

/// `samples` readings of /proc/stat's procs_running, `interval_ms` apart
/// (unreadable ones are left out).
std::vector<int> sample_procs_running(int samples, int interval_ms);

/// Chooses (from the environment and 5 samples 2 ms apart), sets
/// OMP_WAIT_POLICY when the choice says so, and records the reason in
/// GRAFT_WAIT_POLICY. Call it before libgomp is loaded; a process where it
/// is already loaded is not changed by it (and neither is the record of an
/// earlier call: a child of graft inherits both).
void apply_wait_policy();

/// What GRAFT_WAIT_POLICY says, or the environment's setting when graft's
/// launcher did not run (a program that links libgraft.so itself).
std::string wait_policy_report();

}  // namespace graft
