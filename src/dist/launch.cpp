#include "graft/dist/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "graft/core/error.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"

extern char** environ;

namespace graft::dist {

bool is_launched_worker() {
  const char* v = std::getenv(kWorkerEnv);
  return v && *v;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  GRAFT_CHECK(fd >= 0, "cannot open a socket to find a free port: ", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  GRAFT_CHECK(ok, "cannot find a free TCP port: ", std::strerror(errno));
  return ntohs(a.sin_port);
}

namespace {

std::string describe(int status) {
  if (WIFEXITED(status)) return str_cat("exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return str_cat("was killed by signal ", WTERMSIG(status), " (",
                                          strsignal(WTERMSIG(status)), ")");
  return "stopped";
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Forks and execs worker `index`: `program` with `args` and exactly `env`.
pid_t start_worker(int index, const std::string& program, std::vector<std::string> args,
                   std::vector<std::string> env) {
  std::vector<char*> envp, argv;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string prog = program;
  argv.push_back(prog.data());
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  GRAFT_CHECK(pid >= 0, "cannot start worker ", index, ": fork failed: ", std::strerror(errno));
  if (pid == 0) {
    // Own process group: a Ctrl-C reaches the workers once, through us.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    ::execve(argv[0], argv.data(), envp.data());
    const char msg[] = "error: cannot start a graft worker (execve failed)\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
    ::_exit(127);
  }
  return pid;
}

}  // namespace

int launch_workers(const LaunchOptions& o) {
  GRAFT_CHECK_USAGE(o.nproc >= 1, "--nproc ", o.nproc, " (expected at least 1)");
  GRAFT_CHECK_USAGE(o.nnodes >= 1, "--nnodes ", o.nnodes, " (expected at least 1)");
  GRAFT_CHECK_USAGE(o.node_rank >= 0 && o.node_rank < o.nnodes, "--node-rank ", o.node_rank,
                    " (expected 0 to --nnodes - 1 = ", o.nnodes - 1, ")");
  GRAFT_CHECK_USAGE(o.timeout_s > 0, "--dist-timeout ", o.timeout_s, " (expected > 0)");
  std::string addr = o.master_addr;
  if (addr.empty()) {
    const char* e = std::getenv("MASTER_ADDR");
    addr = e && *e ? e : "127.0.0.1";
  }
  int port = o.master_port;
  if (port == 0) {
    const char* e = std::getenv("MASTER_PORT");
    if (e && *e) port = std::atoi(e);
    else port = o.nnodes == 1 ? free_port() : 29500;
  }
  GRAFT_CHECK_USAGE(port >= 1 && port <= 65535, "--master-port ", port, " (expected 1 to 65535)");
  const std::string program = o.program.empty() ? "/proc/self/exe" : o.program;
  const int world = o.nnodes * o.nproc;

  // The environment of each worker: ours without the variables we set.
  const char* ours[] = {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                        "MASTER_ADDR", "MASTER_PORT", "GRAFT_DIST_TIMEOUT",
                        "GRAFT_DIST_BUCKET_MB", kWorkerEnv};
  std::vector<std::string> base;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    bool skip = false;
    for (const char* k : ours) skip = skip || kv.rfind(std::string(k) + "=", 0) == 0;
    if (!skip) base.push_back(kv);
  }
  std::vector<pid_t> pids(o.nproc, -1);
  std::vector<int> status(o.nproc, 0);
  std::vector<bool> done(o.nproc, false);
  for (int i = 0; i < o.nproc; ++i) {
    std::vector<std::string> env = base;
    env.push_back(str_cat("RANK=", o.node_rank * o.nproc + i));
    env.push_back(str_cat("LOCAL_RANK=", i));
    env.push_back(str_cat("WORLD_SIZE=", world));
    env.push_back(str_cat("LOCAL_WORLD_SIZE=", o.nproc));
    env.push_back(str_cat("GROUP_RANK=", o.node_rank));
    env.push_back(str_cat("MASTER_ADDR=", addr));
    env.push_back(str_cat("MASTER_PORT=", port));
    env.push_back(str_cat("GRAFT_DIST_TIMEOUT=", o.timeout_s));
    env.push_back(str_cat("GRAFT_DIST_BUCKET_MB=", o.bucket_mb));
    env.push_back(str_cat(kWorkerEnv, "=1"));
    pids[i] = start_worker(i, program, o.args, env);
  }

  int alive = o.nproc, failed = -1;
  bool forwarded = false, termed = false, killed = false;
  auto failed_at = std::chrono::steady_clock::now();
  while (alive > 0) {
    for (int i = 0; i < o.nproc; ++i) {
      if (done[i]) continue;
      int st = 0;
      pid_t r = ::waitpid(pids[i], &st, WNOHANG);
      if (r == 0 || (r < 0 && errno == EINTR)) continue;
      done[i] = true;
      status[i] = st;
      --alive;
      // 130: interrupted or paused (--stop-after-epoch), checkpointed: not a failure.
      bool ok = WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 130);
      if (!ok && failed < 0) {
        failed = i;
        failed_at = std::chrono::steady_clock::now();
        if (alive > 0)
          log_warn(str_cat("worker rank ", o.node_rank * o.nproc + i, " (pid ", pids[i], ") ",
                           describe(st), "; stopping the other workers"));
      }
    }
    if (alive == 0) break;
    if (stop_requested() && !forwarded) {
      forwarded = true;
      for (int i = 0; i < o.nproc; ++i)
        if (!done[i]) ::kill(pids[i], SIGINT);
    }
    if (failed >= 0 && !termed && seconds_since(failed_at) > o.grace_s) {
      termed = true;
      for (int i = 0; i < o.nproc; ++i)
        if (!done[i]) ::kill(pids[i], SIGTERM);
    }
    if (failed >= 0 && !killed && seconds_since(failed_at) > o.grace_s + 3) {
      killed = true;
      for (int i = 0; i < o.nproc; ++i)
        if (!done[i]) ::kill(pids[i], SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (failed < 0) {
    for (int st : status)
      if (WEXITSTATUS(st) == 130) return 130;
    return 0;
  }
  const int st = status[failed];
  log_warn(str_cat("worker rank ", o.node_rank * o.nproc + failed, " ", describe(st), "; the job failed"));
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

}  // namespace graft::dist
