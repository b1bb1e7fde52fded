#include "graft/face/face_train.h"

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/weights/safetensors.h"

namespace graft {

namespace fs = std::filesystem;

torch::Tensor FaceClassifier::scores(const torch::Tensor& e) const {
  const auto x = e.to(torch::kFloat32);
  if (head == "centroid") return -torch::cdist(x, weight);
  return x.matmul(weight.t()) + bias;
}

namespace {

double accuracy_of(const FaceClassifier& c, const torch::Tensor& e, const std::vector<int64_t>& labels) {
  if (labels.empty()) return 0;
  const auto pred = c.scores(e).argmax(1);
  int64_t right = 0;
  for (size_t i = 0; i < labels.size(); ++i) right += pred[static_cast<int64_t>(i)].item<int64_t>() == labels[i];
  return static_cast<double>(right) / static_cast<double>(labels.size());
}

}  // namespace

FaceTrainSummary train_face(const FaceTrainOptions& o) {
  GRAFT_CHECK_USAGE(o.head == "centroid" || o.head == "linear", "--head: \"", o.head,
                    "\" (the face task takes centroid or linear)");
  GRAFT_CHECK_USAGE(!o.out.empty(), "--out: a run directory is required");
  GRAFT_CHECK_USAGE(o.epochs >= 1, "--epochs: ", o.epochs, " (expected at least 1)");
  GRAFT_CHECK(o.overwrite || !fs::exists(o.out + "/face_model.json"), "--out: ", o.out,
              " already holds a face model (pass --overwrite to replace it)");
  FacePipeline pipeline(o.face);
  const FaceFolder train = embed_face_folder(pipeline, o.data);
  const int64_t classes = static_cast<int64_t>(train.identities.size());
  GRAFT_CHECK(classes >= 2, o.data, ": ", classes, " identity (expected at least 2)");
  GRAFT_CHECK(train.empty_identities.empty(), o.data, ": identity ", train.empty_identities.front(),
              " yielded no usable face (remove it or add images)");
  FaceClassifier c;
  c.head = o.head;
  c.classes = train.identities;
  const auto labels = torch::tensor(train.labels);
  if (o.head == "centroid") {
    auto sums = torch::zeros({classes, train.embeddings.size(1)});
    sums.index_add_(0, labels, train.embeddings);
    c.weight = sums / sums.norm(2, 1, true).clamp_min(1e-12);
  } else {
    torch::manual_seed(o.seed);
    auto linear = torch::nn::Linear(train.embeddings.size(1), classes);
    torch::optim::SGD opt(linear->parameters(),
                          torch::optim::SGDOptions(o.lr).momentum(0.9).weight_decay(o.weight_decay));
    for (int64_t step = 0; step < o.epochs; ++step) {
      opt.zero_grad();
      // Embeddings have norm 1: a fixed scale of 16 lets softmax get confident.
      auto loss = torch::nn::functional::cross_entropy(linear(train.embeddings * 16.0f), labels);
      loss.backward();
      opt.step();
    }
    c.weight = (linear->weight.detach() * 16.0f).contiguous();
    c.bias = linear->bias.detach().clone();
  }
  FaceTrainSummary s;
  s.out = o.out;
  s.classes = c.classes;
  s.train_images = static_cast<int64_t>(train.paths.size());
  s.skipped = static_cast<int64_t>(train.skipped.size());
  s.train_accuracy = accuracy_of(c, train.embeddings, train.labels);
  make_dirs(o.out);
  nlohmann::ordered_json test_json;
  if (!o.test.empty()) {
    const FaceFolder test = embed_face_folder(pipeline, o.test);
    std::vector<int64_t> mapped;
    for (int64_t l : test.labels) {
      const auto& name = test.identities[static_cast<size_t>(l)];
      const auto it = std::find(c.classes.begin(), c.classes.end(), name);
      GRAFT_CHECK(it != c.classes.end(), o.test, ": identity ", name, " is not in the training data ", o.data);
      mapped.push_back(it - c.classes.begin());
    }
    s.has_test = true;
    s.test_images = static_cast<int64_t>(test.paths.size());
    s.skipped += static_cast<int64_t>(test.skipped.size());
    s.test_accuracy = accuracy_of(c, test.embeddings, mapped);
    test_json = {{"accuracy", s.test_accuracy}, {"images", s.test_images}, {"skipped", test.skipped.size()}};
    write_file_atomic(o.out + "/test_metrics.json", test_json.dump(2) + "\n");
  }
  TensorList tensors = {{"weight", c.weight}};
  if (c.bias.defined()) tensors.push_back({"bias", c.bias});
  save_safetensors(o.out + "/head.safetensors", tensors);
  nlohmann::ordered_json j;
  j["task"] = "face";
  j["head"] = c.head;
  j["classes"] = c.classes;
  j["embedder"] = kFaceEmbedderName;
  j["weights_sha256"] = pipeline.embedder_sha256();
  j["detect"] = o.face.detect;
  j["detector"] = o.face.detector;
  j["data"] = o.data;
  j["train_images"] = s.train_images;
  j["train_accuracy"] = s.train_accuracy;
  if (o.head == "linear") j["linear"] = {{"epochs", o.epochs}, {"lr", o.lr}, {"weight_decay", o.weight_decay}, {"seed", o.seed}};
  write_file_atomic(o.out + "/face_model.json", j.dump(2) + "\n");
  return s;
}

FaceClassifier load_face_classifier(const std::string& run) {
  const std::string path = run + "/face_model.json";
  GRAFT_CHECK(fs::exists(path), run, " is not a face run (no face_model.json; made by graft train --task face)");
  const auto j = nlohmann::json::parse(read_file(path), nullptr, false);
  GRAFT_CHECK(!j.is_discarded() && j.value("task", "") == "face", path, ": not a face model");
  FaceClassifier c;
  c.head = j.at("head").get<std::string>();
  c.classes = j.at("classes").get<std::vector<std::string>>();
  for (const auto& [name, t] : load_safetensors(run + "/head.safetensors").tensors) {
    if (name == "weight") c.weight = t;
    if (name == "bias") c.bias = t;
  }
  GRAFT_CHECK(c.weight.defined() && c.weight.size(0) == static_cast<int64_t>(c.classes.size()), run,
              "/head.safetensors: expected a weight of ", c.classes.size(), " rows");
  return c;
}

}  // namespace graft
