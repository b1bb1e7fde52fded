// graft's ONNX export checked against a real runtime: onnxruntime-node 1.20.1
// (scripts/onnx_reference.sh, run by tests/reference/onnx_run.js) runs the
// exported graph on the inputs graft's own forward sees; logits and
// probabilities agree within 1e-4, and the ONNX checker passes. Backbones are
// random-initialised (with random BatchNorm statistics, so folding matters)
// at small input sizes; the akamaster ResNet-20 runs on CIFAR-10 JPEGs.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "graft/core/files.h"
#include "graft/data/image_set.h"
#include "graft/data/transforms.h"
#include "graft/export/onnx.h"
#include "graft/face/face_train.h"
#include "graft/face/nets.h"
#include "graft/face/pipeline.h"
#include "graft/models/fast.h"
#include "graft/models/head.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/text/text_model.h"
#include "graft/text/wordpiece.h"
#include "graft/weights/state_dict.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

std::string onnxruntime_modules() {
  if (const char* m = std::getenv("ONNXRUNTIME_NODE_MODULES")) return m;
  const char* cache = std::getenv("GRAFT_CACHE_DIR");
  const char* home = std::getenv("HOME");
  const std::string base = cache ? cache : std::string(home ? home : "") + "/.cache/graft";
  return base + "/onnxruntime-1.20.1/node_modules";
}

/// Why onnxruntime cannot run here ("" when it can).
std::string onnxruntime_missing() {
  if (std::system("command -v node >/dev/null 2>&1") != 0) return "node is not installed";
  if (!fs::exists(onnxruntime_modules() + "/onnxruntime-node/package.json"))
    return "onnxruntime-node is absent from " + onnxruntime_modules() + " (scripts/onnx_reference.sh)";
  return "";
}

#define SKIP_WITHOUT_ONNXRUNTIME()                              \
  do {                                                          \
    const std::string why = onnxruntime_missing();              \
    if (!why.empty()) GTEST_SKIP() << "onnxruntime: " << why;   \
  } while (0)

/// onnxruntime's outputs for `inputs` (float32 or int64 tensors by name).
std::map<std::string, torch::Tensor> run_onnxruntime(const std::string& model,
                                                     const std::vector<std::pair<std::string, torch::Tensor>>& inputs,
                                                     const test::TempDir& dir) {
  nlohmann::json spec;
  spec["inputs"] = nlohmann::json::array();
  for (const auto& [name, tensor] : inputs) {
    const bool ints = tensor.scalar_type() == torch::kInt64;
    const torch::Tensor x = ints ? tensor.contiguous() : tensor.to(torch::kFloat32).contiguous();
    const std::string file = dir / (name + ".bin");
    test::write_bytes(file, std::string(static_cast<const char*>(x.data_ptr()), x.nbytes()));
    spec["inputs"].push_back(
        {{"name", name}, {"type", ints ? "int64" : "float32"}, {"dims", x.sizes().vec()}, {"file", file}});
  }
  test::write_bytes(dir / "spec.json", spec.dump());
  const std::string cmd = "node '" + std::string(GRAFT_SOURCE_DIR) + "/tests/reference/onnx_run.js' '" + model +
                          "' '" + dir / "spec.json" + "' '" + dir / "ort" + "' 2>'" + dir / "ort.err" + "'";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd << "\n" << (fs::exists(dir / "ort.err") ? read_file(dir / "ort.err") : "");
  std::map<std::string, torch::Tensor> out;
  if (rc != 0) return out;
  const nlohmann::json meta = nlohmann::json::parse(read_file(dir / "ort/outputs.json"));
  const nlohmann::json outputs = meta["outputs"];
  for (const auto& [name, info] : outputs.items()) {
    const std::string bytes = read_file(dir / ("ort/" + name + ".bin"));
    std::vector<int64_t> dims = info["dims"].get<std::vector<int64_t>>();
    torch::Tensor t = torch::empty(dims, torch::kFloat32);
    EXPECT_EQ(static_cast<size_t>(t.nbytes()), bytes.size()) << name;
    if (static_cast<size_t>(t.nbytes()) == bytes.size()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
    out[name] = t;
  }
  return out;
}

std::map<std::string, torch::Tensor> run_onnxruntime(const std::string& model, const torch::Tensor& input,
                                                     const test::TempDir& dir) {
  return run_onnxruntime(model, {{"input", input}}, dir);
}

/// Random BatchNorm statistics and affine maps, so that folding them into the
/// convolutions is exercised (fresh ones are the identity).
void randomise_batch_norms(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (auto& m : model.modules()) {
    if (auto* bn = m->as<FoldableBatchNorm2d>()) {
      bn->running_mean.uniform_(-0.3, 0.3);
      bn->running_var.uniform_(0.5, 2.0);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.3, 0.3);
    }
  }
}

ModelInfo small_info(const std::string& backbone, int size, const std::string& head, int classes = 5) {
  ModelInfo info;
  info.backbone = backbone;
  info.head = head;
  for (int c = 0; c < classes; ++c) info.classes.push_back("class" + std::to_string(c));
  info.input.size = size;
  info.input.resize = size;
  info.transform_input = backbone == "googlenet";
  return info;
}

/// Exports `model`, runs it on `x` with onnxruntime and compares with graft's
/// forward (logits, and probabilities at temperature 1.7); the checker passes.
void expect_parity(BackboneImpl& model, const ModelInfo& info, const torch::Tensor& x) {
  test::TempDir dir;
  model.eval();
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = model.forward(x);
  }
  const double temperature = 1.7;
  const std::string path = dir / "model.onnx";
  write_onnx_file(image_model_onnx(model, info, temperature), path, false);
  const auto meta = read_onnx_metadata(path);  // runs onnx::checker::check_model
  EXPECT_EQ(meta.at("backbone"), info.backbone);
  EXPECT_EQ(nlohmann::json::parse(meta.at("classes")), nlohmann::json(info.classes));
  EXPECT_EQ(meta.at("input_size"), std::to_string(info.input.size));
  auto out = run_onnxruntime(path, x, dir);
  ASSERT_TRUE(out.count("logits") && out.count("probabilities"));
  ASSERT_EQ(out["logits"].sizes(), logits.sizes());
  EXPECT_LE(test::rel_error(out["logits"], logits), 1e-4) << info.backbone << " " << info.head;
  EXPECT_LE((out["probabilities"] - torch::softmax(logits / temperature, 1)).abs().max().item<double>(), 1e-4);
}

/// A random-initialised model of the registry row with `info`'s head.
Backbone random_model(const ModelInfo& info) {
  torch::manual_seed(7);
  Backbone model = build_model(info);
  randomise_batch_norms(*model);
  if (auto* c = as_centroid(*model->named_modules()[model->classifier_name()])) {
    torch::NoGradGuard no_grad;
    c->weight.normal_();
  }
  return model;
}

void expect_family_parity(const std::string& backbone, int size, const std::string& head, int batch = 2) {
  const ModelInfo info = small_info(backbone, size, head);
  Backbone model = random_model(info);
  torch::manual_seed(11);
  expect_parity(*model, info, torch::randn({batch, 3, size, size}));
}

TEST(OnnxExport, CifarResNetHeads) {
  SKIP_WITHOUT_ONNXRUNTIME();
  for (const char* head : {"linear", "mlp:16", "centroid"}) expect_family_parity("resnet20", 32, head, 3);
}

TEST(OnnxExport, ModelFoldedByGraft) {
  // A model whose BatchNorms graft already folded (as graft eval runs it)
  // exports the same function: the bypassed BatchNorms are not folded twice.
  SKIP_WITHOUT_ONNXRUNTIME();
  const ModelInfo info = small_info("resnet20", 32, "linear");
  Backbone model = random_model(info);
  model->eval();
  FoldedBatchNorm fold(*model, /*restore=*/false);
  ASSERT_GT(fold.folded(), 0u);
  torch::manual_seed(11);
  expect_parity(*model, info, torch::randn({2, 3, 32, 32}));
}

TEST(OnnxExport, TorchvisionResNets) {
  SKIP_WITHOUT_ONNXRUNTIME();
  expect_family_parity("resnet18", 64, "linear");
  expect_family_parity("resnet50", 32, "linear");
}

TEST(OnnxExport, GoogLeNet) {
  SKIP_WITHOUT_ONNXRUNTIME();
  // 40x40 takes GoogLeNet's ceil-mode pools through odd sizes (20, 10, 5, 2).
  expect_family_parity("googlenet", 40, "linear");
}

TEST(OnnxExport, EveryRegistryRow) {
  // Every row of the registry not covered above, at small inputs: AlexNet
  // and VGG then leave a 1x1 map that their adaptive pool spreads to 6x6 or
  // 7x7 (the general pooling map). Slow (their fully connected layers make
  // graphs of 0.2-0.5 GB, VGG-11-BN alone 17 s under load), so only on
  // request; bench/onnx.sh and the report say when it last ran.
  SKIP_WITHOUT_ONNXRUNTIME();
  if (!std::getenv("GRAFT_ONNX_ALL_FAMILIES")) GTEST_SKIP() << "set GRAFT_ONNX_ALL_FAMILIES=1 to run every row";
  for (const auto& row : backbone_registry()) {
    if (row.name == "resnet20" || row.name == "resnet18" || row.name == "resnet50" || row.name == "googlenet")
      continue;
    SCOPED_TRACE(row.name);
    expect_family_parity(row.name, row.input.size == 32 ? 32 : 64, "linear");
  }
}

TEST(OnnxExport, AkamasterResNet20OnCifar10Jpegs) {
  SKIP_WITHOUT_ONNXRUNTIME();
  const std::string weights = test::shared_data("pretrained/resnet_cifar10_akamaster/resnet20-12fca82f.th");
  const std::string data = test::shared_data("cifar10_test_jpg");
  if (weights.empty() || data.empty()) GTEST_SKIP() << "../shared/data is absent";
  ModelInfo info = small_info("resnet20", 32, "linear", 0);
  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(data))
    if (e.is_directory()) classes.push_back(e.path().filename().string());
  std::sort(classes.begin(), classes.end());
  info.classes = classes;
  info.input = find_backbone("resnet20").input;  // as graft eval --backbone resnet20 reads the images
  Backbone model = build_model(info);
  const LoadReport report = load_state_dict(*model, read_weights(weights));
  ASSERT_TRUE(report.clean()) << report.summary();
  std::vector<torch::Tensor> images;
  for (const auto& c : classes)
    for (int i = 0; i < 40; ++i) {
      char name[16];
      std::snprintf(name, sizeof name, "%04d.jpg", i);
      const std::string file = data + "/" + c + "/" + name;
      if (fs::exists(file)) images.push_back(eval_transform(load_image(file), info.input));
    }
  ASSERT_GE(images.size(), 300u);
  const torch::Tensor x = torch::stack(images);
  model->eval();
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = model->forward(x);
  }
  test::TempDir dir;
  write_onnx_file(image_model_onnx(*model, info, 1.0), dir / "resnet20.onnx", false);
  auto out = run_onnxruntime(dir / "resnet20.onnx", x, dir);
  ASSERT_TRUE(out.count("logits"));
  EXPECT_LE(test::rel_error(out["logits"], logits), 1e-4);
  EXPECT_TRUE(torch::equal(out["logits"].argmax(1), logits.argmax(1)));
  // A trained network: the images are mostly right.
  const std::vector<int64_t> labels = [&] {
    std::vector<int64_t> l;
    for (size_t c = 0; c < classes.size(); ++c)
      for (int i = 0; i < 40; ++i) l.push_back(static_cast<int64_t>(c));
    return l;
  }();
  if (images.size() == labels.size()) {
    const double accuracy =
        out["logits"].argmax(1).eq(torch::tensor(labels)).to(torch::kFloat64).mean().item<double>();
    EXPECT_GT(accuracy, 0.8);
  }
}

/// A small random BERT classifier with `head` and `act`.
TextModelInfo small_bert_info(const std::string& head, const std::string& act) {
  TextModelInfo info;
  info.architecture = "bert";
  info.backbone = "bert-tiny";
  info.head = head;
  info.classes = {"neg", "neu", "pos"};
  info.max_length = 16;
  BertConfig& c = info.bert;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 48;
  c.max_position_embeddings = 32;
  c.hidden_act = act;
  return info;
}

void expect_bert_parity(const std::string& head, const std::string& act) {
  const TextModelInfo info = small_bert_info(head, act);
  torch::manual_seed(3);
  BertClassifier model(info.bert, 3, 0.1, head);
  if (auto* c = as_centroid(*model->classifier.ptr())) {
    torch::NoGradGuard no_grad;
    c->weight.normal_();
  }
  {
    // LayerNorm affine maps away from 1 and 0, so that they matter.
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters())
      if (p.key().find("LayerNorm") != std::string::npos) p.value().uniform_(0.5, 1.5);
  }
  model->eval();
  TextBatch b;
  b.input_ids = torch::randint(0, 50, {3, 11}, torch::kInt64);
  b.token_type_ids = torch::zeros({3, 11}, torch::kInt64);
  b.token_type_ids.index_put_({1, torch::indexing::Slice(6, 11)}, 1);
  b.attention_mask = torch::ones({3, 11}, torch::kInt64);
  b.attention_mask.index_put_({2, torch::indexing::Slice(7, 11)}, 0);  // a padded row
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = model->forward(b);
  }
  test::TempDir dir;
  write_onnx_file(bert_classifier_onnx(*model, info, 1.3), dir / "bert.onnx", false);
  EXPECT_EQ(read_onnx_metadata(dir / "bert.onnx").at("max_length"), "16");
  auto out = run_onnxruntime(
      dir / "bert.onnx",
      {{"input_ids", b.input_ids}, {"token_type_ids", b.token_type_ids}, {"attention_mask", b.attention_mask}}, dir);
  ASSERT_TRUE(out.count("logits") && out.count("probabilities"));
  EXPECT_LE(test::rel_error(out["logits"], logits), 1e-4) << head << " " << act;
  EXPECT_LE((out["probabilities"] - torch::softmax(logits / 1.3, 1)).abs().max().item<double>(), 1e-4);
}

TEST(OnnxExport, BertClassifier) {
  SKIP_WITHOUT_ONNXRUNTIME();
  expect_bert_parity("linear", "gelu");
  expect_bert_parity("centroid", "gelu_new");
  expect_bert_parity("mlp:8", "relu");
}

TEST(OnnxExport, BertRunCommandLine) {
  // A text run folder through graft export: the encoded texts give the
  // logits graft's TextModel gives, and the vocabulary is in the metadata.
  SKIP_WITHOUT_ONNXRUNTIME();
  test::TempDir dir;
  const std::string run = dir / "run";
  fs::create_directories(run);
  std::string vocab_text;
  for (const auto& t : test::bert_vocab({"good", "bad", "film", "plot", "great", "dull", "##s"})) vocab_text += t + "\n";
  test::write_bytes(run + "/vocab.txt", vocab_text);
  TextModel m;
  m.info = small_bert_info("linear", "gelu");
  m.info.bert.vocab_size = 12;
  m.tokenizer = std::make_shared<WordPiece>(WordPiece::from_file(run + "/vocab.txt"));
  torch::manual_seed(19);
  m.bert = BertClassifier(m.info.bert, 3, 0.1, "linear");
  m.bert->eval();
  save_text_model(run, m);
  auto r = test::graft_cli({"export", run, "--format", "onnx", "--out", dir / "text.onnx"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["task"], "text");
  const auto meta = read_onnx_metadata(dir / "text.onnx");
  EXPECT_EQ(meta.at("vocab"), vocab_text);
  EXPECT_EQ(meta.at("lower_case"), "true");
  const std::vector<EncodedText> texts = {m.encode("good films"), m.encode("dull plot , bad"), m.encode("great")};
  const torch::Tensor logits = m.logits(texts);
  std::vector<const EncodedText*> items;
  for (const auto& t : texts) items.push_back(&t);
  const TextBatch b = collate_texts(items, m.tokenizer->pad_id());
  auto out = run_onnxruntime(
      dir / "text.onnx",
      {{"input_ids", b.input_ids}, {"token_type_ids", b.token_type_ids}, {"attention_mask", b.attention_mask}}, dir);
  ASSERT_TRUE(out.count("logits"));
  EXPECT_LE(test::rel_error(out["logits"], logits), 1e-4);
}

TEST(OnnxExport, TfidfClassifier) {
  SKIP_WITHOUT_ONNXRUNTIME();
  const std::vector<std::vector<int64_t>> docs = {{5, 6, 7, 5}, {6, 7, 8}, {5, 9, 9, 9, 6}, {8, 7}, {5, 6}};
  TfidfOptions options;
  options.min_df = 1;
  const Tfidf tfidf = Tfidf::fit(docs, options);
  torch::manual_seed(5);
  TfidfClassifier model(tfidf.size(), 3);
  model->eval();
  const SparseRows rows = tfidf.transform(docs);
  std::vector<int64_t> all(docs.size());
  std::iota(all.begin(), all.end(), 0);
  auto [idx, offs, w] = rows.select(all);
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = model->forward(idx, offs, w);
  }
  // The dense TF-IDF vectors: the graph's input.
  torch::Tensor dense = torch::zeros({static_cast<int64_t>(docs.size()), tfidf.size()});
  for (int64_t r = 0; r < rows.rows(); ++r)
    for (int64_t k = rows.offsets[r]; k < rows.offsets[r + 1]; ++k) dense[r][rows.indices[k]] = rows.values[k];
  TextModelInfo info;
  info.architecture = "tfidf";
  info.backbone = "tfidf";
  info.classes = {"a", "b", "c"};
  test::TempDir dir;
  write_onnx_file(tfidf_classifier_onnx(*model, info, 1.0), dir / "tfidf.onnx", false);
  auto out = run_onnxruntime(dir / "tfidf.onnx", {{"tfidf", dense}}, dir);
  ASSERT_TRUE(out.count("logits"));
  EXPECT_LE(test::rel_error(out["logits"], logits), 1e-4);
}

/// face-api's recognition net with random weights under its TF.js names and
/// shapes (the layout nets.cpp reads).
FaceEmbedder random_face_embedder() {
  torch::manual_seed(13);
  TensorList w;
  auto conv = [&](const std::string& prefix, int64_t k, int64_t cin, int64_t cout) {
    w.push_back({prefix + "/conv/filters", torch::randn({k, k, cin, cout}) * std::sqrt(2.0 / (k * k * cin))});
    w.push_back({prefix + "/conv/bias", torch::randn({cout}) * 0.1});
    w.push_back({prefix + "/scale/weights", torch::rand({cout}) + 0.5});
    w.push_back({prefix + "/scale/biases", torch::randn({cout}) * 0.1});
  };
  auto residual = [&](const std::string& prefix, int64_t cin, int64_t cout) {
    conv(prefix + "/conv1", 3, cin, cout);
    conv(prefix + "/conv2", 3, cout, cout);
  };
  conv("conv32_down", 7, 3, 32);
  for (const char* n : {"conv32_1", "conv32_2", "conv32_3"}) residual(n, 32, 32);
  residual("conv64_down", 32, 64);
  for (const char* n : {"conv64_1", "conv64_2", "conv64_3"}) residual(n, 64, 64);
  residual("conv128_down", 64, 128);
  for (const char* n : {"conv128_1", "conv128_2"}) residual(n, 128, 128);
  residual("conv256_down", 128, 256);
  for (const char* n : {"conv256_1", "conv256_2"}) residual(n, 256, 256);
  residual("conv256_down_out", 256, 256);
  w.push_back({"fc", torch::randn({256, 128}) * 0.06});
  return FaceEmbedder(w, "random");
}

TEST(OnnxExport, FaceEmbedderAndHeads) {
  SKIP_WITHOUT_ONNXRUNTIME();
  FaceEmbedder net = random_face_embedder();
  net->eval();
  torch::manual_seed(17);
  const torch::Tensor x = torch::rand({2, 3, 150, 150}) * 255;
  torch::Tensor e;
  {
    torch::NoGradGuard no_grad;
    e = net->forward(x);
  }
  const torch::Tensor unit = e / e.norm(2, 1, true).clamp_min(1e-12);
  for (const char* head : {"centroid", "linear"}) {
    FaceClassifier c;
    c.head = head;
    c.classes = {"ann", "bob", "cid", "dee"};
    c.weight = torch::nn::functional::normalize(torch::randn({4, 128}),
                                                torch::nn::functional::NormalizeFuncOptions().dim(1));
    if (c.head == "linear") c.bias = torch::randn({4});
    test::TempDir dir;
    write_onnx_file(face_embedder_onnx(*net, &c), dir / "face.onnx", false);
    EXPECT_EQ(read_onnx_metadata(dir / "face.onnx").at("head"), head);
    auto out = run_onnxruntime(dir / "face.onnx", x, dir);
    ASSERT_TRUE(out.count("embeddings") && out.count("scores"));
    EXPECT_LE(test::rel_error(out["embeddings"], e), 1e-4);
    EXPECT_LE(test::rel_error(out["scores"], c.scores(unit)), 1e-4) << head;
  }
}

TEST(OnnxExport, FaceRunCommandLine) {
  // A face run (face-api's embedder, a centroid head on 3 AT&T people)
  // through graft export: onnxruntime's scores on the aligned chips are the
  // run's (FaceClassifier::scores of the pipeline's normalised embeddings).
  SKIP_WITHOUT_ONNXRUNTIME();
  const std::string why = test::face_data_missing();
  if (!why.empty()) GTEST_SKIP() << why;
  test::TempDir dir;
  test::copy_att_faces(dir / "in", {1, 3}, {1, 3});
  auto t = test::graft_cli({"train", "--task", "face", "--no-detect", "--threads", "1", "--head", "centroid", "--data",
                            dir / "in", "--out", dir / "run"});
  ASSERT_EQ(t.code, 0) << t.err;
  auto r = test::graft_cli({"export", dir / "run", "--format", "onnx", "--out", dir / "face.onnx"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["task"], "face");
  const FaceClassifier c = load_face_classifier(dir / "run");
  EXPECT_EQ(read_onnx_metadata(dir / "face.onnx").at("classes"), nlohmann::json(c.classes).dump());
  FaceOptions options = face_run_options(dir / "run");
  FacePipeline pipeline(options);
  std::vector<cv::Mat> chips;
  std::vector<torch::Tensor> inputs;
  for (const auto& e : fs::recursive_directory_iterator(dir / "in")) {
    if (!e.is_regular_file()) continue;
    auto faces = pipeline.faces(pipeline.load(e.path().string()), e.path().string());
    ASSERT_FALSE(faces.empty()) << e.path();
    chips.push_back(faces[0].chip);
    inputs.push_back(face_net_input(faces[0].chip, 150));
  }
  const torch::Tensor scores = c.scores(pipeline.embed(chips));
  auto out = run_onnxruntime(dir / "face.onnx", torch::stack(inputs), dir);
  ASSERT_TRUE(out.count("scores"));
  EXPECT_LE(test::rel_error(out["scores"], scores), 1e-4);
  EXPECT_TRUE(torch::equal(out["scores"].argmax(1), scores.argmax(1)));
}

TEST(OnnxExport, NodesAndMetadata) {
  // No runtime needed: the graph's operators (BatchNorm folded away, option
  // A's shortcuts, the centroid head) and the metadata a deployer reads.
  const ModelInfo info = small_info("resnet20", 32, "centroid");
  Backbone model = random_model(info);
  test::TempDir dir;
  write_onnx_file(image_model_onnx(*model, info, 2.5, {{"run", "somewhere"}}), dir / "m.onnx", false);
  std::map<std::string, int> count;
  for (const auto& t : onnx_node_types(dir / "m.onnx")) ++count[t];
  EXPECT_EQ(count["Conv"], 19);  // 1 + 9 blocks x 2
  EXPECT_EQ(count["BatchNormalization"], 0);
  EXPECT_EQ(count["Add"], 9);
  EXPECT_EQ(count["Slice"], 2);  // the two blocks that halve the size
  EXPECT_EQ(count["Pad"], 2);
  EXPECT_EQ(count["GlobalAveragePool"], 1);
  EXPECT_EQ(count["ReduceL2"], 1);
  EXPECT_EQ(count["Softmax"], 1);
  const auto meta = read_onnx_metadata(dir / "m.onnx");
  EXPECT_EQ(meta.at("temperature"), "2.5");
  EXPECT_EQ(meta.at("run"), "somewhere");
  EXPECT_EQ(meta.at("head"), "centroid");
  EXPECT_EQ(meta.at("resize"), "32");
  EXPECT_EQ(meta.at("input_layout"), "NCHW float32");
  const nlohmann::json mean = nlohmann::json::parse(meta.at("mean"));
  ASSERT_EQ(mean.size(), 3u);
  EXPECT_NEAR(mean[0].get<double>(), info.input.mean[0], 1e-6);
  EXPECT_EQ(meta.at("graft_version"), GRAFT_VERSION);
}

TEST(OnnxExport, UnsupportedLayerIsNamed) {
  ModelInfo info = small_info("resnet20", 32, "linear");
  Backbone model = random_model(info);
  model->set_classifier(torch::nn::AnyModule(
      SequentialHead(torch::nn::Linear(64, 8), torch::nn::Tanh(), torch::nn::Linear(8, 5))));
  const std::string e = test::error_of([&] { image_model_onnx(*model, info, 1.0); });
  EXPECT_TRUE(test::contains(e, "layer 'linear.1' (torch::nn::TanhImpl) has no ONNX form")) << e;
}

TEST(OnnxExport, CommandLine) {
  test::TempDir dir;
  const ModelInfo info = small_info("resnet20", 32, "linear");
  Backbone model = random_model(info);
  save_model(dir / "run", *model, info);
  const std::string out = dir / "model.onnx";
  auto r = test::graft_cli({"export", dir / "run", "--format", "onnx", "--out", out});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json line = nlohmann::json::parse(r.out);
  EXPECT_EQ(line["task"], "image");
  EXPECT_EQ(line["bytes"].get<uint64_t>(), fs::file_size(out));
  EXPECT_EQ(read_onnx_metadata(out).at("classes"), nlohmann::json(info.classes).dump());

  auto again = test::graft_cli({"export", dir / "run", "--format", "onnx", "--out", out});
  EXPECT_EQ(again.code, 2);
  EXPECT_TRUE(test::contains(again.err, "--out: '" + out + "' exists (expected a new path; --overwrite replaces it)"))
      << again.err;
  auto over = test::graft_cli({"export", dir / "run", "--format", "onnx", "--out", out, "--overwrite"});
  EXPECT_EQ(over.code, 0) << over.err;

  auto format = test::graft_cli({"export", dir / "run", "--format", "tflite", "--out", dir / "x"});
  EXPECT_EQ(format.code, 2);
  EXPECT_TRUE(test::contains(format.err, "--format: 'tflite' (expected onnx or safetensors-hf)")) << format.err;
  EXPECT_FALSE(fs::exists(dir / "x"));

  auto no_run = test::graft_cli({"export", dir / "nothing", "--format", "onnx", "--out", dir / "y"});
  EXPECT_NE(no_run.code, 0);
  EXPECT_TRUE(test::contains(no_run.err, dir / "nothing")) << no_run.err;

  // A run from a newer graft.
  nlohmann::json j = nlohmann::json::parse(read_file(dir / "run/model.json"));
  j["graft_version"] = "99.0.0";
  write_file_atomic(dir / "run/model.json", j.dump());
  auto newer = test::graft_cli({"export", dir / "run", "--format", "onnx", "--out", dir / "z"});
  EXPECT_EQ(newer.code, 1);
  EXPECT_TRUE(test::contains(newer.err, "was written by graft 99.0.0, newer than this graft")) << newer.err;
  EXPECT_FALSE(fs::exists(dir / "z"));
}

}  // namespace
}  // namespace graft
