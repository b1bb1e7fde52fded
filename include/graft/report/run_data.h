#pragma once
/// What a run directory holds, read back for reports and comparisons:
/// config.json, metrics.csv, test_metrics.json, test_predictions.csv and
/// calibration.json's reliability diagram.
/// Torch-free, so reports can be made wherever the files are.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graft/eval/class_metrics.h"
#include "graft/eval/reliability.h"
#include "graft/train/epoch_row.h"

namespace graft {

/// test_metrics.json. Scores that JSON could not hold (null) read as NaN;
/// top5 is NaN when absent (five classes or fewer).
struct TestMetrics {
  int64_t count = 0;
  double accuracy = 0, top5 = 0, loss = 0;
  std::vector<ClassMetrics> per_class;  // test_metrics.json's "per_class"
  std::vector<std::string> classes;
  /// confusion[true][predicted]; square, one row per class.
  std::vector<std::vector<int64_t>> confusion;
};

/// One row of test_predictions.csv. `path` is an image file, or `FILE#INDEX`
/// for an image inside an IDX file.
struct PredictionRow {
  std::string path, label, predicted;
  double confidence = 0;
};

/// A run directory read back. Only config.json is required: a run that has
/// not finished an epoch has no metrics.csv yet, one without --test has no
/// test files.
struct RunData {
  std::string dir;
  nlohmann::json config;  // the whole config.json
  std::vector<std::string> classes;
  std::vector<EpochRow> epochs;
  std::optional<TestMetrics> test;
  std::optional<std::vector<PredictionRow>> predictions;
  /// calibration.json's reliability diagram; absent without the file or
  /// when the file predates the bins.
  std::optional<ReliabilityDiagram> reliability;

  /// config["options"][key] as text ("" when absent; strings unquoted,
  /// numbers in the shortest form that reads back the same within 6 digits).
  std::string option(const std::string& key) const;
};

/// Reads a run directory. Throws graft::Error naming the file and what was
/// expected when config.json is missing or any file present is malformed.
RunData read_run(const std::string& dir);

/// Reads metrics.csv: a header naming at least epoch, train_loss,
/// train_accuracy, val_loss, val_accuracy, lr and seconds (any order), then
/// one numeric row per epoch ("nan" allowed; items_per_second is NaN when
/// the column is absent).
std::vector<EpochRow> read_metrics_csv(const std::string& path);
TestMetrics read_test_metrics(const std::string& path);
/// Reads test_predictions.csv (header path,label,predicted,confidence).
std::vector<PredictionRow> read_predictions_csv(const std::string& path);

/// Parses CSV text (RFC 4180: quoted fields may hold commas, doubled quotes
/// and line breaks; CRLF accepted). Each record carries its 1-based line.
struct CsvRecord {
  int64_t line = 0;
  std::vector<std::string> fields;
};
std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& path);

/// The epoch whose weights graft train kept: the first with the highest
/// validation accuracy, or the last epoch when there is no validation.
/// 0 when there are no epochs.
int64_t best_epoch(const std::vector<EpochRow>& epochs);
/// Sum of the seconds column.
double training_seconds(const std::vector<EpochRow>& epochs);

/// A JSON scalar as short text: strings unquoted, numbers with %.6g,
/// arrays joined with ", ", null as "".
std::string json_text(const nlohmann::json& value);

}  // namespace graft
