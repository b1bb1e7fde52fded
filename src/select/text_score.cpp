// graft score --task text: text sources ranked on a labelled text target
// (include/graft/select/text_score.h).

#include "graft/select/text_score.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <numeric>

#include "graft/core/error.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/data/order.h"
#include "graft/models/registry.h"
#include "graft/select/transferability.h"
#include "graft/text/text_data.h"
#include "graft/text/text_eval.h"
#include "graft/text/text_model.h"
#include "graft/text/text_source.h"

namespace fs = std::filesystem;

namespace graft {

namespace {

constexpr const char* kTextCandidateForms =
    "BACKBONE=WEIGHTS with a text backbone (bert=DIR, bert-tiny=FILE|DIR|none, use-lite=DIR, "
    "textcnn=VECTORS|none, ...) or a text run folder";

bool is_text_backbone_name(const std::string& name) {
  const auto names = text_backbone_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

// The task of a run folder, or "" when `dir` is not one.
std::string run_folder_task(const std::string& dir) {
  if (!fs::is_regular_file(fs::path(dir) / "model.json")) return "";
  try {
    return saved_model_task(dir);
  } catch (const Error&) {
    return "";
  }
}

// One text candidate, checked and its source read, not yet built.
struct TextScoreCandidate {
  Candidate c;
  std::unique_ptr<TextSourceBuilder> builder;  // BACKBONE=WEIGHTS
  std::unique_ptr<TextModel> run;              // a text run folder (with its classifier)
};

// graft train --task text's options for a BACKBONE=WEIGHTS candidate: the
// target's reading options, and what a linear probe on this source sets.
TrainOptions candidate_options(const TrainOptions& text, const ScoreOptions& o, const Candidate& c) {
  TrainOptions t = text;
  t.task = "text";
  t.backbone = c.backbone;
  t.seed = o.seed;
  t.threads = o.threads;
  t.head = "linear";
  t.freeze_embeddings = false;
  if (c.backbone == "textcnn") {  // the vectors are --embeddings; the TextCNN has no linear strategy
    t.strategy = "full";
    t.weights = "none";
    t.embeddings = c.weights;
  } else {
    t.strategy = "linear";
    t.weights = c.weights;
    t.embeddings = "none";
  }
  return t;
}

TextScoreCandidate parse_text_candidate(const std::string& spec, const TrainOptions& text, const ScoreOptions& o) {
  TextScoreCandidate tc;
  tc.c.spec = spec;
  const size_t eq = spec.find('=');
  if (eq == std::string::npos) {
    const std::string task = run_folder_task(spec);
    GRAFT_CHECK_USAGE(!task.empty(), "--backbones: '", spec, "' is neither BACKBONE=WEIGHTS nor a run folder with "
                      "model.json (with --task text, expected ", kTextCandidateForms, ")");
    GRAFT_CHECK_USAGE(task == "text", "--backbones: '", spec, "' is a run of task ", task, " (model.json task \"",
                      task, "\"); with --task text the candidates are ", kTextCandidateForms);
    try {
      tc.run = std::make_unique<TextModel>(load_text_model(spec));
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      throw Error(str_cat("--backbones: '", spec, "': ", e.what()));
    }
    GRAFT_CHECK_USAGE(tc.run->info.architecture != "tfidf", "--backbones: '", spec, "' is a TF-IDF run: it has no "
                      "frozen features to score (expected a BERT, use-lite or textcnn run)");
    tc.c.backbone = tc.run->info.backbone;
    tc.c.weights = spec;
    return tc;
  }
  tc.c.backbone = spec.substr(0, eq);
  tc.c.weights = spec.substr(eq + 1);
  if (!is_text_backbone_name(tc.c.backbone)) {
    bool image = true;
    try {
      find_backbone(tc.c.backbone);
    } catch (const Error&) {
      image = false;
    }
    std::string names;
    for (const auto& n : text_backbone_names())
      if (n != "tfidf") names += (names.empty() ? "" : ", ") + n;
    throw UsageError(str_cat("--backbones: '", spec, "': '", tc.c.backbone, "' is ",
                             image ? "an image backbone" : "not a text backbone",
                             " (with --task text, expected one of ", names, ", or a text run folder)"));
  }
  GRAFT_CHECK_USAGE(tc.c.backbone != "tfidf", "--backbones: '", spec, "': the tfidf backbone has no source to "
                    "score (it is fitted on the target; expected bert*, use-lite or textcnn)");
  GRAFT_CHECK_USAGE(!tc.c.weights.empty(), "--backbones: '", spec, "' names no weights (expected BACKBONE=WEIGHTS, ",
                    "or BACKBONE=none)");
  GRAFT_CHECK_USAGE(tc.c.weights == "none" || fs::exists(tc.c.weights), "--backbones: '", spec, "': weights '",
                    tc.c.weights, "' do not exist");
  try {
    tc.builder = std::make_unique<TextSourceBuilder>(candidate_options(text, o, tc.c));
  } catch (const UsageError& e) {
    throw UsageError(str_cat("--backbones: '", spec, "': ", e.what()));
  } catch (const Error& e) {
    throw Error(str_cat("--backbones: '", spec, "': ", e.what()));
  }
  return tc;
}

// The target: read as graft train reads --data, then --classes and --per-class.
TextSet read_text_target(const ScoreOptions& o, const TrainOptions& text) {
  GRAFT_CHECK_USAGE(fs::exists(o.data), "--data: '", o.data, "' does not exist (with --task text, expected a CSV, "
                    "TSV or JSONL file, or a folder of class files)");
  if (fs::is_directory(o.data))
    for (const auto& e : fs::directory_iterator(o.data))
      GRAFT_CHECK_USAGE(!e.is_directory() || e.path().filename().string().rfind('.', 0) == 0, "--data: '", o.data,
                        "' holds folders ('", e.path().filename().string(), "'): an image set? With --task text, "
                        "--data is a CSV, TSV or JSONL file, or a folder of class files (one text a line)");
  TextSet set;
  try {
    set = read_text_data(o.data, "--data", text, {});
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(str_cat("--data: ", e.what()));
  }
  if (!o.classes.empty()) {
    std::vector<int> to(set.classes.size(), -1);
    for (size_t k = 0; k < o.classes.size(); ++k) {
      const auto it = std::find(set.classes.begin(), set.classes.end(), o.classes[k]);
      if (it == set.classes.end()) {
        std::string names;
        for (const auto& n : set.classes) names += (names.empty() ? "" : ", ") + n;
        throw UsageError(str_cat("--classes: '", o.classes[k], "' is not a class of '", o.data, "' (it has ", names,
                                 ")"));
      }
      to[static_cast<size_t>(it - set.classes.begin())] = static_cast<int>(k);
    }
    std::vector<TextExample> kept;
    for (auto x : set.examples)
      if (to[static_cast<size_t>(x.label)] >= 0) {
        x.label = to[static_cast<size_t>(x.label)];
        kept.push_back(std::move(x));
      }
    set.examples = std::move(kept);
    set.classes = o.classes;
  }
  set.keep_per_class(o.per_class, o.seed);  // at most N per class, seeded, in file order
  size_t present = 0;
  for (auto n : set.class_counts()) present += n > 0;
  GRAFT_CHECK(present >= 2, "--data '", o.data, "' has ", present, " class with texts (a transferability score "
              "needs at least 2)");
  return set;
}

// --source-data: texts of the source's domain, read without labels (as
// graft train reads --unlabeled: one text per line, or the text column of a
// CSV/TSV/JSONL file, or a folder of such files) with the target's options.
TextSet read_text_source(const ScoreOptions& o, const TrainOptions& text) {
  GRAFT_CHECK_USAGE(fs::exists(o.source_data), "--source-data: '", o.source_data, "' does not exist (with --task "
                    "text, expected a file of texts: one per line, or a CSV, TSV or JSONL text column)");
  TextReadOptions r = text_read_options(text);
  r.unlabeled = true;
  r.classes.clear();
  try {
    return read_text_set(o.source_data, r);
  } catch (const UsageError& e) {
    throw UsageError(str_cat("--source-data: ", e.what()));
  } catch (const Error& e) {
    throw UsageError(str_cat("--source-data: ", e.what()));
  }
}

// The texts of `set` (read from `data`, given as `option`) as `m` reads
// them, truncation counted and warned about as graft train does.
std::vector<EncodedText> encode_target(const TextModel& m, const TextSet& set, const std::string& data,
                                       const std::string& spec, const char* option = "--data") {
  GRAFT_CHECK_USAGE(m.info.pairs == set.has_pairs, "--backbones: '", spec, "' reads ",
                    m.info.pairs ? "text pairs" : "single texts", " but ", option, " '", data, "' holds ",
                    set.has_pairs ? "text pairs" : "single texts");
  std::vector<EncodedText> out;
  out.reserve(set.examples.size());
  int64_t texts = 0, tokens = 0;
  for (const auto& x : set.examples) {
    int64_t cut = 0;
    out.push_back(m.encode(x.text, x.text_b, &cut));
    texts += cut > 0;
    tokens += cut;
  }
  if (texts > 0)
    log_warn(str_cat(spec, ": ", texts, " of ", out.size(), " texts of '", data, "' are longer than --max-length ",
                     m.info.max_length, " tokens and were truncated (", tokens, " tokens dropped)"));
  return out;
}

}  // namespace

bool is_text_candidate(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq != std::string::npos) return is_text_backbone_name(spec.substr(0, eq));
  return run_folder_task(spec) == "text";
}

std::vector<CandidateScore> score_text_candidates(const ScoreOptions& o, const TrainOptions& text,
                                                  std::vector<TextCandidateFeatures>* features) {
  GRAFT_CHECK_USAGE(!o.data.empty(), "--data: a labelled target set is required");
  GRAFT_CHECK_USAGE(!o.candidates.empty(), "--backbones: give at least one candidate (", kTextCandidateForms, ")");
  GRAFT_CHECK_USAGE(o.per_class >= 0, "--per-class ", o.per_class, " (expected 0 for all, or a positive count)");
  GRAFT_CHECK_USAGE(text.max_length >= 3 && text.max_length <= 4096, "--max-length ", text.max_length,
                    " (expected 3 to 4096)");
  check_similarity_options(o);
  set_threads(o.threads);
  // Everything is checked, and every source read, before the first feature.
  std::vector<TextScoreCandidate> candidates;
  for (const auto& s : o.candidates) candidates.push_back(parse_text_candidate(s, text, o));
  const TextSet target = read_text_target(o, text);
  const TextSet source = o.source_data.empty() ? TextSet{} : read_text_source(o, text);
  const torch::Tensor labels = [&] {
    std::vector<int64_t> y;
    for (const auto& x : target.examples) y.push_back(x.label);
    return torch::tensor(y, torch::kInt64);
  }();
  const int64_t batch = std::max<int64_t>(o.batch_size, 1);

  std::vector<CandidateScore> out;
  std::vector<TextCandidateFeatures> feats;
  for (auto& tc : candidates) {
    const auto t0 = std::chrono::steady_clock::now();
    TextCandidateFeatures f;
    f.candidate = tc.c.spec;
    f.labels = labels;
    torch::Tensor source_rows;
    auto source_features = [&](const TextModel& m) {
      if (!o.source_data.empty())
        source_rows = m.features(encode_target(m, source, o.source_data, tc.c.spec, "--source-data"), batch,
                                 "source features " + tc.c.spec);
    };
    if (tc.builder) {
      tc.builder->set_training_texts(target.classes, target.has_pairs, target.examples);
      tc.builder->build_network();
      const TextModel& m = tc.builder->text_model();
      f.values = m.features(encode_target(m, target, o.data, tc.c.spec), batch, "features " + tc.c.spec);
      source_features(m);
    } else {
      const TextModel& m = *tc.run;
      const auto inputs = encode_target(m, target, o.data, tc.c.spec);
      f.values = m.features(inputs, batch, "features " + tc.c.spec);
      f.source_probs = torch::softmax(m.logits(inputs, batch).to(torch::kFloat64), 1);
      source_features(m);
    }
    CandidateScore s;
    s.candidate = tc.c.spec;
    s.backbone = tc.c.backbone;
    s.weights = tc.c.weights;
    s.feature_dim = f.values.size(1);
    s.logme = logme(f.values, labels);
    s.h_score = h_score(f.values, labels);
    if (f.source_probs.defined()) {
      s.has_source_classifier = true;
      s.leep = leep(f.source_probs, labels);
      s.nce = nce(f.source_probs.argmax(1), labels);
    }
    if (source_rows.defined())
      set_domain_shift(s, domain_shift(source_rows.to(torch::kFloat32), f.values, o.max_similarity_samples,
                                       o.permutations, o.seed));
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    tc.builder.reset();  // free it before the next candidate
    tc.run.reset();
    out.push_back(s);
    feats.push_back(std::move(f));
  }
  std::vector<size_t> order(out.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return out[a].logme > out[b].logme; });
  std::vector<CandidateScore> sorted;
  for (size_t i : order) {
    sorted.push_back(out[i]);
    if (features) features->push_back(std::move(feats[i]));
  }
  return sorted;
}

}  // namespace graft
