// graft report: (re)writes report.html of a run directory or search folder.
// graft compare: a side-by-side table of runs (markdown on stdout, and an
// HTML page with --html).

#include <iostream>
#include <memory>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/report/compare.h"
#include "graft/report/report.h"
#include "verbs.h"

namespace graft::cli {

namespace {

struct CompareOptions {
  std::vector<std::string> runs;
  std::string html;
};

int run_report(const std::string& dir) {
  GRAFT_CHECK_USAGE(!dir.empty(), "report: give a run directory (graft train) or search folder (graft search)");
  std::cout << write_report(dir) << std::endl;
  return 0;
}

int run_compare(const CompareOptions& o) {
  GRAFT_CHECK_USAGE(!o.runs.empty(), "compare: give at least one run directory");
  // All runs are read before anything is written: a typo fails fast.
  std::vector<CompareRow> rows = compare_runs(o.runs);
  if (!o.html.empty()) write_file_atomic(o.html, compare_html(rows));
  std::cout << compare_markdown(rows);
  std::cout.flush();
  return 0;
}

}  // namespace

void add_report(CLI::App& app, Action& run) {
  auto dir = std::make_shared<std::string>();
  CLI::App* sub = add_command(
      app, run, "report",
      "Write report.html (curves, confusion matrix, per-class table, wrong examples) for a run", dir, run_report);
  sub->add_option("run", *dir, "Run directory (graft train) or search folder (graft search)");
}

void add_compare(CLI::App& app, Action& run) {
  auto o = std::make_shared<CompareOptions>();
  CLI::App* sub = add_command(
      app, run, "compare", "Side-by-side table of runs: accuracy, time, strategy, backbone, source weights", o,
      run_compare);
  sub->add_option("runs", o->runs, "Run directories (a search folder stands for its trials)");
  sub->add_option("--html", o->html, "Also write the comparison as a self-contained HTML page");
}

}  // namespace graft::cli
