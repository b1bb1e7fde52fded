// graft predict: top-k labels with probabilities for image files, or for
// lines of text with a text run.

#include <iomanip>
#include <iostream>
#include <memory>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/runtime.h"
#include "graft/eval/metrics.h"
#include "graft/models/fast.h"
#include "graft/train/task.h"
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
  RejectOptions reject;
  std::string tta = "none";
  int64_t calibration = 256;  // --precision int8
  std::string calibration_data;
};

void print_prediction(const InputPrediction& p, bool json) {
  if (json) {
    nlohmann::ordered_json j;
    j["input"] = p.input;
    if (p.text) j["text"] = *p.text;
    if (p.unknown) j["unknown"] = true;
    nlohmann::ordered_json top = nlohmann::ordered_json::array();
    const char* score = p.distances ? "distance" : "probability";
    for (const auto& t : p.top) top.push_back({{"label", t.label}, {score, t.probability}});
    j["top"] = top;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << p.input;
    if (p.unknown) std::cout << "\tunknown";
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

int run_predict(const PredictOptions& o) {
  set_threads(o.threads);
  GRAFT_CHECK_USAGE(o.top_k >= 1, "--top-k: ", o.top_k, " (expected at least 1)");
  parse_precision(o.precision);  // a bad value is refused whatever the run
  parse_tta(o.tta);
  const TaskRow& task = task_of_run(o.run);
  GRAFT_CHECK_USAGE(task.predict, "'", o.run, "' is a ", task.name, " run, which graft predict does not use");
  RunUseSettings use;
  use.precision = o.precision;
  use.top_k = o.top_k;
  use.reject = o.reject;
  use.tta = o.tta;
  use.calibration = o.calibration;
  use.calibration_data = o.calibration_data;
  try {
    task.predict(o.run, o.inputs, use, printer(o.json));
  } catch (...) {
    std::cout.flush();  // the predictions made, before the error
    throw;
  }
  std::cout.flush();
  return 0;
}

struct ClassEnrollOptions {
  std::string run, name, input;
  RunUseSettings use;
  int threads = 0;
};

int run_enroll_class(const ClassEnrollOptions& o) {
  set_threads(o.threads);
  (void)parse_precision(o.use.precision);
  const TaskRow& task = task_of_run(o.run);
  GRAFT_CHECK_USAGE(task.enroll, "graft enroll adds classes to runs trained with --head centroid; '", o.run,
                    "' is a ", task.name, " run, which it does not extend (face identities go into a "
                    "gallery: graft face enroll)");
  std::cout << task.enroll(o.run, o.name, o.input, o.use).dump() << std::endl;
  return 0;
}

}  // namespace

void add_predict(CLI::App& app, Action& run) {
  auto o = std::make_shared<PredictOptions>();
  CLI::App* sub = add_command(app, run, "predict",
                              "Top-k labels with probabilities for images, or for lines of text (text runs); "
                              "face runs: identities of the largest face",
                              o, run_predict);
  sub->add_option("run", o->run, "Run directory written by graft train")->required();
  sub->add_option("inputs", o->inputs, "Image files; text runs: text files, one text per line (- : stdin)")->required();
  sub->add_option("--top-k", o->top_k, "Labels per input")->capture_default_str();
  sub->add_flag("--json", o->json, "One JSON object per input");
  add_threads(*sub, o->threads);
  add_max_pixels(*sub);
  add_precision(*sub, o->precision);
  add_int8_calibration(*sub, o->calibration, o->calibration_data);
  add_reject(*sub, o->reject);
  add_tta(*sub, o->tta);
}

void add_enroll(CLI::App& app, Action& run) {
  auto o = std::make_shared<ClassEnrollOptions>();
  CLI::App* sub = add_command(app, run, "enroll",
                              "Add a class to a run trained with --head centroid (or replace one), from its "
                              "images or texts, without training",
                              o, run_enroll_class);
  sub->add_option("run", o->run, "Run directory written by graft train --head centroid")->required();
  sub->add_option("--class", o->name, "Name of the class to add or replace")->required();
  sub->add_option("input", o->input,
                  "Image runs: a folder of the class's images (searched recursively); text runs: a text file, "
                  "one text per line (- : stdin)")->required();
  sub->add_option("--batch-size", o->use.batch_size, "Batch size")->capture_default_str();
  sub->add_option("--workers", o->use.workers, "Image decoding threads")->capture_default_str();
  sub->add_option("--device", o->use.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  sub->add_flag("--strict", o->use.strict, "Unreadable images are errors");
  add_threads(*sub, o->threads);
  add_max_pixels(*sub);
  add_precision(*sub, o->use.precision);
}

}  // namespace graft::cli
