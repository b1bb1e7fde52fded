// A bounded, deterministic fuzz run of the libFuzzer targets in fuzz/ as part
// of the tests: every seed of fuzz/corpus/<target> (regression inputs
// included), then a fixed number of mutations of them (bit flips, interesting
// integers, truncation, erased/duplicated/inserted ranges, digit edits,
// splices). A target may only return or throw graft::Error; any other
// exception fails the test and writes the input to the test's output folder.
// The libFuzzer build itself (ASan, coverage-guided) is scripts/fuzz.sh.
// image_fuzz runs in graft_sanitize_replay only: OpenCV's pixel limit, which
// keeps a header claiming a huge image from being allocated, is read from the
// environment when OpenCV loads.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "graft/weights/safetensors.h"
#include "graft/weights/torch_checkpoint.h"
#include "test_util.h"
#include "../../fuzz/replay.h"

#include "../../fuzz/parser_targets.inc"
// Needs the whole library (train options, search spaces): replayed here only.
#define GRAFT_FUZZ_ENTRY graft_fuzz_config
#include "../../fuzz/config_fuzz.cpp"
#undef GRAFT_FUZZ_ENTRY
#define GRAFT_FUZZ_ENTRY graft_fuzz_json_files
#include "../../fuzz/json_files_fuzz.cpp"
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

void fuzz_run(Entry entry, const std::string& target, uint64_t seed,
              int mutations = kMutationsPerTarget) {
  std::vector<std::string> pool = seeds(target);
  ASSERT_GE(pool.size(), 3u) << "seed corpus of " << target;
  for (size_t i = 0; i < pool.size(); ++i) run_one(entry, target, pool[i], static_cast<int>(i));
  fuzz::Mutator mutator(seed);
  for (int i = 0; i < mutations && !::testing::Test::HasFailure(); ++i)
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

// Every JSON file graft reads (fewer mutations: each input is also written
// as one of the files and read back through the file system).
TEST(FuzzReplay, JsonFilesSeedsAndMutations) {
  fuzz_run(graft_fuzz_json_files, "json_files_fuzz", 8, 20000);
}

TEST(FuzzReplay, JsonSeedsAndMutations) { fuzz_run(graft_fuzz_json, "json_fuzz", 9); }

TEST(FuzzReplay, TextDataSeedsAndMutations) {
  fuzz_run(graft_fuzz_text_data, "text_data_fuzz", 7);
}

TEST(FuzzReplay, ZipSeedsAndMutations) { fuzz_run(graft_fuzz_zip, "zip_fuzz", 8); }

// Decodes only images whose header claims at most a megapixel.
TEST(FuzzReplay, ImageHeaderSeedsAndMutations) {
  fuzz_run(graft_fuzz_image_header, "image_header_fuzz", 9);
}

// The inputs that once made a parser allocate hundreds of megabytes or more
// (fuzz/make_memory_seeds.py; graft_sanitize_replay bounds their memory):
// each is now refused, for its own reason.
TEST(FuzzReplay, MemoryRegressionsAreRefusedForTheirReason) {
  const fs::path dir = fs::path(GRAFT_SOURCE_DIR) / "fuzz" / "corpus";
  auto error = [](auto&& parse) {
    try {
      parse();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string st = read_file((dir / "safetensors_fuzz/memory/overlap.safetensors").string());
  EXPECT_NE(error([&] { parse_safetensors(st, "overlap.safetensors"); })
                .find("tensor 't1' data_offsets [0, 124928] overlap tensor 't0'"),
            std::string::npos);
  const std::pair<const char*, const char*> torch_cases[] = {
      {"zip_overlap.pth", "zip entries 'archive/data/0' (bytes "},
      {"pickle_ordereddict.pth", "the pickle makes more than "},
      {"pickle_memo.pth", "the memo would hold 1026 entries for 1 values made"}};
  for (const auto& [file, reason] : torch_cases) {
    const std::string bytes = read_file((dir / "torch_checkpoint_fuzz/memory" / file).string());
    const std::string m = error([&] { parse_torch_checkpoint(bytes, file); });
    EXPECT_NE(m.find(reason), std::string::npos) << file << ": " << m;
  }
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
