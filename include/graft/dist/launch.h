#pragma once
/// Starting the workers of a data-parallel job, like torchrun: N local
/// processes of the same program, each with torchrun's environment (RANK,
/// LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), so a
/// worker cannot tell graft's launcher from torchrun, Slurm or Kubernetes.

#include <string>
#include <vector>

namespace graft::dist {

struct LaunchOptions {
  /// Worker processes on this machine.
  int nproc = 1;
  /// Machines, and which one this is (0: the one whose first worker is rank 0
  /// and hosts the rendezvous).
  int nnodes = 1;
  int node_rank = 0;
  /// "" takes MASTER_ADDR from the environment, else 127.0.0.1.
  std::string master_addr;
  /// 0 takes MASTER_PORT from the environment, else a free port when the job
  /// is on one machine, else 29500 (torchrun's default).
  int master_port = 0;
  double timeout_s = 300;
  double bucket_mb = 25;
  /// The program to start and its arguments (argv[1:]); "" is this program
  /// (/proc/self/exe).
  std::string program;
  std::vector<std::string> args;
  /// After the first worker fails, the others get this long to stop by
  /// themselves (they notice the lost peer and say so) before SIGTERM, and 3 s
  /// more before SIGKILL.
  double grace_s = 5;
};

/// Set in the environment of the processes that launch_workers starts, so
/// that they run as workers instead of launching again.
inline constexpr const char* kWorkerEnv = "GRAFT_DIST_WORKER";
/// True in a process started by launch_workers.
bool is_launched_worker();

/// A TCP port that was free a moment ago (bound to port 0 and released).
int free_port();

/// Starts the workers (each in its own process group, killed if this process
/// dies), forwards SIGINT/SIGTERM to them once, and waits. Returns 0 when all
/// succeed; otherwise the exit code of the first worker that failed (130 for
/// an interruption, 1 for a worker killed by a signal), after stopping the
/// others. Throws graft::UsageError on inconsistent options.
int launch_workers(const LaunchOptions& options);

}  // namespace graft::dist
