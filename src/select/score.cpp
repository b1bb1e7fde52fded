// graft score: transferability of candidate source models to a target set.

#include "graft/select/score.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <torch/torch.h>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/data/image_set.h"
#include "graft/eval/infer.h"
#include "graft/eval/int8_run.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/select/transferability.h"
#include "graft/weights/state_dict.h"

namespace fs = std::filesystem;

namespace graft {

Candidate parse_candidate(const std::string& spec) {
  Candidate c;
  c.spec = spec;
  const size_t eq = spec.find('=');
  if (eq == std::string::npos) {
    GRAFT_CHECK_USAGE(fs::is_regular_file(fs::path(spec) / "model.json"), "--backbones: '", spec,
                      "' is neither BACKBONE=WEIGHTS nor a run directory with model.json");
    c.backbone = model_info_from_json(
                     read_json_file(spec + "/model.json"), spec + "/model.json")
                     .backbone;
    c.weights = spec;
    return c;
  }
  c.backbone = spec.substr(0, eq);
  c.weights = spec.substr(eq + 1);
  try {
    find_backbone(c.backbone);
  } catch (const Error& e) {
    throw UsageError(str_cat("--backbones: '", spec, "': ", e.what()));
  }
  GRAFT_CHECK_USAGE(!c.weights.empty(), "--backbones: '", spec,
                    "' names no weights (expected BACKBONE=FILE, or BACKBONE=none)");
  GRAFT_CHECK_USAGE(c.weights == "none" || fs::exists(c.weights), "--backbones: '", spec,
                    "': weights '", c.weights, "' do not exist");
  return c;
}

namespace {

struct Loaded {
  Candidate candidate;
  Backbone model{nullptr};
  InputSpec input;
  std::string key;  // feature-cache identity, as graft train computes it
  bool has_classifier = false;
};

// Builds the candidate with its source classifier when the weights have one.
Loaded load_candidate(const Candidate& c, uint64_t seed) {
  Loaded l;
  l.candidate = c;
  const BackboneSpec& spec = find_backbone(c.backbone);
  l.input = spec.input;
  if (fs::is_directory(c.weights)) {
    LoadedModel m = load_model(c.weights);
    l.model = m.model;
    l.input = m.info.input;
    l.has_classifier = true;
    l.key = backbone_key(c.backbone, m.info.transform_input) + "|" +
            sha256_file(c.weights + "/model.safetensors");
    return l;
  }
  seed_everything(mix_seed(seed, 201));
  l.model = spec.make(spec.source_classes);
  if (c.weights == "none") {
    l.key = backbone_key(c.backbone, spec.transform_input) + "|random-init|" + std::to_string(seed);
    return l;
  }
  LoadReport r;
  try {
    r = load_state_dict(*l.model, read_weights(c.weights));
  } catch (const Error& e) {
    throw Error(str_cat("--backbones: '", c.spec, "': ", e.what()));
  }
  // The backbone must load whole; the classifier is optional.
  const std::string head = l.model->classifier_name() + ".";
  auto outside_head = [&](const std::string& s) { return s.rfind(head, 0) != 0; };
  const bool body_missing = std::any_of(r.missing.begin(), r.missing.end(), outside_head) ||
                            std::any_of(r.mismatched.begin(), r.mismatched.end(), outside_head);
  GRAFT_CHECK(!body_missing && r.loaded > 0, "--backbones: '", c.spec, "': the weights do not fit ",
              c.backbone, ": ", r.summary());
  l.has_classifier = r.missing.empty() && r.mismatched.empty();
  l.key = backbone_key(c.backbone, spec.transform_input) + "|" + sha256_file(c.weights);
  return l;
}

}  // namespace

std::vector<CandidateScore> score_candidates(const ScoreOptions& o) {
  GRAFT_CHECK_USAGE(!o.data.empty(), "--data: a labelled target set is required");
  GRAFT_CHECK_USAGE(!o.candidates.empty(),
                    "--backbones: give at least one candidate (BACKBONE=WEIGHTS or a run directory)");
  check_similarity_options(o);
  set_threads(o.threads);
  const torch::Device device = parse_device(o.device);

  // Everything is checked before the first feature is computed.
  std::vector<Candidate> candidates;
  for (const auto& s : o.candidates) candidates.push_back(parse_candidate(s));
  OpenOptions open;
  open.strict = o.strict;
  ImageSet target = open_image_set(o.data, open);
  if (!o.classes.empty()) target = select_classes(target, o.classes);
  if (o.per_class > 0) target = take_per_class(target, o.per_class, mix_seed(o.seed, 102));
  GRAFT_CHECK(target.classes.size() >= 2, "--data '", o.data, "' has ", target.classes.size(),
              " class (a transferability score needs at least 2)");
  ImageSet source;
  if (!o.source_data.empty()) source = open_image_set(o.source_data, open);
  InferOptions io;
  io.batch_size = o.batch_size;
  io.workers = o.workers;
  io.strict = o.strict;
  io.device = device;
  io.precision = resolve_precision(parse_precision(o.precision), std::cerr);
  io.calibration = o.calibration;
  io.calibration_data = o.data;  // int8: calibrated on the target images
  GRAFT_CHECK_USAGE(io.precision != Precision::kInt8 || o.calibration >= kMinCalibrationImages, "--calibration: ",
                    o.calibration, " images (expected at least ", kMinCalibrationImages, ")");
  std::vector<Loaded> loaded;
  for (const auto& c : candidates) {
    loaded.push_back(load_candidate(c, o.seed));
    Loaded& l = loaded.back();
    if (io.precision == Precision::kInt8) check_int8_supported(*l.model, c.backbone);
    if (io.precision != Precision::kFp32) l.key += std::string("|") + precision_name(io.precision);
    if (io.precision == Precision::kInt8) l.key += str_cat("|", o.calibration, "|", fs::absolute(o.data).string());
  }

  const std::string cache = o.cache_dir.empty() ? default_cache_dir() : o.cache_dir;
  std::vector<CandidateScore> out;
  for (auto& l : loaded) {
    auto t0 = std::chrono::steady_clock::now();
    l.model->to(device);
    l.model->eval();
    // int8: calibrated only when some features are not in the cache yet.
    if (io.precision == Precision::kInt8 &&
        (!find_cached_features(l.key, target, l.input, cache) ||
         (!o.source_data.empty() && !find_cached_features(l.key, source, l.input, cache))))
      prepare_int8_source(*l.model, l.candidate.backbone, l.input, io);
    io.label = "features " + l.candidate.spec;
    Outputs f = cached_features(*l.model, l.key, target, l.input, io, cache);
    CandidateScore s;
    s.candidate = l.candidate.spec;
    s.backbone = l.candidate.backbone;
    s.weights = l.candidate.weights;
    s.feature_dim = f.values.size(1);
    s.logme = logme(f.values, f.labels);
    s.h_score = h_score(f.values, f.labels);
    if (l.has_classifier) {
      torch::Tensor probs;
      {
        torch::InferenceMode guard;
        l.model->eval();
        probs = torch::softmax(l.model->classify(f.values.to(device)).to(torch::kCPU, torch::kFloat64), 1);
      }
      s.has_source_classifier = true;
      s.leep = leep(probs, f.labels);
      s.nce = nce(probs.argmax(1), f.labels);
    }
    if (!o.source_data.empty()) {
      io.label = "source features " + l.candidate.spec;
      Outputs g = cached_features(*l.model, l.key, source, l.input, io, cache);
      set_domain_shift(s, domain_shift(g.values, f.values, o.max_similarity_samples, o.permutations, o.seed));
    }
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    l.model = nullptr;  // free it before the next candidate
    out.push_back(s);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const CandidateScore& a, const CandidateScore& b) { return a.logme > b.logme; });
  return out;
}

void check_similarity_options(const ScoreOptions& o) {
  GRAFT_CHECK_USAGE(o.max_similarity_samples >= 5, "--max-similarity-samples: ",
                    o.max_similarity_samples, " (expected at least 5: the proxy A-distance's 5 folds)");
  GRAFT_CHECK_USAGE(o.permutations >= 1 && o.permutations <= 100000, "--permutations: ", o.permutations,
                    " (expected 1 to 100000)");
}

void set_domain_shift(CandidateScore& s, const DomainShift& d) {
  s.has_similarity = true;
  s.domain_cka = d.cka;
  s.mmd_sigma = d.sigma;
  s.mmd = d.mmd;
  s.mmd_p = d.mmd_p;
  s.pad = d.pad;
  s.pad_error = d.pad_error;
}

nlohmann::ordered_json to_json(const std::vector<CandidateScore>& scores) {
  nlohmann::ordered_json arr = nlohmann::ordered_json::array();
  int rank = 1;
  for (const auto& s : scores) {
    nlohmann::ordered_json j;
    j["rank"] = rank++;
    j["candidate"] = s.candidate;
    j["backbone"] = s.backbone;
    j["weights"] = s.weights;
    j["feature_dim"] = s.feature_dim;
    j["logme"] = s.logme;
    j["h_score"] = s.h_score;
    if (s.has_source_classifier) {
      j["leep"] = s.leep;
      j["nce"] = s.nce;
    }
    if (s.has_similarity) {
      j["domain_cka"] = s.domain_cka;
      j["mmd"] = s.mmd;
      j["mmd_sigma"] = s.mmd_sigma;
      j["mmd_p"] = s.mmd_p;
      j["pad"] = s.pad;
      j["pad_error"] = s.pad_error;
    }
    j["seconds"] = s.seconds;
    arr.push_back(j);
  }
  return arr;
}

std::string score_table(const std::vector<CandidateScore>& scores) {
  bool sim = std::any_of(scores.begin(), scores.end(), [](const auto& s) { return s.has_similarity; });
  std::ostringstream os;
  os << std::fixed;
  os << "| rank | candidate | dim | LogME | H-score | LEEP | NCE |" << (sim ? " CKA | MMD | MMD p | PAD |" : "")
     << " s |\n|---|---|---|---|---|---|---|" << (sim ? "---|---|---|---|" : "") << "---|\n";
  int rank = 1;
  auto opt = [&](bool has, double v) {
    std::ostringstream t;
    if (has) t << std::fixed << std::setprecision(4) << v; else t << "-";
    return t.str();
  };
  for (const auto& s : scores) {
    os << "| " << rank++ << " | " << s.candidate << " | " << s.feature_dim << " | "
       << std::setprecision(4) << s.logme << " | " << s.h_score << " | "
       << opt(s.has_source_classifier, s.leep) << " | " << opt(s.has_source_classifier, s.nce)
       << " |";
    if (sim)
      os << " " << opt(s.has_similarity, s.domain_cka) << " | " << opt(s.has_similarity, s.mmd) << " | "
         << opt(s.has_similarity, s.mmd_p) << " | " << opt(s.has_similarity, s.pad) << " |";
    os << " " << std::setprecision(1) << s.seconds << " |\n";
  }
  return os.str();
}

}  // namespace graft
