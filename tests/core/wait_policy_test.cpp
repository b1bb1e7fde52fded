// The OpenMP wait policy that the graft launcher chooses before libgomp
// starts (graft/core/wait_policy.h): the rule on given samples, the
// /proc/stat parser, and the graft binary beside a busy process, read back
// from libgomp itself (OMP_DISPLAY_ENV=verbose prints the spin count it started with: 300000 by
// default, 0 when passive; its OMP_WAIT_POLICY line says PASSIVE for unset too).

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "graft/core/wait_policy.h"
#include "test_util.h"

namespace graft {
namespace {

TEST(WaitPolicy, TheRule) {
  // The user's setting wins, whatever the machine does.
  WaitPolicyChoice c = choose_wait_policy("active", nullptr, {5, 5, 5});
  EXPECT_EQ(c.policy, "");
  EXPECT_EQ(c.reason, "OMP_WAIT_POLICY=active (from the environment)");
  c = choose_wait_policy(nullptr, "0", {5, 5});
  EXPECT_EQ(c.policy, "");
  EXPECT_EQ(c.reason, "GOMP_SPINCOUNT=0 (from the environment)");
  // Another task running in every sample (each counts graft itself).
  c = choose_wait_policy(nullptr, nullptr, {3, 2, 4, 2, 2});
  EXPECT_EQ(c.policy, "PASSIVE");
  EXPECT_EQ(c.reason, "passive: 1 other task was running at start");
  EXPECT_EQ(choose_wait_policy(nullptr, nullptr, {4, 3, 5}).reason, "passive: 2 other tasks were running at start");
  // A task seen in some samples only (a shell, a compiler starting) is not a competitor.
  c = choose_wait_policy(nullptr, nullptr, {2, 1, 3, 2, 2});
  EXPECT_EQ(c.policy, "");
  EXPECT_EQ(c.reason, "the OpenMP default (spin, then sleep): no other task was running at start");
  EXPECT_EQ(choose_wait_policy(nullptr, nullptr, {}).policy, "");
}

TEST(WaitPolicy, ProcStat) {
  EXPECT_EQ(parse_procs_running("cpu  1 2 3\nintr 5\nprocs_running 3\nprocs_blocked 0\n"), 3);
  EXPECT_EQ(parse_procs_running("cpu  1 2 3\n"), -1);
  EXPECT_EQ(parse_procs_running("procs_running x\n"), -1);
  const std::vector<int> s = sample_procs_running(3, 1);
  ASSERT_EQ(s.size(), 3u);  // /proc/stat is there on Linux
  for (int n : s) EXPECT_GE(n, 1);  // this test is running
}

// Runs `graft --version` with OMP_DISPLAY_ENV=verbose and returns stdout + stderr.
std::string version_with_omp_display(const std::vector<std::string>& env) {
  test::TempDir dir;
  const int pid = test::spawn_graft({"--version"}, dir / "out", dir / "err", env);
  EXPECT_EQ(test::wait_graft(pid, {}, 60), 0);
  std::ostringstream all;
  all << std::ifstream(dir / "out").rdbuf() << std::ifstream(dir / "err").rdbuf();
  return all.str();
}

// The variables the launcher reads, cleared for the child and put back after.
class ClearedPolicyEnv {
 public:
  ClearedPolicyEnv() {
    for (const char* k : kKeys) {
      const char* v = std::getenv(k);
      saved_.emplace_back(k, v ? std::optional<std::string>(v) : std::nullopt);
      unsetenv(k);
    }
  }
  ~ClearedPolicyEnv() {
    for (const auto& [k, v] : saved_)
      if (v) setenv(k.c_str(), v->c_str(), 1);
  }

 private:
  static constexpr const char* kKeys[] = {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "GRAFT_WAIT_POLICY"};
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST(WaitPolicy, TheLauncherSetsItBeforeLibgompStarts) {
  ClearedPolicyEnv cleared;
  // The user's setting reaches libgomp untouched.
  std::string text = version_with_omp_display({"OMP_DISPLAY_ENV=verbose", "OMP_WAIT_POLICY=active"});
  EXPECT_NE(text.find("OpenMP wait policy OMP_WAIT_POLICY=active (from the environment)"), std::string::npos) << text;
  EXPECT_NE(text.find("OMP_WAIT_POLICY = 'ACTIVE'"), std::string::npos) << text;
  text = version_with_omp_display({"OMP_DISPLAY_ENV=verbose", "GOMP_SPINCOUNT=1234"});
  EXPECT_NE(text.find("GOMP_SPINCOUNT = '1234'"), std::string::npos) << text;

  // Beside a busy process, libgomp starts passive. (Alone cannot be asserted
  // here: ctest may run other tests at the same time.)
  const pid_t busy = fork();
  ASSERT_GE(busy, 0);
  if (busy == 0) {
    alarm(60);  // never outlives a stuck test
    for (volatile unsigned long i = 0;; i = i + 1) {
    }
  }
  text = version_with_omp_display({"OMP_DISPLAY_ENV=verbose"});
  kill(busy, SIGKILL);
  waitpid(busy, nullptr, 0);
  EXPECT_NE(text.find("OpenMP wait policy passive: "), std::string::npos) << text;
  EXPECT_NE(text.find("GOMP_SPINCOUNT = '0'"), std::string::npos) << text;
}

}  // namespace
}  // namespace graft
