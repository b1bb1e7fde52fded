// graft score: rank candidate source models on a target set (markdown table
// on stdout, JSON with --out).

#include <iostream>
#include <memory>

#include "graft/core/files.h"
#include "graft/core/progress.h"
#include "graft/select/score.h"
#include "verbs.h"

namespace graft::cli {

void add_score(CLI::App& app, Action& run) {
  auto o = std::make_shared<ScoreOptions>();
  auto out = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand(
      "score", "Rank source models by transferability to a target set (LogME, H-score, LEEP, NCE), no training");
  sub->add_option("--data", o->data, "Labelled target images: a folder of class folders or an IDX file");
  sub->add_option("--backbones", o->candidates,
                  "Candidates, comma-separated: BACKBONE=WEIGHTS (a file, or none) or a run directory")
      ->delimiter(',');
  sub->add_option("--classes", o->classes, "Keep only these target classes")->delimiter(',');
  sub->add_option("--per-class", o->per_class, "At most N target images per class (0: all)")
      ->capture_default_str();
  sub->add_option("--source-data", o->source_data,
                  "Source images: adds domain similarity (CKA, MMD) through each backbone");
  sub->add_option("--max-similarity-samples", o->max_similarity_samples,
                  "Rows per set used for CKA and MMD")->capture_default_str();
  sub->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  sub->add_option("--batch-size", o->batch_size, "Batch size")->capture_default_str();
  add_threads(*sub, o->threads);
  add_max_pixels(*sub);
  sub->add_option("--workers", o->workers, "Image decoding threads")->capture_default_str();
  sub->add_option("--device", o->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  sub->add_option("--cache-dir", o->cache_dir, "Feature cache folder (shared with graft train)");
  sub->add_flag("--strict", o->strict, "Unreadable images are errors");
  sub->add_option("--out", *out, "Also write the ranking as JSON to this file");
  sub->add_flag("--quiet", *quiet, "No progress bars");
  sub->callback([&run, o, out, quiet] {
    run = [o, out, quiet] {
      set_quiet(*quiet);
      auto scores = score_candidates(*o);
      if (!out->empty()) write_file_atomic(*out, to_json(scores).dump(2) + "\n");
      std::cout << score_table(scores);
      return 0;
    };
  });
}

}  // namespace graft::cli
