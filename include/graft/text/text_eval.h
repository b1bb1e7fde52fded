#pragma once
/// Evaluation of a trained text run on a labelled text set: the library call
/// behind graft train --task text --test, graft eval on a text run, and the
/// test of graft search's best trial.

#include <cstdint>
#include <string>

#include "graft/eval/metrics.h"
#include "graft/text/text_data.h"
#include "graft/train/options.h"

namespace graft {

/// How a text set is read for the options of a run (format, columns,
/// header, strict); the classes are left empty.
TextReadOptions text_read_options(const TrainOptions& o);

struct TextEvaluation {
  Metrics metrics;
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
                                 const std::string& write_dir = "");

}  // namespace graft
