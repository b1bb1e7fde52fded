// A bounded, deterministic fuzz run of the libFuzzer targets in fuzz/ as part
// of the tests: every seed of fuzz/corpus/<target> (regression inputs
// included), then a fixed number of mutations of them (bit flips, interesting
// integers, truncation, erased/duplicated/inserted ranges, digit edits,
// splices). A target may only return or throw graft::Error; any other
// exception fails the test and writes the input to the test's output folder.
// The libFuzzer build itself (ASan, coverage-guided) is scripts/fuzz.sh.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "test_util.h"

#define GRAFT_FUZZ_ENTRY graft_fuzz_safetensors
#include "../../fuzz/safetensors_fuzz.cpp"
#undef GRAFT_FUZZ_ENTRY
#define GRAFT_FUZZ_ENTRY graft_fuzz_torch_checkpoint
#include "../../fuzz/torch_checkpoint_fuzz.cpp"
#undef GRAFT_FUZZ_ENTRY
#define GRAFT_FUZZ_ENTRY graft_fuzz_tfjs
#include "../../fuzz/tfjs_fuzz.cpp"
#undef GRAFT_FUZZ_ENTRY
#define GRAFT_FUZZ_ENTRY graft_fuzz_idx
#include "../../fuzz/idx_fuzz.cpp"
#undef GRAFT_FUZZ_ENTRY
#define GRAFT_FUZZ_ENTRY graft_fuzz_vocab
#include "../../fuzz/vocab_fuzz.cpp"
#undef GRAFT_FUZZ_ENTRY
#define GRAFT_FUZZ_ENTRY graft_fuzz_config
#include "../../fuzz/config_fuzz.cpp"
#undef GRAFT_FUZZ_ENTRY

namespace fs = std::filesystem;

namespace graft {
namespace {

using Entry = int (*)(const uint8_t*, size_t);
constexpr int kMutationsPerTarget = 50000;

std::vector<std::string> seeds(const std::string& target) {
  std::vector<std::string> out;
  fs::path dir = fs::path(GRAFT_SOURCE_DIR) / "fuzz" / "corpus" / target;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) out.push_back(read_file(f.string()));
  return out;
}

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  std::string mutate(std::string s, const std::vector<std::string>& pool) {
    int steps = 1 + static_cast<int>(below(4));
    for (int i = 0; i < steps; ++i) once(s, pool);
    return s;
  }

 private:
  uint64_t below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  void once(std::string& s, const std::vector<std::string>& pool) {
    static const int64_t kInteresting[] = {0, 1, -1, 127, 128, 255, 256, 65535, 65536,
                                           INT32_MAX, INT32_MIN, int64_t{1} << 32,
                                           int64_t{1} << 40, INT64_MAX, INT64_MIN};
    switch (below(10)) {
      case 0:  // flip a bit
        if (!s.empty()) s[below(s.size())] ^= static_cast<char>(1u << below(8));
        break;
      case 1:  // random byte
        if (!s.empty()) s[below(s.size())] = static_cast<char>(below(256));
        break;
      case 2: {  // interesting byte
        static const unsigned char b[] = {0, 1, 0x7f, 0x80, 0xff, '"', '[', '{', '-', '9'};
        if (!s.empty()) s[below(s.size())] = static_cast<char>(b[below(sizeof b)]);
        break;
      }
      case 3: {  // interesting 2/4/8-byte integer, little-endian
        size_t width = size_t{2} << below(3);
        if (s.size() < width) break;
        int64_t v = kInteresting[below(sizeof kInteresting / sizeof kInteresting[0])];
        size_t at = below(s.size() - width + 1);
        for (size_t k = 0; k < width; ++k) s[at + k] = static_cast<char>((v >> (8 * k)) & 0xff);
        break;
      }
      case 4:  // truncate
        s.resize(below(s.size() + 1));
        break;
      case 5: {  // erase a range
        if (s.empty()) break;
        size_t at = below(s.size());
        s.erase(at, 1 + below(std::min<size_t>(64, s.size() - at)));
        break;
      }
      case 6: {  // duplicate a range elsewhere
        if (s.empty() || s.size() > (1u << 20)) break;
        size_t at = below(s.size());
        std::string piece = s.substr(at, 1 + below(64));
        s.insert(below(s.size() + 1), piece);
        break;
      }
      case 7: {  // insert random bytes
        std::string piece(1 + below(16), '\0');
        for (char& c : piece) c = static_cast<char>(below(256));
        s.insert(below(s.size() + 1), piece);
        break;
      }
      case 8: {  // edit a decimal number (JSON shapes, offsets, sizes)
        std::vector<size_t> digits;
        for (size_t k = 0; k < s.size(); ++k)
          if (s[k] >= '0' && s[k] <= '9') digits.push_back(k);
        if (digits.empty()) break;
        size_t at = digits[below(digits.size())];
        static const char* kNumbers[] = {"0", "-1", "99999999999", "1e308", "2147483648",
                                         "18446744073709551616", "0.5", "-0"};
        if (below(2) == 0)
          s[at] = static_cast<char>('0' + below(10));
        else
          s.replace(at, 1, kNumbers[below(sizeof kNumbers / sizeof kNumbers[0])]);
        break;
      }
      default: {  // splice with another seed
        const std::string& other = pool[below(pool.size())];
        size_t cut = below(s.size() + 1);
        size_t from = below(other.size() + 1);
        s = s.substr(0, cut) + other.substr(from);
        break;
      }
    }
  }

  std::mt19937_64 rng_;
};

// Runs `entry` on `input`; on any exception but graft::Error (the targets
// catch those), keeps the input and fails.
void run_one(Entry entry, const std::string& target, const std::string& input, int index) {
  try {
    entry(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  } catch (const std::exception& e) {
    std::string keep = ::testing::TempDir() + "/" + target + "-finding-" + std::to_string(index);
    std::ofstream(keep, std::ios::binary) << input;
    ADD_FAILURE() << target << ": input " << index << " threw " << e.what()
                  << " (not graft::Error); kept as " << keep
                  << " — add it to fuzz/corpus/" << target << " once fixed";
  }
}

void fuzz_run(Entry entry, const std::string& target, uint64_t seed) {
  std::vector<std::string> pool = seeds(target);
  ASSERT_GE(pool.size(), 3u) << "seed corpus of " << target;
  for (size_t i = 0; i < pool.size(); ++i) run_one(entry, target, pool[i], static_cast<int>(i));
  Mutator mutator(seed);
  for (int i = 0; i < kMutationsPerTarget && !::testing::Test::HasFailure(); ++i)
    run_one(entry, target, mutator.mutate(pool[i % pool.size()], pool), i);
}

TEST(FuzzReplay, SafetensorsSeedsAndMutations) {
  fuzz_run(graft_fuzz_safetensors, "safetensors_fuzz", 1);
}

TEST(FuzzReplay, TorchCheckpointSeedsAndMutations) {
  fuzz_run(graft_fuzz_torch_checkpoint, "torch_checkpoint_fuzz", 2);
}

TEST(FuzzReplay, TfjsSeedsAndMutations) { fuzz_run(graft_fuzz_tfjs, "tfjs_fuzz", 3); }

TEST(FuzzReplay, IdxSeedsAndMutations) { fuzz_run(graft_fuzz_idx, "idx_fuzz", 4); }

TEST(FuzzReplay, VocabSeedsAndMutations) { fuzz_run(graft_fuzz_vocab, "vocab_fuzz", 5); }

TEST(FuzzReplay, ConfigAndSearchSpaceSeedsAndMutations) {
  fuzz_run(graft_fuzz_config, "config_fuzz", 6);
}

// The tfjs seeds are valid inputs: the corpus exercises the decoders, not
// only the error paths.
TEST(FuzzReplay, TfjsSeedsParse) {
  for (const std::string& input : seeds("tfjs_fuzz")) {
    size_t cut = input.find("\n#shard#\n");
    std::vector<std::string> shards;
    for (size_t at = cut; at != std::string::npos;) {
      size_t next = input.find("\n#shard#\n", at + 9);
      shards.push_back(input.substr(at + 9, next == std::string::npos ? next : next - at - 9));
      at = next;
    }
    size_t used = 0;
    TensorList t = parse_tfjs_weights(input.substr(0, cut), "seed/m.json",
                                      [&](const std::string&) { return shards.at(used++); });
    EXPECT_FALSE(t.empty());
    EXPECT_EQ(used, shards.size());
  }
}

}  // namespace
}  // namespace graft
