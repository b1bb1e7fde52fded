// graft eval: metrics of a trained run (or of a source model with its own
// classifier) on a labelled image set, as JSON on stdout.

#include <iostream>
#include <memory>

#include "graft/core/error.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/eval/metrics.h"
#include "graft/eval/run_eval.h"
#include "graft/models/fast.h"
#include "graft/models/registry.h"
#include "graft/train/task.h"
#include "verbs.h"

namespace graft::cli {

namespace {

struct EvalOptions {
  std::string run, data, backbone, weights;
  RunUseSettings use;  // the flags fill it directly
  int threads = 0;
};

int run_eval(const EvalOptions& o) {
  set_quiet(true);
  set_threads(o.threads);
  (void)parse_precision(o.use.precision);  // a bad --precision fails before anything loads
  (void)parse_tta(o.use.tta);              // and a bad --tta
  if (!o.run.empty()) {
    // A run: its task's row evaluates it.
    GRAFT_CHECK_USAGE(o.backbone.empty(), "give either a run directory or --backbone with --weights");
    const TaskRow& task = task_of_run(o.run);
    GRAFT_CHECK_USAGE(task.evaluate, "'", o.run, "' is a ", task.name, " run, which graft eval does not evaluate");
    std::cout << task.evaluate(o.run, o.data, o.use).dump(2) << std::endl;
    return 0;
  }
  GRAFT_CHECK_USAGE(!o.data.empty(), "--data: a labelled image folder or IDX file is required");
  GRAFT_CHECK_USAGE(!o.backbone.empty(), "give either a run directory or --backbone with --weights");
  // A source model is evaluated with its own classifier: class folders must
  // be in the source's label order.
  GRAFT_CHECK_USAGE(!o.weights.empty(), "--backbone needs --weights (a source model file)");
  const ImageEvaluation e = evaluate_source_model(o.backbone, o.weights, o.data, image_eval_options(o.use));
  auto j = evaluation_json(e);
  j["skipped"] = e.skipped;
  if (o.use.tta != "none") j["tta"] = o.use.tta;
  std::cout << j.dump(2) << std::endl;
  return 0;
}

}  // namespace

void add_eval(CLI::App& app, Action& run) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* sub = add_command(app, run, "eval",
                              "Metrics of a trained run on labelled images or texts (JSON on stdout)", o, run_eval);
  sub->add_option("run", o->run, "Run directory written by graft train");
  sub->add_option("--data", o->data, "Labelled images: a folder of class folders or an IDX file");
  sub->add_option("--classes", o->use.classes, "Keep only these classes")->delimiter(',');
  sub->add_option("--backbone", o->backbone, "Evaluate a source model instead: " + backbone_names());
  sub->add_option("--weights", o->weights, "Source model weights (with --backbone)");
  sub->add_option("--batch-size", o->use.batch_size, "Batch size")->capture_default_str();
  add_threads(*sub, o->threads);
  add_max_pixels(*sub);
  add_precision(*sub, o->use.precision);
  add_int8_calibration(*sub, o->use.calibration, o->use.calibration_data);
  add_reject(*sub, o->use.reject);
  add_tta(*sub, o->use.tta);
  sub->add_option("--workers", o->use.workers, "Image decoding threads")->capture_default_str();
  sub->add_option("--device", o->use.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  sub->add_flag("--strict", o->use.strict, "Unreadable images (empty texts) are errors");
  auto text = "Text runs";
  sub->add_option("--text-column", o->use.text.text_column, "Text column: a name or 0-based index")->group(text);
  sub->add_option("--text-b-column", o->use.text.text_b_column, "Second text column of pairs")->group(text);
  sub->add_option("--label-column", o->use.text.label_column, "Label column: a name or 0-based index")->group(text);
  sub->add_option("--text-format", o->use.text.format, "auto, csv, tsv, jsonl or folder")
      ->capture_default_str()->group(text);
  sub->add_option("--header", o->use.text.header, "auto, yes or no")->capture_default_str()->group(text);
}

}  // namespace graft::cli
