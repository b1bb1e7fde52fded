// graft eval: metrics of a trained run (or of a source model with its own
// classifier) on a labelled image set, as JSON on stdout.

#include <iostream>
#include <memory>

#include "graft/core/error.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/eval/metrics.h"
#include "graft/eval/run_eval.h"
#include "graft/face/face_train.h"
#include "graft/models/fast.h"
#include "graft/models/registry.h"
#include "graft/text/text_data.h"
#include "graft/text/text_eval.h"
#include "graft/text/text_model.h"
#include "verbs.h"

namespace graft::cli {

namespace {

struct EvalOptions {
  std::string run, data, backbone, weights;
  // Text runs: how --data is read (the flags fill it directly).
  TextReadOptions text;
  std::vector<std::string> classes;
  int64_t batch_size = 64;
  int threads = 0;
  std::string precision = "fp32";
  int workers = 2;
  std::string device = "auto";
  bool strict = false;
};

// A text run on a labelled text set: the set's classes must be the run's.
int run_text_eval(const EvalOptions& o) {
  TextReadOptions r = o.text;
  r.strict = o.strict;
  const TextEvaluation e = evaluate_text_run(o.run, o.data, r, o.batch_size);
  auto j = to_json(e.metrics);
  j["skipped"] = e.skipped_empty;
  j["truncated"] = e.truncated;
  std::cout << j.dump(2) << std::endl;
  return 0;
}

int run_eval(const EvalOptions& o) {
  set_quiet(true);
  set_threads(o.threads);
  const Precision requested = parse_precision(o.precision);
  if (!o.run.empty() && saved_model_task(o.run) == "face") {
    GRAFT_CHECK_USAGE(!o.data.empty(), "--data: a folder of identity folders is required");
    std::cout << evaluate_face_run(o.run, o.data).dump(2) << std::endl;
    return 0;
  }
  if (!o.run.empty() && saved_model_task(o.run) == "text") {
    if (requested != Precision::kFp32)
      std::cerr << "warning: --precision " << o.precision << " is for image runs; " << o.run
                << " is a text run and is evaluated in fp32\n";
    GRAFT_CHECK_USAGE(!o.data.empty(), "--data: a labelled text file (CSV, TSV, JSONL) or folder is required");
    return run_text_eval(o);
  }
  ImageEvalOptions io;
  io.device = parse_device(o.device);
  GRAFT_CHECK_USAGE(!o.data.empty(), "--data: a labelled image folder or IDX file is required");
  GRAFT_CHECK_USAGE(o.run.empty() != o.backbone.empty(),
                    "give either a run directory or --backbone with --weights");
  // A source model is evaluated with its own classifier: class folders must
  // be in the source's label order.
  GRAFT_CHECK_USAGE(!o.run.empty() || !o.weights.empty(),
                    "--backbone needs --weights (a source model file)");
  io.batch_size = o.batch_size;
  io.workers = o.workers;
  io.strict = o.strict;
  io.precision = requested;
  io.classes = o.classes;
  const ImageEvaluation e = o.run.empty() ? evaluate_source_model(o.backbone, o.weights, o.data, io)
                                          : evaluate_image_run(o.run, o.data, io);
  auto j = to_json(e.metrics);
  j["skipped"] = e.skipped;
  std::cout << j.dump(2) << std::endl;
  return 0;
}

}  // namespace

void add_eval(CLI::App& app, Action& run) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* sub = app.add_subcommand("eval", "Metrics of a trained run on labelled images or texts (JSON on stdout)");
  sub->add_option("run", o->run, "Run directory written by graft train");
  sub->add_option("--data", o->data, "Labelled images: a folder of class folders or an IDX file");
  sub->add_option("--classes", o->classes, "Keep only these classes")->delimiter(',');
  sub->add_option("--backbone", o->backbone, "Evaluate a source model instead: " + backbone_names());
  sub->add_option("--weights", o->weights, "Source model weights (with --backbone)");
  sub->add_option("--batch-size", o->batch_size, "Batch size")->capture_default_str();
  add_threads(*sub, o->threads);
  add_max_pixels(*sub);
  add_precision(*sub, o->precision);
  sub->add_option("--workers", o->workers, "Image decoding threads")->capture_default_str();
  sub->add_option("--device", o->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  sub->add_flag("--strict", o->strict, "Unreadable images (empty texts) are errors");
  auto text = "Text runs";
  sub->add_option("--text-column", o->text.text_column, "Text column: a name or 0-based index")->group(text);
  sub->add_option("--text-b-column", o->text.text_b_column, "Second text column of pairs")->group(text);
  sub->add_option("--label-column", o->text.label_column, "Label column: a name or 0-based index")->group(text);
  sub->add_option("--text-format", o->text.format, "auto, csv, tsv, jsonl or folder")
      ->capture_default_str()->group(text);
  sub->add_option("--header", o->text.header, "auto, yes or no")->capture_default_str()->group(text);
  sub->callback([&run, o] { run = [o] { return run_eval(*o); }; });
}

}  // namespace graft::cli
