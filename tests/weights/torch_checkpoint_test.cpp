#include "graft/weights/torch_checkpoint.h"

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace graft {
namespace {

using namespace std::string_literals;

// An empty legacy storage key list, for objects without tensors.
const std::string kNoKeys = "\x80\x02]."s;

std::map<std::string, torch::Tensor> by_name(const TensorList& list) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, t] : list) out[name] = t;
  return out;
}

// Bit-exact: same names, dtypes, shapes and bytes.
void expect_same_as_map(const TensorList& got, const std::map<std::string, torch::Tensor>& want) {
  auto g = by_name(got);
  EXPECT_EQ(g.size(), got.size()) << "repeated names";
  ASSERT_EQ(g.size(), want.size());
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(g.count(name)) << name;
    const torch::Tensor& t = g[name];
    EXPECT_EQ(t.scalar_type(), w.scalar_type()) << name;
    EXPECT_EQ(t.sizes(), w.sizes()) << name;
    EXPECT_TRUE(torch::equal(t, w)) << name;
  }
}

std::string has(const std::string& message, const std::string& part) {
  return message.find(part) == std::string::npos ? "'" + part + "' not in: " + message : "";
}

TEST(TorchCheckpoint, ReadsTorchvisionResnet18AsPublished) {
  if (!test::have_fixture("tv_resnet18.pth")) GTEST_SKIP() << "fixtures not made";
  TensorList t = read_weights(test::fixture("tv_resnet18.pth"));
  expect_same_as_map(t, test::load_named(test::fixture("tv_resnet18.expected.safetensors")));
  EXPECT_EQ(t.front().first, "conv1.weight");  // pickle order is kept
}

void expect_dtypes_checkpoint(const std::string& file) {
  TensorList t = load_torch_checkpoint(test::fixture(file));
  expect_same_as_map(t, test::load_named(test::fixture("ckpt_dtypes.expected.safetensors")));
  auto g = by_name(t);
  // Views keep sharing their storage, offsets and strides.
  EXPECT_TRUE(g["row"].is_alias_of(g["base"]));
  EXPECT_TRUE(g["window"].is_alias_of(g["base"]));
  EXPECT_EQ(g["window"].storage_offset(), 8);
  EXPECT_EQ(g["window"].strides(), (std::vector<int64_t>{6, 1}));
  EXPECT_EQ(g["transposed"].strides(), (std::vector<int64_t>{1, 6}));
  EXPECT_EQ(g["scalar"].dim(), 0);
  EXPECT_EQ(g["empty"].numel(), 0);
}

TEST(TorchCheckpoint, ReadsEveryDtypeAndViewFromTheZipFormat) {
  if (!test::have_fixture("ckpt_dtypes.pth")) GTEST_SKIP() << "fixtures not made";
  expect_dtypes_checkpoint("ckpt_dtypes.pth");
}

TEST(TorchCheckpoint, ReadsEveryDtypeAndViewFromTheLegacyFormat) {
  if (!test::have_fixture("ckpt_dtypes_legacy.pth")) GTEST_SKIP() << "fixtures not made";
  expect_dtypes_checkpoint("ckpt_dtypes_legacy.pth");
}

TEST(TorchCheckpoint, UnwrapsNestedDictsAndReadWeightsStripsModulePrefix) {
  if (!test::have_fixture("ckpt_dataparallel.pth")) GTEST_SKIP() << "fixtures not made";
  EXPECT_EQ(load_torch_checkpoint(test::fixture("ckpt_dataparallel.pth")).front().first, "module.x");
  expect_same_as_map(read_weights(test::fixture("ckpt_dataparallel.pth")),
              test::load_named(test::fixture("ckpt_dataparallel.expected.safetensors")));
}

TEST(TorchCheckpoint, SharesOneCudaStorageBetweenTensors) {
  if (!test::have_fixture("hand_shared_cuda.pth")) GTEST_SKIP() << "fixtures not made";
  auto g = by_name(load_torch_checkpoint(test::fixture("hand_shared_cuda.pth")));
  EXPECT_TRUE(torch::equal(g["all"], torch::arange(4, torch::kFloat32)));
  EXPECT_TRUE(torch::equal(g["odd"], torch::tensor({1.0f, 3.0f})));
  EXPECT_TRUE(g["odd"].is_alias_of(g["all"]));
  EXPECT_TRUE(g["all"].device().is_cpu());
}

TEST(TorchCheckpoint, RejectsHostileFilesNamingFileAndReason) {
  if (!test::have_fixture("hostile_os_system.pth")) GTEST_SKIP() << "fixtures not made";
  const std::pair<const char*, const char*> cases[] = {
      {"hostile_os_system.pth", "uses class 'os.system', which a checkpoint may not (allowed: "},
      {"hostile_user_class.pth", "uses class '__main__.Evil'"},
      {"hostile_truncated.pth", "end-of-central-directory"},
      {"hostile_truncated_legacy.pth", "truncated"},
      {"hostile_no_data_pkl.pth", "data.pkl"},
      {"hostile_bad_view.pth", "outside its storage of 4 elements"},
      {"hostile_stride_mismatch.pth", "the size has 2 dimensions but the stride 1"},
      {"hostile_missing_storage.pth", "no entry 'archive/data/0'"},
      {"hostile_short_storage.pth", "has 12 bytes; expected 4 elements of 4 bytes"},
      {"hostile_complex_storage.pth", "uses class 'torch.ComplexFloatStorage'"},
  };
  for (const auto& [file, reason] : cases) {
    std::string path = test::fixture(file);
    std::string e = test::error_of([&] { read_weights(path); });
    EXPECT_EQ(has(e, path), "") << file;
    EXPECT_EQ(has(e, reason), "") << file;
  }
}

// A legacy-format file around a hand-written object pickle: the magic number,
// protocol 1001 and an empty sys_info, then `object`, then `rest`.
std::string legacy(const std::string& object, const std::string& rest = "") {
  return std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15) +
         std::string("\x80\x02M\xe9\x03.", 6) + std::string("\x80\x02}.", 4) + object + rest;
}

// {"b": bool tensor of `n` elements over storage "k"}; then the key list.
std::string bool_tensor_pickle(const std::string& numel_op,
                               const std::string& keys = "\x80\x02]X\x01\x00\x00\x00ka."s) {
  return std::string("\x80\x02}X\x01\x00\x00\x00" "b", 9) +
         "ctorch._utils\n_rebuild_tensor_v2\n((" + std::string("X\x07\x00\x00\x00storage", 12) +
         "ctorch\nBoolStorage\n" + std::string("X\x01\x00\x00\x00k", 6) +
         std::string("X\x03\x00\x00\x00" "cpu", 8) + numel_op + "NtQ" + std::string("K\x00", 2) +
         "K\x02\x85K\x01\x85\x89}tRs." + keys;
}

std::string u64le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

TEST(TorchCheckpoint, ReadsAHandWrittenLegacyFile) {
  TensorList t = parse_torch_checkpoint(
      legacy(bool_tensor_pickle("K\x02"), u64le(2) + std::string("\x01\x00", 2)), "mem");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_TRUE(torch::equal(t[0].second, torch::tensor({true, false})));
}

TEST(TorchCheckpoint, RejectsHostilePicklesWithoutCrashing) {
  auto err = [](const std::string& bytes) {
    return test::error_of([&] { parse_torch_checkpoint(bytes, "mem.pth"); });
  };
  EXPECT_EQ(has(err(legacy(bool_tensor_pickle("K\x02"), u64le(2) + "\x01\x02")), "other than 0 or 1"), "");
  EXPECT_EQ(has(err(legacy(bool_tensor_pickle("J\xff\xff\xff\x7f"))), "claims 2147483647 elements"), "");
  EXPECT_EQ(has(err(legacy(bool_tensor_pickle("K\x02"), u64le(3))), "has 3 elements"), "");
  EXPECT_EQ(has(err(legacy(bool_tensor_pickle("K\x02"), u64le(2))), "truncated"), "");
  EXPECT_EQ(has(err(legacy(bool_tensor_pickle("K\x02", kNoKeys))), "data is missing"), "");
  EXPECT_EQ(has(err(legacy("\x80\x02I1\n.")), "unknown pickle opcode 0x49"), "");
  EXPECT_EQ(has(err(legacy("\x80\x02\x8c\x08" "builtins\x8c\x04" "eval\x93.")),
                "uses class 'builtins.eval'"), "");
  EXPECT_EQ(has(err(legacy("\x80\x02" "c__builtin__\ngetattr\n.")), "'__builtin__.getattr'"), "");
  EXPECT_EQ(has(err(legacy("\x80\x02h\x05.")), "memo entry 5"), "");
  EXPECT_EQ(has(err(legacy("\x80\x02.")), "stack underflow"), "");
  EXPECT_EQ(has(err(legacy("\x80\x02X\xff\xff\xff\xff")), "truncated"), "");
  EXPECT_EQ(has(err(legacy("\x80\x02]a.")), "stack underflow"), "");
  EXPECT_EQ(has(err(legacy("\x80\x02K\x01K\x02K\x03s.")), "SETITEM on a int"), "");
  EXPECT_EQ(has(err(legacy("\x80\x02]N.", kNoKeys)), "holds a None"), "");
  EXPECT_EQ(has(err(legacy("\x80\x02}.", kNoKeys)), "holds no tensors"), "");
  EXPECT_EQ(has(err(std::string(200000, '(')), "not a torch.save file"), "");
  EXPECT_EQ(has(err(legacy("\x80\x02" + std::string(100000, '('))), "nested MARKs"), "");
  // A million nested 1-tuples: must neither overflow the stack on the way
  // in nor when the values are destroyed.
  EXPECT_EQ(has(err(legacy("\x80\x02N" + std::string(1000000, '\x85') + ".", kNoKeys)), "holds a tuple"), "");
  // A list that contains itself.
  EXPECT_EQ(has(err(legacy("\x80\x02]q\x00h\x00" "a."s, kNoKeys)), "holds a list"), "");
  std::string wrong_magic = legacy("\x80\x02}.");
  wrong_magic[5] = '\x00';
  EXPECT_EQ(has(err(wrong_magic), "magic number 0x1950a86a20f9469cfc6c"), "");
  EXPECT_EQ(has(err("PK\x03\x04 not really a zip archive at all"), "end-of-central-directory"), "");
}

TEST(TorchCheckpoint, ReadsThirdPartyLegacyFileLikeItsConvertedCopy) {
  std::string dir = test::shared_data("pretrained/resnet_cifar10_akamaster");
  if (dir.empty()) GTEST_SKIP() << "../shared/data is absent";
  TensorList legacy = read_weights(dir + "/resnet20-12fca82f.th");
  TensorList zip = read_weights(dir + "/converted/resnet20-12fca82f.state_dict.pt");
  EXPECT_EQ(legacy.front().first, "conv1.weight");
  expect_same_as_map(legacy, by_name(zip));
}

TEST(TorchCheckpoint, ReadsThirdPartyCudaZipFileLikeItsConvertedCopy) {
  std::string dir = test::shared_data("pretrained/lenet_mnist");
  if (dir.empty()) GTEST_SKIP() << "../shared/data is absent";
  TensorList cuda = read_weights(dir + "/lenet_mnist_model.pth");
  expect_same_as_map(cuda, by_name(read_weights(dir + "/converted/lenet_mnist_model.cpu.pt")));
  for (const auto& [name, t] : cuda) EXPECT_TRUE(t.device().is_cpu()) << name;
}

}  // namespace
}  // namespace graft
