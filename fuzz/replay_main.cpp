// graft_sanitize_replay: the fuzz targets of the untrusted-input parsers,
// built with AddressSanitizer and UndefinedBehaviorSanitizer, run over their
// seed corpora and a fixed number of deterministic mutations (fuzz/replay.h).
// Any sanitizer report aborts with a non-zero exit; any exception other than
// graft::Error is a failure. Used by scripts/test.sh.
//   graft_sanitize_replay CORPUS_DIR [MUTATIONS_PER_TARGET]
//
// Bounded memory: the live heap of the process is counted through
// AddressSanitizer's malloc and free hooks, and an input under 1 MB that
// raises it more than 256 MB above where it stood before the input is a
// finding (kept, reported, exit 1), caught from inside the hook as the limit
// is crossed, before a runaway parser exhausts the machine. Besides the seeds,
// CORPUS_DIR/<target>/memory/ holds inputs that broke this property before
// (fuzz/make_memory_seeds.py writes them): each is run once, not mutated.

#include <fcntl.h>
#include <unistd.h>

#include <sanitizer/common_interface_defs.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "replay.h"

#include "parser_targets.inc"

namespace fs = std::filesystem;

// Not in GCC's sanitizer headers, but exported by its libasan.
extern "C" {
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*, size_t),
                                              void (*free_hook)(const volatile void*));
size_t __sanitizer_get_allocated_size(const volatile void* p);
}

namespace {

constexpr int64_t kMemoryLimit = int64_t{256} << 20;
constexpr size_t kBoundedInputSize = size_t{1} << 20;

std::atomic<int64_t> g_live{0};   // bytes allocated minus bytes freed since the input began
std::atomic<int64_t> g_peak{0};
std::atomic<bool> g_bounded{false};  // the current input is under kBoundedInputSize
// What the hook reports if the limit is crossed (set before each input).
const char* g_target = "";
const std::string* g_input = nullptr;
long g_index = 0;
int g_report_fd = 2;

void write_all(int fd, const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

// Runs inside the allocator: no allocation, no exceptions; plain syscalls.
[[noreturn]] void memory_finding(int64_t live) {
  char keep[256];
  std::snprintf(keep, sizeof keep, "%s-memory-finding-%ld", g_target, g_index);
  int fd = open(keep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    write_all(fd, g_input->data(), g_input->size());
    close(fd);
  }
  char msg[512];
  int n = std::snprintf(msg, sizeof msg,
                        "%s: input %ld (%zu bytes) raised the live heap by %lld bytes, over the "
                        "limit of %lld bytes for inputs under %zu bytes; kept as %s\n",
                        g_target, g_index, g_input->size(), static_cast<long long>(live),
                        static_cast<long long>(kMemoryLimit), kBoundedInputSize, keep);
  write_all(g_report_fd, msg, static_cast<size_t>(n));
  _exit(1);
}

void on_malloc(const volatile void*, size_t size) {
  const int64_t live = g_live.fetch_add(static_cast<int64_t>(size), std::memory_order_relaxed) +
                       static_cast<int64_t>(size);
  int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (live > peak && !g_peak.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
  if (live > kMemoryLimit && g_bounded.load(std::memory_order_relaxed)) {
    g_bounded.store(false);  // report once
    memory_finding(live);
  }
}

void on_free(const volatile void* p) {
  if (p != nullptr)
    g_live.fetch_sub(static_cast<int64_t>(__sanitizer_get_allocated_size(p)),
                     std::memory_order_relaxed);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: graft_sanitize_replay CORPUS_DIR [MUTATIONS_PER_TARGET]\n");
    return 2;
  }
  const long mutations = argc > 2 ? std::atol(argv[2]) : 20000;
  struct Target {
    const char* name;
    int (*entry)(const uint8_t*, size_t);
  } targets[] = {{"safetensors_fuzz", graft_fuzz_safetensors},
                 {"torch_checkpoint_fuzz", graft_fuzz_torch_checkpoint},
                 {"tfjs_fuzz", graft_fuzz_tfjs},
                 {"idx_fuzz", graft_fuzz_idx},
                 {"vocab_fuzz", graft_fuzz_vocab},
                 {"text_data_fuzz", graft_fuzz_text_data},
                 {"image_fuzz", graft_fuzz_image},
                 {"zip_fuzz", graft_fuzz_zip},
                 {"image_header_fuzz", graft_fuzz_image_header},
                 {"json_fuzz", graft_fuzz_json}};
  __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
  int failures = 0;
  uint64_t seed = 1;
  for (const auto& t : targets) {
    const auto started = std::chrono::steady_clock::now();
    auto read_dir = [](const fs::path& dir) {
      std::vector<std::string> out;
      std::vector<fs::path> files;
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        out.push_back(ss.str());
      }
      return out;
    };
    std::vector<std::string> pool = read_dir(fs::path(argv[1]) / t.name);
    const std::vector<std::string> memory = read_dir(fs::path(argv[1]) / t.name / "memory");
    if (pool.empty()) {
      std::fprintf(stderr, "%s: no seeds in %s\n", t.name, argv[1]);
      return 2;
    }
    // Decoders (libpng, libjpeg, OpenCV) print their complaints on stderr:
    // silenced during the run, restored for the findings.
    std::fflush(stderr);
    const int saved_stderr = dup(2);
    const int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 2);
    close(null_fd);
    // Sanitizer reports still go to the real stderr.
    __sanitizer_set_report_fd(reinterpret_cast<void*>(static_cast<intptr_t>(saved_stderr)));
    g_target = t.name;
    g_report_fd = saved_stderr;
    graft::fuzz::Mutator mutator(seed++);
    long runs = 0;
    int64_t peak = 0;
    // Inputs -M-P .. -P-1: the memory regressions; -P .. -1: the seeds;
    // 0 .. mutations-1: mutations of the seeds.
    const long first = -static_cast<long>(pool.size() + memory.size());
    for (long i = first; i < mutations; ++i, ++runs) {
      const long seed_index = i + static_cast<long>(pool.size());
      std::string input = seed_index < 0 ? memory[static_cast<size_t>(i - first)]
                          : i < 0        ? pool[static_cast<size_t>(seed_index)]
                                         : mutator.mutate(pool[static_cast<size_t>(i) % pool.size()], pool);
      g_input = &input;
      g_index = i;
      g_live.store(0);
      g_peak.store(0);
      g_bounded.store(input.size() < kBoundedInputSize);
      try {
        t.entry(reinterpret_cast<const uint8_t*>(input.data()), input.size());
        g_bounded.store(false);
        peak = std::max<int64_t>(peak, g_peak.load());
      } catch (const std::exception& e) {
        g_bounded.store(false);
        std::fflush(stderr);
        dup2(saved_stderr, 2);
        std::string keep = std::string(t.name) + "-finding-" + std::to_string(i);
        std::ofstream(keep, std::ios::binary) << input;
        std::fprintf(stderr, "%s: input %ld threw %s (not graft::Error); kept as %s\n", t.name, i,
                     e.what(), keep.c_str());
        ++failures;
        break;
      }
    }
    std::fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    if (failures) return 1;
    std::printf("%s: %ld inputs (%zu memory regressions) under ASan+UBSan, no finding; "
                "largest heap growth %.1f MB; %.1f s\n",
                t.name, runs, memory.size(), static_cast<double>(peak) / (1 << 20),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    std::fflush(stdout);
  }
  return failures ? 1 : 0;
}
