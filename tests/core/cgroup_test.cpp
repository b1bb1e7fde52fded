// The thread count honours the cgroup's CPU quota: cgroup_cpu_quota over
// fake cgroup trees (v1 and v2, with ancestors), then the graft binary in a
// real cgroup limited to 1 CPU (root only; cgroup v1's cpu controller, as
// these machines have it).

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "graft/core/runtime.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

void put(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text << "\n";
}

TEST(CgroupQuota, V1TheSmallestOfTheGroupAndItsAncestors) {
  test::TempDir dir;
  const fs::path root = dir.path();
  put(root / "cpu/cpu.cfs_quota_us", "-1");
  put(root / "cpu/cpu.cfs_period_us", "100000");
  put(root / "cpu/a/cpu.cfs_quota_us", "300000");
  put(root / "cpu/a/cpu.cfs_period_us", "100000");
  put(root / "cpu/a/b/cpu.cfs_quota_us", "150000");
  put(root / "cpu/a/b/cpu.cfs_period_us", "100000");
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota("4:memory:/x\n1:cpu:/a/b\n0::/\n", root), 1.5);
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota("1:cpu:/a\n", root), 3.0);
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota("1:cpu:/\n", root), 0.0);  // -1: no quota
  // The ancestor's limit holds when it is the smaller.
  put(root / "cpu/a/cpu.cfs_quota_us", "50000");
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota("1:cpu:/a/b\n", root), 0.5);
  // cpu and cpuacct mounted together.
  put(root / "cpu,cpuacct/k/cpu.cfs_quota_us", "200000");
  put(root / "cpu,cpuacct/k/cpu.cfs_period_us", "100000");
  put(root / "cpu,cpuacct/cpu.cfs_quota_us", "-1");
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota("2:cpuacct,cpu:/k\n", dir.path() + "/nothing"), 0.0);
  fs::remove_all(root / "cpu");
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota("2:cpu,cpuacct:/k\n", root), 2.0);
}

TEST(CgroupQuota, V2CpuMax) {
  test::TempDir dir;
  const fs::path root = dir.path();
  put(root / "cgroup.controllers", "cpu memory");
  put(root / "cpu.max", "max 100000");
  put(root / "pod/cpu.max", "250000 100000");
  put(root / "pod/app/cpu.max", "max 100000");
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota("0::/pod/app\n", root), 2.5);
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota("0::/\n", root), 0.0);
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota("", root), 0.0);
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota("garbage without colons\n", root), 0.0);
}

// graft in a cgroup limited to 1 CPU takes 1 thread by default (what
// --version reports is what set_threads(0) uses).
TEST(CgroupQuota, GraftInAOneCpuCgroupUsesOneThread) {
  const fs::path cpu = "/sys/fs/cgroup/cpu";
  if (geteuid() != 0 || !fs::exists(cpu / "cgroup.procs") || available_cores() < 2)
    GTEST_SKIP() << "needs root, cgroup v1's cpu controller at " << cpu << " and 2 cores";
  const fs::path group = cpu / ("graft_test_" + std::to_string(getpid()));
  std::error_code ec;
  fs::create_directory(group, ec);
  if (ec || !fs::exists(group / "cpu.cfs_quota_us")) GTEST_SKIP() << "cannot create a cgroup at " << group;
  std::ofstream(group / "cpu.cfs_period_us") << "100000\n";
  std::ofstream(group / "cpu.cfs_quota_us") << "100000\n";
  test::TempDir dir;
  const std::string out = dir / "version.txt";
  const std::string cmd = "sh -c 'echo $$ > " + (group / "cgroup.procs").string() + " && exec " GRAFT_BINARY
                          " --version' > " + out + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const std::string alone_cmd = std::string(GRAFT_BINARY) + " --version > " + out + ".alone 2>&1";
  const int rc_alone = std::system(alone_cmd.c_str());
  fs::remove(group, ec);
  ASSERT_EQ(rc, 0) << read_file(out);
  EXPECT_TRUE(test::contains(read_file(out), "threads 1 by default")) << read_file(out);
  ASSERT_EQ(rc_alone, 0);
  EXPECT_TRUE(test::contains(read_file(out + ".alone"), "threads " + std::to_string(available_cores())))
      << read_file(out + ".alone");
}

}  // namespace
}  // namespace graft
