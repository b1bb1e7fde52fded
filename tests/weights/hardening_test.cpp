// Weight files that stand for far more memory than their size (zip entries
// or safetensors tensors sharing bytes, pickles growing their memo or their
// containers), overflowing shapes, and paths that are not regular files:
// each is refused with a graft::Error naming the file and the reason.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "graft/core/error.h"
#include "graft/weights/safetensors.h"
#include "graft/weights/state_dict.h"
#include "graft/weights/torch_checkpoint.h"
#include "test_util.h"

namespace graft {
namespace {

using namespace std::string_literals;

// The message of any exception f() throws; a non-graft one is marked so.
template <typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return "(not graft::Error) "s + e.what();
  }
  return "(no error)";
}

::testing::AssertionResult contains(const std::string& message, const std::string& part) {
  if (message.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' not in: " << message;
}

void put_le(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string unicode(const std::string& s) {
  std::string out = "X";
  put_le(out, s.size(), 4);
  return out + s;
}

std::string int32(int32_t v) {
  std::string out = "J";
  put_le(out, static_cast<uint32_t>(v), 4);
  return out;
}

// A protocol-2 state_dict pickle {name: 1-D float tensor on storage key}.
std::string state_dict_pickle(const std::vector<std::pair<std::string, std::string>>& name_key,
                              int32_t numel) {
  std::string p = "\x80\x02"
                  "ctorch._utils\n_rebuild_tensor_v2\nq\x01"
                  "ctorch\nFloatStorage\nq\x02"s +
                  unicode("storage") + "q\x03" + unicode("cpu") +
                  "q\x04"
                  "ccollections\nOrderedDict\nq\x05"
                  "00000}q\x00("s;
  for (const auto& [name, key] : name_key) {
    p += unicode(name) + "h\x01(" + "(h\x03h\x02" + unicode(key) + "h\x04" + int32(numel) + "tQ";
    p += "K\x00"s + int32(numel) + "\x85K\x01\x85\x89h\x05)RtR";
  }
  return p + "u.";
}

// A STORED zip of `files`; every name in `aliases` gets a central entry
// pointing at the local header of the last file.
std::string zip_archive(const std::vector<std::pair<std::string, std::string>>& files,
                        const std::vector<std::string>& aliases = {}) {
  std::string out, central;
  uint64_t count = 0, last_crc = 0, last_size = 0, last_offset = 0;
  auto central_entry = [&](const std::string& name, uint64_t crc, uint64_t size, uint64_t offset) {
    put_le(central, 0x02014b50, 4);
    put_le(central, 20, 2);
    put_le(central, 20, 2);
    put_le(central, 0, 8);  // flags, method, time, date
    put_le(central, crc, 4);
    put_le(central, size, 4);
    put_le(central, size, 4);
    put_le(central, name.size(), 2);
    put_le(central, 0, 8);  // extra, comment, disk, internal attributes
    put_le(central, 0, 4);  // external attributes
    put_le(central, offset, 4);
    central += name;
    ++count;
  };
  for (const auto& [name, data] : files) {
    uint64_t crc = crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
    uint64_t offset = out.size();
    put_le(out, 0x04034b50, 4);
    put_le(out, 20, 2);
    put_le(out, 0, 8);  // flags, method, time, date
    put_le(out, crc, 4);
    put_le(out, data.size(), 4);
    put_le(out, data.size(), 4);
    put_le(out, name.size(), 2);
    put_le(out, 0, 2);
    out += name + data;
    central_entry(name, crc, data.size(), offset);
    last_crc = crc;
    last_size = data.size();
    last_offset = offset;
  }
  for (const auto& name : aliases) central_entry(name, last_crc, last_size, last_offset);
  uint64_t cd_offset = out.size();
  out += central;
  put_le(out, 0x06054b50, 4);
  put_le(out, 0, 4);
  put_le(out, count, 2);
  put_le(out, count, 2);
  put_le(out, central.size(), 4);
  put_le(out, cd_offset, 4);
  put_le(out, 0, 2);
  return out;
}

std::string torch_zip(const std::string& pickle, std::vector<std::pair<std::string, std::string>> more = {},
                      const std::vector<std::string>& aliases = {}) {
  std::vector<std::pair<std::string, std::string>> files = {{"archive/data.pkl", pickle},
                                                            {"archive/byteorder", "little"}};
  for (auto& f : more) files.push_back(std::move(f));
  return zip_archive(files, aliases);
}

// --- item 4: zip entries sharing bytes -------------------------------------

TEST(ZipHardening, ReadsTheHandBuiltCheckpointWhenEntriesAreApart) {
  std::string block(64, '\0');
  float v = 1.5f;
  std::memcpy(&block[4], &v, 4);
  std::string block2(64, '\0');
  std::memcpy(&block2[8], &v, 4);
  TensorList t = parse_torch_checkpoint(
      torch_zip(state_dict_pickle({{"a", "0"}, {"b", "1"}}, 16),
                {{"archive/data/0", block}, {"archive/data/1", block2}}),
      "apart.pth");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].first, "a");
  EXPECT_EQ(t[0].second.sizes(), torch::IntArrayRef({16}));
  EXPECT_EQ(t[0].second[1].item<float>(), 1.5f);
  EXPECT_EQ(t[1].second[2].item<float>(), 1.5f);
}

TEST(ZipHardening, EntriesSharingBytesAreRefusedNamingFileAndEntries) {
  // 64 storages of 64 KiB, all one block: 4 MiB of tensors from 70 KB.
  constexpr int kEntries = 64;
  constexpr int32_t kNumel = 16 * 1024;
  std::vector<std::pair<std::string, std::string>> names;
  std::vector<std::string> aliases;
  for (int i = 0; i < kEntries; ++i) {
    names.emplace_back("w" + std::to_string(i), std::to_string(i));
    if (i > 0) aliases.push_back("archive/data/" + std::to_string(i));
  }
  std::string bytes = torch_zip(state_dict_pickle(names, kNumel),
                                {{"archive/data/0", std::string(kNumel * 4, '\0')}}, aliases);
  ASSERT_LT(bytes.size(), 80u * 1024);
  std::string m = message_of([&] { parse_torch_checkpoint(bytes, "shared.pth"); });
  EXPECT_TRUE(contains(m, "'shared.pth'"));
  EXPECT_TRUE(contains(m, "overlap"));
  EXPECT_TRUE(contains(m, "'archive/data/0'"));
  EXPECT_TRUE(contains(m, "'archive/data/1'"));
}

TEST(ZipHardening, AnEntryReachingIntoTheCentralDirectoryIsRefused) {
  std::string bytes = torch_zip(state_dict_pickle({{"a", "0"}}, 4), {{"archive/data/0", std::string(16, '\0')}});
  // The last entry's size, grown by 8 in its central header (the CRC is not
  // reached: the layout check comes first).
  size_t cd = bytes.rfind("archive/data/0");
  size_t size_at = cd - 46 + 20;
  bytes[size_at] = static_cast<char>(bytes[size_at] + 8);
  bytes[size_at + 4] = static_cast<char>(bytes[size_at + 4] + 8);
  std::string m = message_of([&] { parse_torch_checkpoint(bytes, "long.pth"); });
  EXPECT_TRUE(contains(m, "'long.pth'"));
  EXPECT_TRUE(contains(m, "'archive/data/0'"));
  EXPECT_TRUE(contains(m, "central directory"));
}

// --- item 5: safetensors overlaps, gaps, bools -----------------------------

std::string safetensors_with(const std::string& header_json, size_t data_bytes, char fill = 0) {
  std::string h = header_json;
  std::string out;
  put_le(out, h.size(), 8);
  return out + h + std::string(data_bytes, fill);
}

TEST(SafetensorsHardening, OverlappingOffsetsAreRefused) {
  std::string header = "{";
  for (int i = 0; i < 3; ++i)
    header += (i ? "," : "") + str_cat("\"t", i, "\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]}");
  header += "}";
  std::string m = message_of([&] { parse_safetensors(safetensors_with(header, 16), "shared.safetensors"); });
  EXPECT_TRUE(contains(m, "'shared.safetensors'"));
  EXPECT_TRUE(contains(m, "overlap"));
  EXPECT_TRUE(contains(m, "'t0'"));
  EXPECT_TRUE(contains(m, "'t1'"));
}

TEST(SafetensorsHardening, GapsAndUncoveredBytesAreRefused) {
  std::string gap =
      R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}})";
  std::string m = message_of([&] { parse_safetensors(safetensors_with(gap, 12), "gap.safetensors"); });
  EXPECT_TRUE(contains(m, "'gap.safetensors'"));
  EXPECT_TRUE(contains(m, "tensor 'b' data_offsets [8, 12] leave a gap after tensor 'a'"));

  std::string late = R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})";
  m = message_of([&] { parse_safetensors(safetensors_with(late, 8), "late.safetensors"); });
  EXPECT_TRUE(contains(m, "'late.safetensors'"));
  EXPECT_TRUE(contains(m, "gap after the start of the data"));

  std::string short_cover = R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})";
  m = message_of([&] { parse_safetensors(safetensors_with(short_cover, 8), "tail.safetensors"); });
  EXPECT_TRUE(contains(m, "'tail.safetensors'"));
  EXPECT_TRUE(contains(m, "cover 4 bytes of the data section, but it holds 8"));

  // Zero-sized tensors may share an offset, as Hugging Face's reader allows.
  std::string empty =
      R"({"e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"z":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}})";
  SafetensorsFile f = parse_safetensors(safetensors_with(empty, 4, 7), "empty.safetensors");
  ASSERT_EQ(f.tensors.size(), 3u);
  EXPECT_EQ(f.tensors[0].first, "a");
  EXPECT_EQ(f.tensors[0].second[3].item<uint8_t>(), 7);
  EXPECT_EQ(f.tensors[1].second.sizes(), torch::IntArrayRef({0, 3}));
}

TEST(SafetensorsHardening, BoolBytesOtherThanZeroOrOneAreRefused) {
  std::string header = R"({"mask":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}})";
  std::string bytes = safetensors_with(header, 4, 1);
  SafetensorsFile ok = parse_safetensors(bytes, "mask.safetensors");
  EXPECT_TRUE(ok.tensors[0].second.all().item<bool>());
  bytes[bytes.size() - 2] = 2;
  std::string m = message_of([&] { parse_safetensors(bytes, "mask.safetensors"); });
  EXPECT_TRUE(contains(m, "'mask.safetensors'"));
  EXPECT_TRUE(contains(m, "BOOL tensor 'mask' holds the byte 2 at element 2"));
}

TEST(SafetensorsHardening, OverflowingShapesNameFileAndTensor) {
  for (const char* shape : {"[0,9223372036854775808]", "[0,4611686018427387904]",
                            "[4294967296,4294967296]", "[0,18446744073709551615,2]"}) {
    std::string header = str_cat(R"({"huge":{"dtype":"F32","shape":)", shape, R"(,"data_offsets":[0,0]}})");
    std::string m = message_of([&] { parse_safetensors(safetensors_with(header, 0), "huge.safetensors"); });
    EXPECT_TRUE(contains(m, "'huge.safetensors': tensor 'huge' has shape [")) << shape;
    EXPECT_TRUE(contains(m, "overflows")) << shape;
  }
  // Large but representable with a zero dimension: an empty tensor.
  std::string header = R"({"wide":{"dtype":"U8","shape":[0,1099511627776],"data_offsets":[0,0]}})";
  SafetensorsFile f = parse_safetensors(safetensors_with(header, 0), "wide.safetensors");
  EXPECT_EQ(f.tensors[0].second.numel(), 0);
}

TEST(SafetensorsHardening, GraftWrittenFilesPassTheStricterChecks) {
  TensorList tensors = {{"scalar", torch::tensor(3.5)},
                        {"empty", torch::zeros({0, 4})},
                        {"mask", torch::tensor({true, false, true})},
                        {"half", torch::ones({3, 5}, torch::kFloat16)},
                        {"bytes", torch::arange(7, torch::kUInt8)},
                        {"long", torch::arange(5, torch::kInt64)}};
  SafetensorsFile f = parse_safetensors(safetensors_bytes(tensors, {{"k", "v"}}), "graft.safetensors");
  ASSERT_EQ(f.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(f.tensors[i].first, tensors[i].first);
    EXPECT_TRUE(torch::equal(f.tensors[i].second, tensors[i].second)) << tensors[i].first;
  }
}

// --- item 6: pickle memo and object growth ---------------------------------

TEST(PickleHardening, MemoGrowthIsCappedNamingFileAndLimit) {
  std::string pickle = "\x80\x02}"s + std::string(200000, '\x94') + ".";
  std::string m = message_of([&] { parse_torch_checkpoint(torch_zip(pickle), "memo.pth"); });
  EXPECT_TRUE(contains(m, "'memo.pth' (archive/data.pkl)"));
  EXPECT_TRUE(contains(m, "the memo would hold 1026 entries for 1 values made"));
}

TEST(PickleHardening, ObjectsAreBoundedByThePickleSize) {
  // OrderedDict([pair] * 1000) called 1000 times: 6 bytes of pickle per
  // 1000 dict entries.
  std::string p = "\x80\x02"
                  "ccollections\nOrderedDict\nq\x00"
                  "NN\x86q\x01]("s;
  for (int i = 0; i < 1000; ++i) p += "h\x01";
  p += "e\x85q\x02" "0";
  for (int i = 0; i < 1000; ++i) p += "h\x00h\x02R0"s;
  p += "}.";
  const size_t limit = 4 * p.size() + 65536;
  std::string m = message_of([&] { parse_torch_checkpoint(torch_zip(p), "objects.pth"); });
  EXPECT_TRUE(contains(m, "'objects.pth' (archive/data.pkl)"));
  EXPECT_TRUE(contains(m, str_cat("the pickle makes more than ", limit, " objects")));
  EXPECT_TRUE(contains(m, str_cat("4 per byte of its ", p.size(), " bytes plus 65536")));
}

// --- item 11b: paths that are not regular files ----------------------------

TEST(WeightFileHardening, CharacterDevicesAndFoldersAreRefusedBeforeReading) {
  std::string m = message_of([] { read_weights("/dev/zero"); });
  EXPECT_TRUE(contains(m, "'/dev/zero' is a character device, expected a regular file"));
  m = message_of([] { load_torch_checkpoint("/dev/null"); });
  EXPECT_TRUE(contains(m, "'/dev/null' is a character device"));
  test::TempDir dir;
  m = message_of([&] { load_safetensors(dir.path()); });
  EXPECT_TRUE(contains(m, "'" + dir.path() + "' is a folder"));
}

TEST(WeightFileHardening, AFifoIsRefusedWithoutWaitingForAWriter) {
  test::TempDir dir;
  const std::string fifo = dir / "weights.safetensors";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // A writer that sends a few bytes whenever a reader has the FIFO open, so
  // that a reader which does not refuse it gets an answer instead of hanging.
  auto old = signal(SIGPIPE, SIG_IGN);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    while (!done) {
      int fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) {
        (void)!::write(fd, "not weights", 11);
        close(fd);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::string m = message_of([&] { read_weights(fifo); });
  std::string m2 = message_of([&] { load_safetensors(fifo); });
  done = true;
  writer.join();
  signal(SIGPIPE, old);
  EXPECT_TRUE(contains(m, "'" + fifo + "' is a FIFO (named pipe), expected a regular file"));
  EXPECT_TRUE(contains(m2, "'" + fifo + "' is a FIFO (named pipe), expected a regular file"));
}

}  // namespace
}  // namespace graft
