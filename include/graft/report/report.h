#pragma once
/// report.html: one self-contained page per run directory or search folder
/// (inline CSS and SVG, thumbnails as data: URIs; opens offline, loads
/// nothing). Comparisons of runs are in compare.h.

#include <string>
#include <vector>

namespace graft {

/// The report of a run directory (graft train): training curves (loss,
/// accuracy, learning rate per epoch), the test confusion matrix as a heat
/// map, the per-class precision/recall/F1 table, thumbnails of the most
/// confidently wrong test images (from test_predictions.csv) and the
/// configuration. Throws graft::Error naming the file when config.json is
/// missing or a file present is malformed.
std::string run_report_html(const std::string& run_dir);

/// Writes run_dir/report.html atomically; returns its path.
std::string write_run_report(const std::string& run_dir);

/// True when `dir` is a search folder (graft search): results.json and no
/// config.json.
bool is_search_dir(const std::string& dir);

/// The report of a search folder: the trials' scores as a bar chart and a
/// table sorted by rank (linking each trial's report.html when it has one)
/// and the best trial's training curves.
std::string search_report_html(const std::string& search_dir);

/// Writes search_dir/report.html atomically; returns its path.
std::string write_search_report(const std::string& search_dir);

/// write_search_report for a search folder, else write_run_report.
std::string write_report(const std::string& dir);

}  // namespace graft
