// graft embed: features of images or texts, written to safetensors, .npy or
// CSV (eval/embed.h).

#include <filesystem>
#include <iostream>
#include <memory>

#include "graft/core/error.h"
#include "graft/core/runtime.h"
#include "graft/eval/embed.h"
#include "graft/models/fast.h"
#include "graft/train/task.h"
#include "verbs.h"

namespace graft::cli {

namespace {

struct EmbedFlags {
  std::string run, backbone, weights, out, format;
  std::vector<std::string> inputs;
  bool overwrite = false;
  int threads = 0;
  RunUseSettings use;
};

int run_embed(EmbedFlags o) {
  set_threads(o.threads);
  const Precision precision = parse_precision(o.use.precision);
  const std::string format = embedding_format(o.out, o.format);  // before any long work
  GRAFT_CHECK_USAGE(o.overwrite || !std::filesystem::exists(o.out), "--out: '", o.out,
                    "' exists (expected a new file; --overwrite replaces it)");
  Embeddings e;
  if (!o.backbone.empty()) {
    // `graft embed --backbone B --weights W INPUT...`: CLI11 takes the first
    // input as the run.
    if (!o.run.empty()) o.inputs.insert(o.inputs.begin(), o.run);
    GRAFT_CHECK_USAGE(!o.inputs.empty(), "graft embed --backbone: no input (expected image files or folders)");
    GRAFT_CHECK_USAGE(!o.weights.empty(), "--backbone ", o.backbone,
                      " needs --weights (a weight file, or none for random weights)");
    InferOptions io;
    io.batch_size = o.use.batch_size;
    io.device = parse_device(o.use.device);
    io.precision = resolve_precision(precision, std::cerr);
    io.calibration = o.use.calibration;
    io.calibration_data = o.use.calibration_data;
    e = embed_with_backbone(o.backbone, o.weights, o.inputs, io, default_cache_dir());
  } else {
    GRAFT_CHECK_USAGE(!o.run.empty() && !o.inputs.empty(),
                      "graft embed: expected RUN INPUT... or --backbone B --weights W INPUT...");
    GRAFT_CHECK_USAGE(o.weights.empty(), "--weights goes with --backbone (a run has its own weights)");
    const TaskRow& task = task_of_run(o.run);
    GRAFT_CHECK_USAGE(task.embed, "'", o.run, "' is a ", task.name, " run, which graft embed does not use");
    e = task.embed(o.run, o.inputs, o.use);
  }
  write_embeddings(e, o.out, format, o.overwrite);
  std::cout << nlohmann::ordered_json{{"out", o.out},      {"format", format},     {"rows", e.rows.size(0)},
                                      {"dim", e.rows.size(1)}, {"skipped", e.skipped}, {"source", e.source}}
                   .dump()
            << std::endl;
  return 0;
}

}  // namespace

void add_embed(CLI::App& app, Action& run) {
  auto o = std::make_shared<EmbedFlags>();
  CLI::App* sub = add_command(app, run, "embed",
                              "Features of images or texts (what a run's head reads, or a backbone's pooled "
                              "features) to safetensors, .npy or CSV",
                              o, [](const EmbedFlags& f) { return run_embed(f); });
  sub->add_option("run", o->run, "Run directory written by graft train (or, with --backbone, the first input)");
  sub->add_option("inputs", o->inputs,
                  "Image files or folders (searched recursively); text runs: text files, one text per line "
                  "(- : stdin)");
  sub->add_option("--out", o->out, "Output file: .safetensors, .npy (with OUT.inputs.txt) or .csv")->required();
  sub->add_option("--format", o->format, "safetensors, npy or csv (default: from --out's extension)");
  sub->add_flag("--overwrite", o->overwrite, "Replace --out if it exists");
  sub->add_option("--backbone", o->backbone, "A registry backbone instead of a run (graft models)");
  sub->add_option("--weights", o->weights, "With --backbone: its weights (a file), or none");
  sub->add_option("--batch-size", o->use.batch_size, "Images per forward pass (texts per batch)")
      ->capture_default_str();
  add_threads(*sub, o->threads);
  add_max_pixels(*sub);
  add_precision(*sub, o->use.precision);
  add_int8_calibration(*sub, o->use.calibration, o->use.calibration_data);
}

}  // namespace graft::cli
