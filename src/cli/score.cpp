// graft score: rank candidate source models on a target set (markdown table
// on stdout, JSON with --out).

#include <algorithm>
#include <iostream>
#include <memory>

#include "graft/core/files.h"
#include "graft/core/error.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/face/face_score.h"
#include "graft/cli/train_options.h"
#include "graft/select/score.h"
#include "graft/select/text_score.h"
#include "graft/train/options.h"
#include "verbs.h"

namespace graft::cli {

void add_score(CLI::App& app, Action& run) {
  auto o = std::make_shared<ScoreOptions>();
  auto out = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand(
      "score", "Rank source models by transferability to a target set (LogME, H-score, LEEP, NCE), no training");
  // [text score] --task text: text sources on a labelled text set (select/text_score.h).
  auto task = std::make_shared<std::string>("image");
  auto text = std::make_shared<TrainOptions>(default_train_options("text"));
  sub->add_option("--task", *task, "image (images: a folder of class folders or an IDX file) or text (a CSV, TSV "
                  "or JSONL file, or a folder of class files; candidates are text backbones and text runs)")
      ->capture_default_str();
  sub->add_option("--data", o->data, "Labelled target images: a folder of class folders or an IDX file "
                  "(--task text: a labelled text set)");
  sub->add_option("--backbones", o->candidates,
                  "Candidates, comma-separated: BACKBONE=WEIGHTS (a file, or none) or a run directory; --task text: "
                  "bert-tiny=DIR|FILE|none, use-lite=DIR, textcnn=VECTORS|none, ... or a text run")
      ->delimiter(',');
  sub->add_option("--classes", o->classes, "Keep only these target classes")->delimiter(',');
  sub->add_option("--per-class", o->per_class, "At most N target images (or texts) per class, seeded (0: all)")
      ->capture_default_str();
  sub->add_option("--source-data", o->source_data,
                  "Source images (with --task text: source texts, one per line or a CSV/TSV/JSONL text column): adds "
                  "domain shift through each backbone: CKA, MMD with a permutation test's p-value, and the proxy "
                  "A-distance (PAD, from a cross-validated linear domain classifier)");
  sub->add_option("--max-similarity-samples", o->max_similarity_samples,
                  "Rows per set used for CKA, MMD and the proxy A-distance")->capture_default_str();
  sub->add_option("--permutations", o->permutations,
                  "--source-data: permutations of the MMD test (its p-value)")->capture_default_str();
  sub->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  sub->add_option("--batch-size", o->batch_size, "Batch size")->capture_default_str();
  add_threads(*sub, o->threads);
  add_max_pixels(*sub);
  sub->add_option("--workers", o->workers, "Image decoding threads")->capture_default_str();
  sub->add_option("--device", o->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  sub->add_option("--cache-dir", o->cache_dir, "Feature cache folder (shared with graft train)");
  sub->add_flag("--strict", o->strict, "Unreadable images (--task text: empty texts) are errors");
  sub->add_option("--precision", o->precision,
                  "Image and face candidates' features: fp32, bf16 (autocast, where the CPU has bfloat16) or int8 "
                  "(post-training static int8, as graft eval's, calibrated on --calibration images of --data; "
                  "face:dlib only among the face embedders)")
      ->capture_default_str();
  sub->add_option("--calibration", o->calibration,
                  "--precision int8: images of --data that calibrate the activation ranges (at least 16)")
      ->capture_default_str();
  sub->add_option("--out", *out, "Also write the ranking as JSON to this file");
  sub->add_flag("--quiet", *quiet, "No progress bars");
  // Face embedders as candidates (issue 18): face:dlib, face:mobilefacenet.
  auto no_detect = std::make_shared<bool>(false);
  sub->add_flag("--no-detect", *no_detect,
                "For face:NAME candidates (face embedders scored on the identity folders of --data): each image "
                "is one already-cropped face");
  // [text score] graft train --task text's rows for reading the data and BERT's vocabulary, same flags and help.
  const std::vector<std::string> text_flags = {"--text-column", "--text-b-column", "--label-column", "--text-format",
                                               "--header", "--vocab", "--cased", "--max-length"};
  bind_option_rows(*sub, *text, [text_flags](const OptionRow& r) {
    return std::find(text_flags.begin(), text_flags.end(), r.flags) != text_flags.end();
  });
  sub->callback([&run, sub, o, out, quiet, no_detect, task, text, text_flags] {
    std::string text_flag_given;
    for (const auto& f : text_flags)
      if (sub->count(f) > 0) text_flag_given = f;
    run = [o, out, quiet, no_detect, task, text, text_flag_given] {
      set_quiet(*quiet);
      GRAFT_CHECK_USAGE(*task == "image" || *task == "text", "--task: '", *task, "' (expected image or text)");
      GRAFT_CHECK_USAGE(*task == "text" || text_flag_given.empty(), text_flag_given,
                        ": applies to --task text only");
      GRAFT_CHECK_USAGE(o->precision == "fp32" || *task == "image", "--precision ", o->precision,
                        ": text candidates are scored in fp32 (--precision applies to image candidates)");
      if (*task == "text") {  // [text score]
        for (const auto& c : o->candidates)
          GRAFT_CHECK_USAGE(!is_face_candidate(c), "--backbones: '", c, "' is a face embedder; with --task text the "
                            "candidates are text backbones and text runs");
        GRAFT_CHECK_USAGE(!*no_detect, "--no-detect: applies to face:NAME candidates only");
        GRAFT_CHECK_USAGE(o->device == "auto" || o->device == "cpu", "--device ", o->device,
                          ": text candidates are scored on the CPU (expected auto or cpu)");
        text->strict = o->strict;
        const auto scores = score_text_candidates(*o, *text);
        if (!out->empty()) write_file_atomic(*out, to_json(scores).dump(2) + "\n");
        std::cout << score_table(scores);
        return 0;
      }
      for (const auto& c : o->candidates)
        GRAFT_CHECK_USAGE(!is_text_candidate(c), "--backbones: '", c, "' is a text source; add --task text (with "
                          "--data a CSV, TSV or JSONL file, or a folder of class files)");
      std::vector<std::string> faces, others;
      for (const auto& c : o->candidates) (is_face_candidate(c) ? faces : others).push_back(c);
      GRAFT_CHECK_USAGE(faces.empty() || o->source_data.empty(),
                        "--source-data: does not apply to face:NAME candidates");
      GRAFT_CHECK_USAGE(!*no_detect || !faces.empty(), "--no-detect: applies to face:NAME candidates only");
      std::vector<CandidateScore> scores;
      if (!faces.empty()) {
        GRAFT_CHECK_USAGE(!o->data.empty(), "--data: a labelled target set is required");
        set_threads(o->threads);
        FaceOptions fo;
        fo.detect = !*no_detect;
        // fp32, bf16 or int8 (face-api's embedder, calibrated on --data's faces).
        fo.precision = o->precision;
        fo.calibration = o->calibration;
        fo.calibration_data = o->data;
        scores = score_face_embedders(o->data, faces, fo);
      }
      if (!others.empty() || faces.empty()) {
        ScoreOptions rest = *o;
        rest.candidates = others;
        for (auto& s : score_candidates(rest)) scores.push_back(s);
      }
      std::stable_sort(scores.begin(), scores.end(),
                       [](const CandidateScore& a, const CandidateScore& b) { return a.logme > b.logme; });
      if (!out->empty()) write_file_atomic(*out, to_json(scores).dump(2) + "\n");
      std::cout << score_table(scores);
      return 0;
    };
  });
}

}  // namespace graft::cli
