// graft export --format safetensors-hf, loaded by its libraries' own code:
// torchvision builds the image run's network and loads model.safetensors
// strictly, and its logits equal graft's within 1e-4; a BERT run's folder
// passes a pure-Python reader of the Hugging Face config and tensor names
// (tests/reference/hf_check.py, on Debian's python3-torch/torchvision).

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "graft/core/files.h"
#include "graft/models/fast.h"
#include "graft/models/saved_model.h"
#include "graft/text/text_model.h"
#include "graft/text/wordpiece.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

bool have_torchvision() {
  return std::system("/usr/bin/python3 -c 'import torch, torchvision' >/dev/null 2>&1") == 0;
}

/// Runs tests/reference/hf_check.py with `args` (folders, and input and
/// output files after image folders); its JSON lines, or none after a test
/// failure.
std::vector<nlohmann::json> hf_check(const std::string& args, const test::TempDir& dir) {
  const std::string cmd = "/usr/bin/python3 '" + std::string(GRAFT_SOURCE_DIR) + "/tests/reference/hf_check.py' " +
                          args + " >'" + dir / "hf.out" + "' 2>'" + dir / "hf.err" + "'";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd << "\n" << read_file(dir / "hf.err");
  std::vector<nlohmann::json> lines;
  if (rc != 0) return lines;
  std::istringstream in(read_file(dir / "hf.out"));
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

/// An image run of `backbone` (random weights and BatchNorm statistics)
/// exported under dir/NAME, with an input and graft's logits for it.
struct ExportedImageRun {
  std::string folder, input, output;
  torch::Tensor logits;
};

ExportedImageRun export_image_run(const std::string& backbone, int size, const test::TempDir& dir) {
  ModelInfo info;
  info.backbone = backbone;
  info.classes = {"a", "b", "c", "d"};
  info.input.size = size;
  info.input.resize = size;
  info.transform_input = backbone == "googlenet";
  torch::manual_seed(23);
  Backbone model = build_model(info);
  {
    torch::NoGradGuard no_grad;
    for (auto& m : model->modules())
      if (auto* bn = m->as<FoldableBatchNorm2d>()) {
        bn->running_mean.uniform_(-0.3, 0.3);
        bn->running_var.uniform_(0.5, 2.0);
      }
  }
  ExportedImageRun e{dir / ("hf-" + backbone), dir / (backbone + ".x.bin"), dir / (backbone + ".y.bin"), {}};
  save_model(dir / backbone, *model, info);
  auto r = test::graft_cli({"export", dir / backbone, "--format", "safetensors-hf", "--out", e.folder});
  EXPECT_EQ(r.code, 0) << r.err;
  if (r.code == 0) EXPECT_EQ(nlohmann::json::parse(r.out)["files"], nlohmann::json({"config.json", "model.safetensors"}));
  const torch::Tensor x = torch::randn({2, 3, size, size});
  test::write_bytes(e.input, std::string(static_cast<const char*>(x.data_ptr()), x.nbytes()));
  model->eval();
  torch::NoGradGuard no_grad;
  e.logits = model->forward(x);
  return e;
}

TEST(HfExport, TorchvisionLoadsImageRuns) {
  if (!have_torchvision()) GTEST_SKIP() << "python3-torch / python3-torchvision absent";
  test::TempDir dir;
  const std::vector<std::string> backbones = {"resnet18", "googlenet"};
  std::vector<ExportedImageRun> runs;
  std::string args;
  for (const auto& b : backbones) {
    runs.push_back(export_image_run(b, 64, dir));
    args += " '" + runs.back().folder + "' '" + runs.back().input + "' '" + runs.back().output + "'";
  }
  const auto lines = hf_check(args, dir);  // one python process for both
  ASSERT_EQ(lines.size(), backbones.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(lines[i]["architecture"], backbones[i]);
    const std::string y = read_file(runs[i].output);
    ASSERT_EQ(y.size(), static_cast<size_t>(runs[i].logits.nbytes()));
    torch::Tensor theirs = torch::empty_like(runs[i].logits);
    std::memcpy(theirs.data_ptr(), y.data(), y.size());
    EXPECT_LE(test::rel_error(theirs, runs[i].logits), 1e-4) << backbones[i];
  }
}

TEST(HfExport, BertRunIsATransformersFolder) {
  if (!have_torchvision()) GTEST_SKIP() << "python3-torch absent";
  test::TempDir dir;
  const std::string run = dir / "run";
  fs::create_directories(run);
  std::string vocab_text;
  for (const auto& t : test::bert_vocab({"good", "bad", "film"})) vocab_text += t + "\n";
  test::write_bytes(run + "/vocab.txt", vocab_text);
  TextModel m;
  m.info.architecture = "bert";
  m.info.backbone = "bert-tiny";
  m.info.classes = {"neg", "pos"};
  m.info.max_length = 24;
  m.info.bert.vocab_size = 8;
  m.info.bert.hidden_size = 16;
  m.info.bert.num_hidden_layers = 2;
  m.info.bert.num_attention_heads = 2;
  m.info.bert.intermediate_size = 32;
  m.info.bert.max_position_embeddings = 24;
  m.tokenizer = std::make_shared<WordPiece>(WordPiece::from_file(run + "/vocab.txt"));
  m.bert = BertClassifier(m.info.bert, 2, 0.1, "linear");
  save_text_model(run, m);
  auto r = test::graft_cli({"export", run, "--format", "safetensors-hf", "--out", dir / "hf"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["files"],
            nlohmann::json({"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"}));
  const auto lines = hf_check("'" + dir / "hf" + "'", dir);
  ASSERT_EQ(lines.size(), 1u);
  const nlohmann::json& j = lines[0];
  EXPECT_EQ(j["labels"], nlohmann::json(m.info.classes));
  EXPECT_EQ(j["do_lower_case"], true);
  EXPECT_EQ(read_file(dir / "hf/vocab.txt"), vocab_text);
}

TEST(HfExport, RunsTorchvisionCannotLoadAreRefused) {
  test::TempDir dir;
  for (const auto& [backbone, head] : std::vector<std::pair<std::string, std::string>>{
           {"resnet20", "linear"}, {"resnet18", "centroid"}}) {
    ModelInfo info;
    info.backbone = backbone;
    info.head = head;
    info.classes = {"a", "b"};
    Backbone model = build_model(info);
    const std::string run = dir / (backbone + head);
    save_model(run, *model, info);
    auto r = test::graft_cli({"export", run, "--format", "safetensors-hf", "--out", dir / ("hf" + backbone + head)});
    EXPECT_EQ(r.code, 1) << backbone << " " << head;
    EXPECT_TRUE(test::contains(r.err, backbone == "resnet20" ? "torchvision has no CIFAR ResNet"
                                                             : "has head 'centroid', which is not a torchvision module"))
        << r.err;
  }
}

}  // namespace
}  // namespace graft
