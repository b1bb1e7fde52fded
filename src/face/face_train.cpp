#include "graft/face/face_train.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/dist/group.h"
#include "graft/eval/int8_run.h"
#include "graft/face/mobilefacenet.h"
#include "graft/report/run_data.h"
#include "graft/train/epoch_row.h"
#include "graft/weights/safetensors.h"

namespace graft {

namespace fs = std::filesystem;

// insightface's s = 64. A smaller s (30) was tried when fine-tuning on AT&T
// people s1-s10 and validating on s11-s20 (two seeds, bench/RESULTS.md's
// split keeps s21-s40 out of it): ArcFace held-out verification fell (95.3%
// vs 98.4% mean), CosFace stayed about the same (97.8% vs 97.5%), so the
// default stays 64.
const double kMarginScale = 64;

torch::Tensor FaceClassifier::scores(const torch::Tensor& e) const {
  const auto x = e.to(torch::kFloat32);
  if (head == "centroid") return -torch::cdist(x, weight);
  return x.matmul(weight.t()) + bias;
}

namespace {

/// The labels of `folder` as indices into `classes`; an identity that is not
/// a class is an error naming `dir` and `trained_on`.
std::vector<int64_t> labels_in_classes(const FaceFolder& folder, const std::vector<std::string>& classes,
                                       const std::string& dir, const std::string& trained_on) {
  std::vector<int64_t> mapped;
  for (int64_t l : folder.labels) {
    const auto& name = folder.identities[static_cast<size_t>(l)];
    const auto it = std::find(classes.begin(), classes.end(), name);
    GRAFT_CHECK(it != classes.end(), dir, ": identity ", name, " is not in the training data ", trained_on);
    mapped.push_back(it - classes.begin());
  }
  return mapped;
}

double accuracy_of(const FaceClassifier& c, const torch::Tensor& e, const std::vector<int64_t>& labels) {
  if (labels.empty()) return 0;
  const auto pred = c.scores(e).argmax(1);
  int64_t right = 0;
  for (size_t i = 0; i < labels.size(); ++i) right += pred[static_cast<int64_t>(i)].item<int64_t>() == labels[i];
  return static_cast<double>(right) / static_cast<double>(labels.size());
}

// A head made for another embedder's embeddings (a face_model.json edited
// or a head.safetensors copied from another run) is refused before scoring.
void check_head_fits(const FaceClassifier& c, const FacePipeline& pipeline, const std::string& run) {
  GRAFT_CHECK(c.weight.dim() == 2 && c.weight.size(1) == pipeline.embedding_dim(), run,
              "/head.safetensors: a head of ", c.weight.dim() == 2 ? c.weight.size(1) : -1,
              " inputs, but the run's embedder ", pipeline.embedder_name(), " gives ", pipeline.embedding_dim(),
              "-d embeddings (the run's files do not belong together; train again)");
}

std::string fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

FaceFinetuneOptions resolve_finetune_options(const TrainOptions& o) {
  const std::string& kind = o.finetune;
  GRAFT_CHECK_USAGE(kind == "none" || kind == "arcface" || kind == "cosface" || kind == "triplet",
                    "--finetune: \"", kind, "\" (expected none, arcface, cosface or triplet)");
  FaceFinetuneOptions f;
  if (kind == "none") {
    // A fine-tuning flag without --finetune would be silently ignored.
    const std::pair<const char*, bool> given[] = {
        {"--finetune-epochs", o.finetune_epochs >= 0}, {"--finetune-lr", o.finetune_lr >= 0},
        {"--margin", o.margin >= 0},  {"--scale", o.scale >= 0},
        {"--augment", !o.augment.empty()}};
    for (const auto& [flag, set] : given)
      GRAFT_CHECK_USAGE(!set, flag, ": applies to fine-tuning the embedder, but --finetune is none (expected "
                        "--finetune arcface, cosface or triplet with it)");
    return f;
  }
  f.loss = kind;
  f.seed = o.seed;
  if (o.finetune_epochs >= 0) f.epochs = o.finetune_epochs;
  GRAFT_CHECK_USAGE(f.epochs >= 1, "--finetune-epochs: ", f.epochs, " (expected at least 1)");
  if (o.finetune_lr >= 0) f.lr = o.finetune_lr;
  GRAFT_CHECK_USAGE(f.lr > 0 && std::isfinite(f.lr), "--finetune-lr: ", f.lr, " (expected a positive number)");
  f.batch_size = o.batch_size;
  GRAFT_CHECK_USAGE(f.batch_size >= 2, "--batch-size: ", f.batch_size, " (expected at least 2)");
  const std::string augment = o.augment.empty() ? "face" : o.augment;
  GRAFT_CHECK_USAGE(augment == "face" || augment == "none", "--augment: \"", augment,
                    "\" (the face task takes face or none)");
  f.augment = augment == "face";
  if (kind == "triplet") {
    GRAFT_CHECK_USAGE(o.scale < 0, "--scale: ", fmt(o.scale), " given with --finetune triplet (the scale s "
                      "belongs to arcface and cosface; triplet takes --margin only)");
    f.margin = o.margin >= 0 ? o.margin : kTripletMargin;
    GRAFT_CHECK_USAGE(f.margin > 0 && f.margin <= 2, "--margin: ", fmt(f.margin),
                      " (triplet: expected a distance in (0, 2] between unit vectors)");
    f.scale = 0;
    return f;
  }
  f.margin = o.margin >= 0 ? o.margin : (kind == "arcface" ? kArcFaceMargin : kCosFaceMargin);
  f.scale = o.scale >= 0 ? o.scale : kMarginScale;
  if (kind == "arcface")
    GRAFT_CHECK_USAGE(f.margin < M_PI / 2, "--margin: ", fmt(f.margin),
                      " (arcface: expected an angle in radians below pi/2)");
  else
    GRAFT_CHECK_USAGE(f.margin < 1, "--margin: ", fmt(f.margin), " (cosface: expected a cosine margin below 1)");
  GRAFT_CHECK_USAGE(f.scale > 0 && std::isfinite(f.scale), "--scale: ", fmt(f.scale), " (expected a positive number)");
  return f;
}


TrainOptions face_defaults(const std::string&) {
  TrainOptions o;
  o.task = "face";
  o.backbone = kFaceEmbedderName;
  o.head = "centroid";
  o.epochs = 200;
  o.lr = 0.5;
  o.weight_decay = 1e-4;
  o.val_split = 0;
  o.augment = "";  // the fine-tune's default (face), refused without --finetune
  return o;
}

void face_check(const TrainOptions& o) {
  GRAFT_CHECK_USAGE(!o.data.empty(), "--data: a folder with one sub-folder per identity is required");
  GRAFT_CHECK_USAGE(o.head == "centroid" || o.head == "linear", "--head: \"", o.head,
                    "\" (the face task takes centroid or linear",
                    o.head == "arcface" || o.head == "cosface" || o.head == "triplet"
                        ? str_cat("; ", o.head, " is a fine-tuning loss: --finetune ", o.head, ")")
                        : std::string(")"));
  resolve_finetune_options(o);
  check_one_of("--detector", o.detector, {"ssd", "haar"});
  check_one_of("--embedder", o.embedder, {"dlib", kMobileFaceNetOption});
  // MobileFaceNet is an interpreter of its TF.js graph with the weights as
  // constants: nothing of it can be trained (FaceFinetuneTask fine-tunes
  // face-api's net's last stage).
  GRAFT_CHECK_USAGE(o.embedder != kMobileFaceNetOption || o.finetune == "none", "--finetune: ", o.finetune,
                    " with --embedder ", o.embedder, " (MobileFaceNet runs as its TF.js graph with frozen "
                    "weights and cannot be fine-tuned; fine-tuning works with --embedder dlib, the default; with "
                    "mobilefacenet, train a centroid or linear head on its embeddings: --finetune none)");
  // The int8 network is built from the embedder's weights when the pipeline
  // is made; fine-tuning changes them afterwards.
  GRAFT_CHECK_USAGE(o.precision != "int8" || o.finetune == "none", "--precision int8 with --finetune ", o.finetune,
                    ": fine-tuning trains in fp32 or bf16 (int8 embeds the training faces of a frozen embedder; "
                    "expected --finetune none, or --precision fp32 or bf16)");
  GRAFT_CHECK_USAGE(o.min_face >= 1 && o.min_face <= 1 << 20, "--min-face: ", o.min_face,
                    " (expected a side of at least 1 pixel)");
}

bool face_owns_run(const std::string& run) { return fs::exists(run + "/face_model.json"); }

FaceOptions face_train_pipeline_options(const TrainOptions& o) {
  FaceOptions f = face_pipeline_options(o);
  set_face_embedder(f, o.embedder);
  return f;
}

FaceOptions face_pipeline_options(const TrainOptions& o) {
  FaceOptions f;
  f.models_dir = o.face_models;
  f.detect = o.detect;
  f.detector = o.detector;
  f.min_face = static_cast<int>(o.min_face);
  f.min_confidence = o.min_confidence;
  f.cascade = o.cascade;
  f.precision = o.precision;
  f.calibration = o.calibration;
  f.calibration_data = o.data;  // the training faces (the face verbs set their own folder)
  return f;
}

namespace {

// The run's training faces: every rank reads and embeds the whole folder
// (and keeps the chips to fine-tune on).
FaceFolder read_train_faces(FacePipeline& pipeline, const TrainOptions& o, std::vector<cv::Mat>* chips) {
  FaceFolder train = embed_face_folder(pipeline, o.data, chips);
  report_face_folder(train, o.data, pipeline.options());
  check_face_folder_usable(train, o.data, pipeline.options());
  const int64_t classes = static_cast<int64_t>(train.identities.size());
  GRAFT_CHECK(classes >= 2, o.data, ": ", classes, " identity (expected at least 2)");
  GRAFT_CHECK(train.empty_identities.empty(), "--data: ",
              empty_identity_reason(train, train.empty_identities.front(), o.data, pipeline.options()),
              " (remove it or add images)");
  return train;
}

// The identities' mean embeddings, re-normalised [classes, D].
torch::Tensor class_means(const FaceFolder& f) {
  const int64_t classes = static_cast<int64_t>(f.identities.size());
  auto sums = torch::zeros({classes, f.embeddings.size(1)});
  sums.index_add_(0, torch::tensor(f.labels), f.embeddings);
  return sums / sums.norm(2, 1, true).clamp_min(1e-12);
}

FaceClassifier fit_head(const TrainOptions& o, const FaceFolder& train) {
  FaceClassifier c;
  c.head = o.head;
  c.classes = train.identities;
  if (o.head == "centroid") {
    c.weight = class_means(train);
    return c;
  }
  const auto labels = torch::tensor(train.labels);
  torch::manual_seed(o.seed);
  auto linear = torch::nn::Linear(train.embeddings.size(1), static_cast<int64_t>(c.classes.size()));
  torch::optim::SGD opt(linear->parameters(),
                        torch::optim::SGDOptions(o.lr).momentum(0.9).weight_decay(o.weight_decay));
  // The head sees the embeddings centred on the training mean and scaled to
  // an RMS norm of 16 (softmax can get confident). Without the centring,
  // MobileFaceNet's embeddings, which all lie close to one common direction
  // (bench/RESULTS.md), left the head at chance. Folded back below, so the
  // head still scores the raw L2-normalised embedding: W k (e - m) + b.
  const torch::Tensor mean = train.embeddings.mean(0);
  const torch::Tensor centred = train.embeddings - mean;
  const double rms = centred.pow(2).sum(1).mean().sqrt().item<double>();
  const float k = static_cast<float>(16.0 / std::max(rms, 1e-12));
  const torch::Tensor inputs = centred * k;
  for (int64_t step = 0; step < o.epochs; ++step) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(linear(inputs), labels);
    loss.backward();
    opt.step();
  }
  c.weight = (linear->weight.detach() * k).contiguous();
  c.bias = (linear->bias.detach() - c.weight.matmul(mean)).contiguous();
  return c;
}

void write_face_config(const TrainOptions& o, const FaceFolder& train, int64_t loop_epochs) {
  nlohmann::ordered_json config;
  config["graft_version"] = GRAFT_VERSION;
  config["options"] = to_json(o);
  // The face task takes no --backbone: name the embedder under the head.
  config["options"]["backbone"] = o.embedder == kMobileFaceNetOption ? kMobileFaceNetName : kFaceEmbedderName;
  // The loop's epochs (the fine-tune's; options.epochs are the linear head's).
  config["loop_epochs"] = loop_epochs;
  config["classes"] = train.identities;
  config["counts"] = {{"train", train.paths.size()}, {"skipped", train.skipped.size()}};
  write_file_atomic(o.out + "/config.json", config.dump(2) + "\n");
}

// Evaluates the head on o.test and writes test_metrics.json (accuracy, and
// the counts and confusion matrix report.html reads).
void test_face_head(const TrainOptions& o, FacePipeline& pipeline, const FaceClassifier& c,
                    TrainSummary& summary, int64_t& skipped) {
  const FaceFolder test = embed_face_folder(pipeline, o.test);
  report_face_folder(test, o.test, pipeline.options());
  check_face_folder_usable(test, o.test, pipeline.options());
  const std::vector<int64_t> mapped = labels_in_classes(test, c.classes, o.test, o.data);
  const size_t n = c.classes.size();
  std::vector<std::vector<int64_t>> confusion(n, std::vector<int64_t>(n, 0));
  if (!mapped.empty()) {
    const auto pred = c.scores(test.embeddings).argmax(1);
    for (size_t i = 0; i < mapped.size(); ++i)
      confusion[static_cast<size_t>(mapped[i])][static_cast<size_t>(pred[static_cast<int64_t>(i)].item<int64_t>())] += 1;
  }
  summary.has_test = true;
  summary.test.accuracy = accuracy_of(c, test.embeddings, mapped);
  skipped += static_cast<int64_t>(test.skipped.size());
  nlohmann::ordered_json j = {{"accuracy", summary.test.accuracy},
                              {"images", test.paths.size()},
                              {"skipped", test.skipped.size()},
                              {"count", test.paths.size()},
                              {"classes", c.classes},
                              {"confusion", confusion}};
  write_file_atomic(o.out + "/test_metrics.json", j.dump(2) + "\n");
  summary.details["test_images"] = test.paths.size();
}

nlohmann::ordered_json finetune_json(const FaceFinetuneOptions& ft, const TrainSummary& loop,
                                     const std::vector<double>& loss, const std::vector<double>& seconds) {
  nlohmann::ordered_json j = {{"loss", ft.loss},
                              {"trained", "conv256_down_out + fc (the last stage)"},
                              {"epochs", ft.epochs},
                              {"lr", ft.lr},
                              {"schedule", "cosine"},
                              {"momentum", ft.momentum},
                              {"weight_decay", ft.weight_decay},
                              {"margin", ft.margin},
                              {"batch_size", ft.batch_size},
                              {"augment", ft.augment ? "face" : "none"},
                              {"seed", ft.seed},
                              {"steps", loop.steps},
                              {"epoch_loss", loss},
                              {"epoch_seconds", seconds}};
  if (ft.loss != "triplet") j["scale"] = ft.scale;
  return j;
}

// Fine-tunes the pipeline's embedder through the one loop (rank 0 then
// saves it as embedder.safetensors and re-embeds the chips).
TrainSummary finetune_embedder(const TrainOptions& o, const FaceFinetuneOptions& ft, FacePipeline& pipeline,
                               FaceFolder& train, const std::vector<cv::Mat>& chips, bool lead) {
  // The margin losses' class centres start at the identities' mean
  // pretrained embeddings, so the first steps refine rather than scramble.
  pipeline.embedder()->eval();
  TrainSummary s = finetune_face_embedder(pipeline.embedder(), chips, train.labels,
                                          static_cast<int64_t>(train.identities.size()), class_means(train), ft,
                                          finetune_loop_options(o, ft));
  if (s.interrupted || !lead) return s;
  const std::string file = o.out + "/" + kFaceEmbedderFile;
  save_face_embedder_weights(pipeline.embedder(), file);
  pipeline.set_embedder_identity(str_cat(kFaceEmbedderName, "+finetune-", ft.loss), sha256_file(file));
  std::vector<torch::Tensor> parts;
  for (size_t i = 0; i < chips.size(); i += 32)
    parts.push_back(pipeline.embed(std::vector<cv::Mat>(
        chips.begin() + static_cast<int64_t>(i), chips.begin() + static_cast<int64_t>(std::min(chips.size(), i + 32)))));
  train.embeddings = torch::cat(parts);
  return s;
}

}  // namespace

TrainSummary train_face(const TrainOptions& o) {
  validate(o);
  set_threads(o.threads);
  const std::shared_ptr<dist::Group> group = active_group(o);
  const bool lead = !group || group->rank() == 0;
  if (group) check_same_options(*group, o);
  const FaceFinetuneOptions ft = resolve_finetune_options(o);
  const bool finetune = o.finetune != "none";
  GRAFT_CHECK(o.resume || o.overwrite || !fs::exists(o.out + "/face_model.json"), "--out: ", o.out,
              " already holds a face model (pass --overwrite to replace it)");
  FacePipeline pipeline(face_train_pipeline_options(o));
  std::vector<cv::Mat> chips;
  FaceFolder train = read_train_faces(pipeline, o, finetune ? &chips : nullptr);
  if (lead) {
    prepare_run_dir(o);
    // face_model.json is the run's manifest, written last: an old one goes
    // before the first write, so that a kill never leaves it naming files
    // that this run has since replaced.
    fs::remove(o.out + "/face_model.json");
    if (!o.resume) write_face_config(o, train, finetune ? ft.epochs : 0);
  }
  if (group) group->barrier("start of training (rank 0 prepares the run directory)");
  const std::string base_sha = pipeline.embedder_sha256();
  TrainSummary s;
  s.out = o.out;
  if (finetune) s = finetune_embedder(o, ft, pipeline, train, chips, lead);
  if (s.interrupted || !lead) return s;
  const FaceClassifier c = fit_head(o, train);
  const double train_accuracy = accuracy_of(c, train.embeddings, train.labels);
  int64_t skipped = static_cast<int64_t>(train.skipped.size());
  if (!o.test.empty()) test_face_head(o, pipeline, c, s, skipped);
  TensorList tensors = {{"weight", c.weight}};
  if (c.bias.defined()) tensors.push_back({"bias", c.bias});
  save_safetensors(o.out + "/head.safetensors", tensors);
  nlohmann::ordered_json j;
  j["task"] = "face";
  j["head"] = c.head;
  j["classes"] = c.classes;
  j["embedder"] = pipeline.embedder_name();
  j["weights_sha256"] = pipeline.embedder_sha256();
  j["embedding_dim"] = pipeline.embedding_dim();
  // Every epoch's loss and time, epochs before a --resume included.
  std::vector<double> epoch_loss, epoch_seconds;
  if (finetune)
    for (const auto& r : read_metrics_csv(o.out + "/metrics.csv")) {
      epoch_loss.push_back(r.train_loss);
      epoch_seconds.push_back(r.seconds);
    }
  if (finetune) {
    j["embedder_weights"] = kFaceEmbedderFile;
    j["base_weights_sha256"] = base_sha;
    j["finetune"] = finetune_json(ft, s, epoch_loss, epoch_seconds);
  }
  j["detect"] = o.detect;
  j["detector"] = o.detector;
  j["data"] = o.data;
  j["train_images"] = train.paths.size();
  j["train_accuracy"] = train_accuracy;
  if (o.head == "linear") j["linear"] = {{"epochs", o.epochs}, {"lr", o.lr}, {"weight_decay", o.weight_decay}, {"seed", o.seed}};
  write_report_or_warn(o.out);
  write_file_atomic(o.out + "/face_model.json", j.dump(2) + "\n");
  s.details["head"] = c.head;
  s.details["embedder"] = pipeline.embedder_name();
  s.details["classes"] = c.classes.size();
  s.details["train_images"] = train.paths.size();
  s.details["skipped"] = skipped;
  s.details["train_accuracy"] = train_accuracy;
  if (finetune) {
    s.details["finetune"] = ft.loss;
    s.details["finetune_epoch_seconds"] = epoch_seconds;
    s.details["finetune_epoch_loss"] = epoch_loss;
  }
  return s;
}

FaceClassifier load_face_classifier(const std::string& run) {
  const std::string path = run + "/face_model.json";
  GRAFT_CHECK(fs::exists(path), run, " is not a face run (no face_model.json; made by graft train --task face)");
  const auto j = read_json_file(path);
  GRAFT_CHECK(j.is_object() && j.value("task", "") == "face", path, ": not a face model");
  FaceClassifier c;
  c.head = json_get<std::string>(j, "head", path);
  c.classes = json_get<std::vector<std::string>>(j, "classes", path);
  for (const auto& [name, t] : load_safetensors(run + "/head.safetensors").tensors) {
    if (name == "weight") c.weight = t;
    if (name == "bias") c.bias = t;
  }
  GRAFT_CHECK(c.weight.defined() && c.weight.size(0) == static_cast<int64_t>(c.classes.size()), run,
              "/head.safetensors: expected a weight of ", c.classes.size(), " rows");
  return c;
}

FaceOptions face_run_options(const std::string& run, const std::string& models_dir, const FaceRunUse& use) {
  const std::string path = run + "/face_model.json";
  GRAFT_CHECK(fs::exists(path), run, " is not a face run (no face_model.json; made by graft train --task face)");
  const auto j = read_json_file(path);
  GRAFT_CHECK(j.is_object(), path, ": not a JSON object");
  FaceOptions f;
  f.models_dir = models_dir;
  f.detect = j.value("detect", true);
  f.detector = j.value("detector", std::string("ssd"));
  f.embedder_run = run;
  f.precision = use.precision;
  f.calibration = use.calibration;
  f.calibration_data = use.calibration_data.empty() ? j.value("data", std::string()) : use.calibration_data;
  f.int8_calibration_file = run + "/" + kInt8CalibrationFile;  // as an image run keeps its own
  return f;
}

nlohmann::ordered_json evaluate_face_run(const std::string& run, const std::string& data, const FaceRunUse& use) {
  const FaceClassifier c = load_face_classifier(run);
  FacePipeline pipeline(face_run_options(run, "", use));
  check_head_fits(c, pipeline, run);
  const FaceFolder folder = embed_face_folder(pipeline, data);
  report_face_folder(folder, data, pipeline.options());
  check_face_folder_usable(folder, data, pipeline.options());
  const auto j = read_json_file(run + "/face_model.json");
  const std::vector<int64_t> labels =
      labels_in_classes(folder, c.classes, data, j.value("data", std::string("the run's")));
  nlohmann::ordered_json out;
  out["accuracy"] = accuracy_of(c, folder.embeddings, labels);
  out["images"] = folder.paths.size();
  out["skipped"] = folder.skipped;
  out["head"] = c.head;
  out["embedder"] = pipeline.embedder_name();
  return out;
}

Embeddings embed_face_run(const std::string& run, const std::vector<std::string>& inputs, const FaceRunUse& use) {
  const ImageSet set = embedding_image_set(inputs);
  FacePipeline pipeline(face_run_options(run, "", use));
  Embeddings e;
  e.source = run;
  e.skipped = set.skipped;
  std::vector<torch::Tensor> rows;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < set.size(); ++i) {
    try {
      rows.push_back(pipeline.embed_file(set.samples[i].path));
      e.inputs.push_back(set.samples[i].path);
    } catch (const Error& err) {
      log_warn(str_cat("graft embed: skipped ", err.what()));
      ++e.skipped;
    }
  }
  GRAFT_CHECK(!rows.empty(), "graft embed: no usable face in the ", set.size(), " images of the inputs");
  e.rows = torch::stack(rows).to(torch::kFloat32).contiguous();
  return e;
}

std::vector<InputPrediction> predict_face_run(const std::string& run, const std::vector<std::string>& inputs,
                                              int64_t top_k, const PredictionCallback& each, const FaceRunUse& use) {
  const FaceClassifier c = load_face_classifier(run);
  FacePipeline pipeline(face_run_options(run, "", use));
  check_head_fits(c, pipeline, run);
  const int64_t k = std::min<int64_t>(top_k, static_cast<int64_t>(c.classes.size()));
  std::vector<InputPrediction> out;
  torch::NoGradGuard no_grad;
  for (const auto& path : inputs) {
    InputPrediction p;
    p.input = path;
    try {
      try {
        check_input_file(path);
      } catch (const Error& e) {
        p.unreadable = UnreadableImage{path, -1, ImageProblem::kCannotOpen, "", e.what()};
        throw;
      }
      const torch::Tensor scores = c.scores(pipeline.embed_file(path).unsqueeze(0))[0];
      if (c.head != "centroid") {
        p.top = top_labels(scores, c.classes, k);
      } else {
        p.distances = true;
        auto [top, idx] = scores.topk(k);  // scores are negative distances
        for (int64_t i = 0; i < k; ++i)
          p.top.push_back({c.classes[static_cast<size_t>(idx[i].item<int64_t>())], -top[i].item<double>()});
      }
    } catch (const ImageError& err) {
      p.error = err.what();
      p.unreadable = unreadable_image(err, path, -1);
    } catch (const Error& err) {
      p.error = err.what();
    }
    if (each) each(p);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace graft
