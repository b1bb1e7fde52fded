// graft_sanitize_replay: the fuzz targets of the untrusted-input parsers,
// built with AddressSanitizer and UndefinedBehaviorSanitizer, run over their
// seed corpora and a fixed number of deterministic mutations (fuzz/replay.h).
// Any sanitizer report aborts with a non-zero exit; any exception other than
// graft::Error is a failure. Used by scripts/test.sh.
//   graft_sanitize_replay CORPUS_DIR [MUTATIONS_PER_TARGET]

#include <fcntl.h>
#include <unistd.h>

#include <sanitizer/common_interface_defs.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "replay.h"

#include "parser_targets.inc"

namespace fs = std::filesystem;

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
                 {"image_fuzz", graft_fuzz_image}};
  int failures = 0;
  uint64_t seed = 1;
  for (const auto& t : targets) {
    std::vector<std::string> pool;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(fs::path(argv[1]) / t.name))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      pool.push_back(ss.str());
    }
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
    graft::fuzz::Mutator mutator(seed++);
    long runs = 0;
    for (long i = -static_cast<long>(pool.size()); i < mutations; ++i, ++runs) {
      std::string input = i < 0 ? pool[static_cast<size_t>(i + static_cast<long>(pool.size()))]
                                 : mutator.mutate(pool[static_cast<size_t>(i) % pool.size()], pool);
      try {
        t.entry(reinterpret_cast<const uint8_t*>(input.data()), input.size());
      } catch (const std::exception& e) {
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
    std::printf("%s: %ld inputs under ASan+UBSan, no finding\n", t.name, runs);
  }
  return failures ? 1 : 0;
}
