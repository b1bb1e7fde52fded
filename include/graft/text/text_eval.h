#pragma once
/// Evaluation of a trained text run on a labelled text set: the library call
/// behind graft train --task text --test, graft eval on a text run, and the
/// test of graft search's best trial; and prediction for lines of text, the
/// call behind graft predict on a text run.

#include <cstdint>
#include <string>
#include <vector>

#include "graft/eval/embed.h"
#include "graft/eval/calibration.h"
#include "graft/eval/metrics.h"
#include "graft/eval/run_eval.h"
#include "graft/text/text_data.h"
#include "graft/train/options.h"

namespace graft {

/// How a text set is read for the options of a run (format, columns,
/// header, strict); the classes are left empty.
TextReadOptions text_read_options(const TrainOptions& o);

/// Scored with the run's calibration (eval/calibration.h).
struct TextEvaluation : ScoredSet {
  int64_t texts = 0;
  int64_t truncated = 0;      ///< texts cut to the model's max_length
  int64_t skipped_empty = 0;  ///< empty texts left out (not with read.strict)
};

/// Evaluates the text run in `run` (graft train --task text) on the labelled
/// set `data`, read as `read` says with the run's classes (a label the run
/// does not know is an error naming `option` and the file). When `write_dir`
/// is not empty, test_metrics.json and test_predictions.csv are written
/// there (atomically). Throws graft::Error / UsageError on bad input.
TextEvaluation evaluate_text_run(const std::string& run, const std::string& data,
                                 TextReadOptions read, int64_t batch_size,
                                 const std::string& option = "--data",
                                 const std::string& write_dir = "", const RejectOptions& reject = {},
                                 Precision precision = Precision::kFp32);

/// The `top_k` most probable labels of the text run in `run` for every line
/// of every file in `inputs` ("-": standard input), named FILE:LINE
/// (stdin:LINE). For a model of text pairs a tab separates the two texts.
/// Blank lines are passed over (for pairs, a line without a tab is an error
/// first). An input that cannot be read, and a line that cannot be split or
/// encoded, gets an InputPrediction with its error (naming the file or line)
/// and the rest are still predicted. Results are in input order; `each`,
/// when given, is called with each one as soon as it is known: errors while
/// the inputs are read, then the predictions after one pass over all texts,
/// batched by length (`batch_size` texts at a time). Throws graft::Error when
/// the run cannot be loaded. Probabilities are calibrated (the run's
/// temperature); below the `reject` threshold a prediction is "unknown".
/// `precision` as use_text_precision takes it (also for evaluate_text_run).
std::vector<InputPrediction> predict_text_run(const std::string& run,
                                              const std::vector<std::string>& inputs,
                                              int64_t top_k, int64_t batch_size = 64,
                                              const PredictionCallback& each = nullptr,
                                              const RejectOptions& reject = {},
                                              Precision precision = Precision::kFp32);

/// graft embed on a BERT text run: the pooled output (what the head reads)
/// of every line of every file in `inputs` ("-": standard input), named
/// FILE:LINE; blank lines are passed over. Throws graft::UsageError for a
/// TF-IDF run, graft::Error naming an input that cannot be read or holds no text.
Embeddings embed_text_run(const std::string& run, const std::vector<std::string>& inputs, int64_t batch_size = 64);

/// graft enroll on a text run trained with --head centroid (BERT): the texts
/// of `input` (one per line, TEXT<TAB>TEXT for a model of pairs; "-":
/// standard input) become class `name`, added or replacing the class of that
/// name, as enroll_image_class does for images (eval/run_eval.h).
Enrolment enroll_text_class(const std::string& run, const std::string& name, const std::string& input,
                            int64_t batch_size = 64);

}  // namespace graft
