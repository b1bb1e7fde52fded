// graft predict: top-k labels with probabilities for image files, or for
// lines of text with a text run.

#include <iomanip>
#include <iostream>
#include <memory>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/runtime.h"
#include "graft/eval/metrics.h"
#include "graft/eval/run_eval.h"
#include "graft/face/face_train.h"
#include "graft/models/fast.h"
#include "graft/text/text_eval.h"
#include "graft/text/text_model.h"
#include "verbs.h"

namespace graft::cli {

namespace {

struct PredictOptions {
  std::string run;
  std::vector<std::string> inputs;
  int top_k = 5;
  int threads = 0;
  bool json = false;
  std::string precision = "fp32";
};

void print_prediction(const InputPrediction& p, bool json) {
  if (json) {
    nlohmann::ordered_json j;
    j["input"] = p.input;
    if (p.text) j["text"] = *p.text;
    nlohmann::ordered_json top = nlohmann::ordered_json::array();
    for (const auto& t : p.top) top.push_back({{"label", t.label}, {"probability", t.probability}});
    j["top"] = top;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << p.input;
    for (const auto& t : p.top)
      std::cout << "\t" << t.label << " " << std::fixed << std::setprecision(4) << t.probability;
    std::cout << "\n";
  }
}

// Prints each result as it comes: an error on stderr, labels on stdout.
PredictionCallback printer(bool json) {
  return [json](const InputPrediction& p) {
    if (p.error.empty()) print_prediction(p, json);
    else std::cerr << "error: " << p.error << "\n";
  };
}

int count_failures(const std::vector<InputPrediction>& results) {
  int failures = 0;
  for (const auto& p : results) failures += !p.error.empty();
  return failures;
}

// Text runs: every line of every input file ("-": standard input) is one
// text; for a model of text pairs, a tab separates the two texts.
int run_text_predict(const PredictOptions& o) {
  const auto results = predict_text_run(o.run, o.inputs, o.top_k, 64, printer(o.json));
  std::cout.flush();
  const int failures = count_failures(results);
  GRAFT_CHECK(failures == 0, failures, " inputs could not be read or classified");
  return 0;
}

// Face runs (graft train --task face): the largest face of each image, found,
// aligned and embedded as in training, then the run's head. A nearest-centroid
// head ranks identities by distance, a linear head by probability.
int run_face_predict(const PredictOptions& o) {
  const FaceClassifier c = load_face_classifier(o.run);
  FacePipeline pipeline(face_run_options(o.run));
  const int64_t k = std::min<int64_t>(o.top_k, static_cast<int64_t>(c.classes.size()));
  int failures = 0;
  torch::NoGradGuard no_grad;
  for (const auto& path : o.inputs) {
    torch::Tensor e;
    try {
      check_input_file(path);
      e = pipeline.embed_file(path);
    } catch (const Error& err) {
      std::cerr << "error: " << err.what() << "\n";
      ++failures;
      continue;
    }
    const torch::Tensor scores = c.scores(e.unsqueeze(0))[0];
    if (c.head != "centroid") {
      print_prediction({path, std::nullopt, top_labels(scores, c.classes, k), ""}, o.json);
      continue;
    }
    auto [top, idx] = scores.topk(k);  // scores are negative distances
    nlohmann::ordered_json j{{"input", path}, {"top", nlohmann::ordered_json::array()}};
    if (!o.json) std::cout << path;
    for (int64_t i = 0; i < k; ++i) {
      const auto& label = c.classes[static_cast<size_t>(idx[i].item<int64_t>())];
      const double distance = -top[i].item<double>();
      if (o.json) j["top"].push_back({{"label", label}, {"distance", distance}});
      else std::cout << "\t" << label << " " << std::fixed << std::setprecision(4) << distance;
    }
    std::cout << (o.json ? j.dump() : "") << "\n";
  }
  std::cout.flush();
  GRAFT_CHECK(failures == 0, failures, " of ", o.inputs.size(), " inputs had no usable face or could not be read");
  return 0;
}

int run_predict(const PredictOptions& o) {
  set_threads(o.threads);
  GRAFT_CHECK_USAGE(o.top_k >= 1, "--top-k: ", o.top_k, " (expected at least 1)");
  const Precision requested = parse_precision(o.precision);
  if (saved_model_task(o.run) == "text") {
    if (requested != Precision::kFp32)
      std::cerr << "warning: --precision " << o.precision << " is for image runs; " << o.run
                << " is a text run and is predicted in fp32\n";
    return run_text_predict(o);
  }
  if (saved_model_task(o.run) == "face") return run_face_predict(o);
  ImageEvalOptions io;
  io.precision = requested;
  io.top_k = o.top_k;
  const auto results = predict_image_run(o.run, o.inputs, io, printer(o.json));
  std::cout.flush();
  const int failures = count_failures(results);
  GRAFT_CHECK(failures == 0, failures, " of ", o.inputs.size(), " inputs could not be read");
  return 0;
}

}  // namespace

void add_predict(CLI::App& app, Action& run) {
  auto o = std::make_shared<PredictOptions>();
  CLI::App* sub = app.add_subcommand("predict", "Top-k labels with probabilities for images, or for lines of text (text runs); face runs: identities of the largest face");
  sub->add_option("run", o->run, "Run directory written by graft train")->required();
  sub->add_option("inputs", o->inputs, "Image files; text runs: text files, one text per line (- : stdin)")->required();
  sub->add_option("--top-k", o->top_k, "Labels per input")->capture_default_str();
  sub->add_flag("--json", o->json, "One JSON object per input");
  add_threads(*sub, o->threads);
  add_max_pixels(*sub);
  add_precision(*sub, o->precision);
  sub->callback([&run, o] { run = [o] { return run_predict(*o); }; });
}

}  // namespace graft::cli
