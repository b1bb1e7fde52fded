// graft_tokenize_bench: WordPiece throughput, the graft side of
// bench/tokenize_bench.sh (which runs the node reference on the same text).
//
//   graft_tokenize_bench TEXT_FILE VOCAB [REPEATS]
//
// Tokenises every line of TEXT_FILE (UTF-8) REPEATS times, one call per line
// as a data loader does, and prints one JSON line: lines, bytes, tokens,
// seconds, tokens_per_second, megabytes_per_second.

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/text/wordpiece.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TEXT_FILE VOCAB [REPEATS]\n", argv[0]);
    return 2;
  }
  try {
    const std::string text = graft::read_file(argv[1]);
    const graft::WordPiece wp = graft::WordPiece::from_file(argv[2]);
    const int repeats = argc > 3 ? std::stoi(argv[3]) : 1;
    std::vector<std::string_view> lines;
    for (size_t pos = 0; pos <= text.size();) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) nl = text.size();
      lines.emplace_back(text.data() + pos, nl - pos);
      pos = nl + 1;
    }
    size_t tokens = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < repeats; ++r) {
      for (std::string_view line : lines) tokens += wp.ids(line).size();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double bytes = static_cast<double>(text.size()) * repeats;
    std::printf(
        "{\"impl\": \"graft\", \"lines\": %zu, \"bytes\": %.0f, \"tokens\": %zu, \"seconds\": %.4f, "
        "\"tokens_per_second\": %.0f, \"megabytes_per_second\": %.2f}\n",
        lines.size() * static_cast<size_t>(repeats), bytes, tokens, s, tokens / s, bytes / s / 1e6);
    return 0;
  } catch (const graft::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
