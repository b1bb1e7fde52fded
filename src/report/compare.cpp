#include "graft/report/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/report/html.h"
#include "graft/report/report.h"
#include "graft/report/run_data.h"
#include "parts.h"

namespace fs = std::filesystem;

namespace graft {

namespace {

constexpr double kMissingValue = std::numeric_limits<double>::quiet_NaN();

CompareRow compare_row(const std::string& dir) {
  RunData run = read_run(dir);
  CompareRow row;
  row.run = dir;
  row.best_epoch = best_epoch(run.epochs);
  row.epochs = static_cast<int64_t>(run.epochs.size());
  const std::string planned = run.option("epochs");
  row.planned_epochs = planned.empty() ? 0 : std::atoll(planned.c_str());
  row.seconds = training_seconds(run.epochs);
  row.strategy = run.option("strategy");
  row.backbone = run.option("backbone");
  row.weights = run.option("weights");
  row.lr = run.option("lr");
  for (const auto& r : run.epochs) row.val_accuracy.push_back(r.val_accuracy);
  row.accuracy = kMissingValue;
  if (run.test) {
    row.accuracy = run.test->accuracy;
    row.accuracy_kind = "test";
  } else {
    for (const auto& r : run.epochs)
      if (r.epoch == row.best_epoch && std::isfinite(r.val_accuracy)) {
        row.accuracy = r.val_accuracy;
        row.accuracy_kind = "val";
      }
  }
  return row;
}

/// The search folder's trial folders, best first (as in results.json).
std::vector<std::string> search_trials(const std::string& dir) {
  const std::string path = (fs::path(dir) / "results.json").string();
  const nlohmann::json j = read_json_file(path);
  GRAFT_CHECK(j.is_object() && j.contains("trials") && j["trials"].is_array(), "'", path,
              "' has no \"trials\" array (expected the results graft search writes)");
  std::vector<std::pair<int64_t, std::string>> found;  // rank (0: none), folder
  for (const auto& t : j["trials"]) {
    if (!t.is_object() || !t.contains("dir") || !t["dir"].is_string()) continue;
    // The trial of that name under this search folder (right also when the
    // folder was moved or copied), else the folder recorded. A trial that
    // failed before writing anything has neither: left out.
    std::string d = t["dir"].get<std::string>();
    fs::path name = fs::path(d).lexically_normal();
    if (name.filename().empty()) name = name.parent_path();
    const fs::path here = fs::path(dir) / "trials" / name.filename();
    std::error_code ec;
    if (!name.filename().empty() && fs::exists(here / "config.json", ec)) {
      d = here.string();
    } else if (!fs::exists(fs::path(d) / "config.json", ec)) {
      continue;
    }
    const bool ranked = t.contains("rank") && t["rank"].is_number_integer();
    found.emplace_back(ranked ? t["rank"].get<int64_t>() : 0, d);
  }
  std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    if (a.first > 0 && b.first > 0) return a.first < b.first;
    return a.first > 0 && b.first <= 0;
  });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

bool best_accuracy(const std::vector<CompareRow>& rows, double& best) {
  best = -std::numeric_limits<double>::infinity();
  for (const auto& r : rows)
    if (std::isfinite(r.accuracy)) best = std::max(best, r.accuracy);
  return std::isfinite(best);
}

std::string accuracy_text(const CompareRow& r) {
  if (!std::isfinite(r.accuracy)) return "\xE2\x80\x93";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.4f (%s)", r.accuracy, r.accuracy_kind.c_str());
  return buf;
}

std::string epochs_text(const CompareRow& r) {
  if (r.planned_epochs > 0 && r.planned_epochs != r.epochs)
    return std::to_string(r.epochs) + " / " + std::to_string(r.planned_epochs);
  return std::to_string(r.epochs);
}

/// A markdown cell: pipes and line breaks would end the cell.
std::string md(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out.empty() ? "\xE2\x80\x93" : out;
}

const char* kHeader[] = {"run", "accuracy", "best epoch", "epochs", "time", "strategy",
                         "backbone", "source weights", "lr"};

std::vector<std::string> cells(const CompareRow& r) {
  return {r.run, accuracy_text(r), r.best_epoch > 0 ? std::to_string(r.best_epoch) : "",
          epochs_text(r), html::duration(r.seconds), r.strategy, r.backbone, r.weights, r.lr};
}

}  // namespace

std::vector<CompareRow> compare_runs(const std::vector<std::string>& runs) {
  GRAFT_CHECK_USAGE(!runs.empty(), "compare: give at least one run directory");
  std::vector<CompareRow> rows;
  for (const auto& dir : runs) {
    if (is_search_dir(dir)) {
      for (const auto& trial : search_trials(dir)) rows.push_back(compare_row(trial));
    } else {
      rows.push_back(compare_row(dir));
    }
  }
  return rows;
}

std::string compare_markdown(const std::vector<CompareRow>& rows) {
  double best = 0;
  const bool have_best = best_accuracy(rows, best);
  std::ostringstream os;
  os << "|";
  for (const char* h : kHeader) os << " " << h << " |";
  os << "\n|";
  for (size_t i = 0; i < std::size(kHeader); ++i) os << (i == 0 || i >= 5 ? " --- |" : " ---: |");
  os << "\n";
  for (const auto& r : rows) {
    auto c = cells(r);
    os << "|";
    for (size_t i = 0; i < c.size(); ++i) {
      std::string v = md(c[i]);
      if (i == 1 && have_best && r.accuracy == best) v = "**" + v + "**";
      os << " " << v << " |";
    }
    os << "\n";
  }
  return os.str();
}

std::string compare_html(const std::vector<CompareRow>& rows) {
  double best = 0;
  const bool have_best = best_accuracy(rows, best);
  std::ostringstream os;
  os << html::page_begin("graft compare: " + std::to_string(rows.size()) + " runs");
  os << "<h1>Comparison of " << rows.size() << " run" << (rows.size() == 1 ? "" : "s") << "</h1>\n";
  os << "<p class=\"note\">Accuracy is the test accuracy where the run has a test set, else the "
        "validation accuracy at its best epoch; time is the sum of the epochs' training time.</p>\n";
  os << "<table id=\"compare\">\n<thead><tr>";
  for (const char* h : kHeader) os << "<th>" << h << "</th>";
  os << "</tr></thead>\n<tbody>\n";
  for (const auto& r : rows) {
    auto c = cells(r);
    os << "<tr" << (have_best && r.accuracy == best ? " class=\"best\"" : "") << ">";
    for (size_t i = 0; i < c.size(); ++i) {
      const bool numeric = i >= 1 && i <= 4;
      const bool mono = i == 0 || i == 7;
      os << "<td" << (numeric ? " class=\"n\"" : mono ? " class=\"mono\"" : "") << ">"
         << (i == 1 && have_best && r.accuracy == best ? "<b>" + html::escape(c[i]) + "</b>" : html::escape(c[i]))
         << "</td>";
    }
    os << "</tr>\n";
  }
  os << "</tbody>\n</table>\n";
  std::vector<html::Series> series;
  for (size_t i = 0; i < rows.size(); ++i) {
    html::Series s;
    s.name = report::display_name(rows[i].run);
    for (size_t e = 0; e < rows[i].val_accuracy.size(); ++e) {
      s.x.push_back(static_cast<double>(e + 1));
      s.y.push_back(rows[i].val_accuracy[e]);
    }
    series.push_back(std::move(s));
  }
  html::ChartOptions o;
  o.id = "compare-val-accuracy";
  o.title = "Validation accuracy per epoch";
  o.x_label = "epoch";
  o.y_label = "accuracy";
  o.y_unit = true;
  o.width = 640;
  o.height = 340;
  os << "<h2>Validation accuracy</h2>\n<div class=\"charts\">\n" << html::line_chart(series, o) << "</div>\n";
  os << "<footer>Written by graft compare.</footer>\n" << html::page_end();
  return os.str();
}

}  // namespace graft
