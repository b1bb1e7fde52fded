// report.html of a search folder (graft search): the trials' scores and the
// best trial's curves.

#include <algorithm>
#include <cmath>
#include <filesystem>
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

using html::escape;

struct ReportTrial {
  int64_t rank = 0, trial = 0, best_epoch = 0, epochs = 0;
  double score = std::numeric_limits<double>::quiet_NaN();
  std::string dir, status, params;
};

/// The trial's folder: the one of that name under this search folder's
/// trials/ (which is right also when the search folder was moved or copied),
/// else the folder recorded; "" when neither exists.
std::string trial_dir(const std::string& search_dir, const std::string& recorded) {
  std::error_code ec;
  fs::path p = fs::path(recorded).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  if (!p.filename().empty()) {
    fs::path here = fs::path(search_dir) / "trials" / p.filename();
    if (fs::is_directory(here, ec)) return here.string();
  }
  return !recorded.empty() && fs::is_directory(recorded, ec) ? recorded : std::string();
}

/// The href of dir/report.html relative to the search folder's page, or ""
/// when the trial has no report.
std::string report_href(const std::string& search_dir, const std::string& dir) {
  std::error_code ec;
  if (dir.empty() || !fs::exists(fs::path(dir) / "report.html", ec)) return "";
  fs::path rel = fs::absolute(dir).lexically_normal().lexically_proximate(
                     fs::absolute(search_dir).lexically_normal()) / "report.html";
  return report::url_path(rel.generic_string());
}

std::vector<ReportTrial> read_trials(const nlohmann::json& j, const std::string& path) {
  GRAFT_CHECK(j.contains("trials") && j["trials"].is_array(), "'", path,
              "' has no \"trials\" array (expected the results graft search writes)");
  std::vector<ReportTrial> out;
  for (size_t i = 0; i < j["trials"].size(); ++i) {
    const auto& t = j["trials"][i];
    GRAFT_CHECK(t.is_object(), "'", path, "': trials[", i, "] is not an object");
    ReportTrial r;
    auto integer = [&](const char* key) -> int64_t {
      if (!t.contains(key) || t[key].is_null()) return 0;
      GRAFT_CHECK(t[key].is_number_integer(), "'", path, "': trials[", i, "].", key, " is ",
                  json_excerpt(t[key]), " (expected an integer)");
      return t[key].get<int64_t>();
    };
    r.rank = integer("rank");
    r.trial = integer("trial");
    r.best_epoch = integer("best_epoch");
    r.epochs = integer("epochs");
    if (t.contains("score") && !t["score"].is_null()) {
      GRAFT_CHECK(t["score"].is_number(), "'", path, "': trials[", i, "].score is ", json_excerpt(t["score"]),
                  " (expected a number)");
      r.score = t["score"].get<double>();
    }
    if (t.contains("dir") && t["dir"].is_string()) r.dir = t["dir"].get<std::string>();
    if (t.contains("status") && t["status"].is_string()) r.status = t["status"].get<std::string>();
    if (t.contains("params") && t["params"].is_object()) {
      for (const auto& [k, v] : t["params"].items())
        r.params += (r.params.empty() ? "" : ", ") + k + "=" + json_text(v);
    }
    out.push_back(std::move(r));
  }
  std::stable_sort(out.begin(), out.end(), [](const ReportTrial& a, const ReportTrial& b) {
    if (a.rank > 0 && b.rank > 0) return a.rank < b.rank;
    return a.rank > 0 && b.rank <= 0;
  });
  return out;
}

}  // namespace

bool is_search_dir(const std::string& dir) {
  std::error_code ec;
  return fs::exists(fs::path(dir) / "results.json", ec) && !fs::exists(fs::path(dir) / "config.json", ec);
}

std::string search_report_html(const std::string& search_dir) {
  GRAFT_CHECK(fs::is_directory(search_dir), "search folder '", search_dir,
              "' does not exist or is not a folder (expected a folder written by graft search)");
  const std::string path = (fs::path(search_dir) / "results.json").string();
  GRAFT_CHECK(fs::exists(path), "search folder '", search_dir,
              "' has no results.json (expected a folder written by graft search)");
  const nlohmann::json j = read_json_file(path);
  GRAFT_CHECK(j.is_object(), "'", path, "' is not a JSON object (expected the results graft search writes)");
  std::vector<ReportTrial> trials = read_trials(j, path);
  const std::string method = j.contains("method") ? json_text(j["method"]) : "";
  const std::string name = report::display_name(search_dir);

  bool unit = true;
  for (const auto& t : trials)
    if (std::isfinite(t.score) && (t.score < 0 || t.score > 1)) unit = false;
  const ReportTrial* best = nullptr;
  for (const auto& t : trials)
    if (std::isfinite(t.score) && (!best || t.score > best->score)) best = &t;

  std::ostringstream os;
  os << html::page_begin("graft search: " + name);
  os << "<h1>Search " << escape(name) << "</h1>\n<div class=\"path\">"
     << escape(fs::absolute(search_dir).lexically_normal().string()) << "</div>\n<div class=\"cards\" id=\"summary\">\n";
  if (!method.empty()) os << report::card("method", method, "");
  os << report::card("trials", std::to_string(trials.size()), "");
  if (best) {
    os << report::card("best score", html::num(best->score), "validation accuracy of the best trial");
    os << report::card("best trial", std::to_string(best->trial), best->params);
    if (!best->params.empty()) os << report::card("best settings", best->params, "");
  }
  const std::string best_dir = best ? trial_dir(search_dir, best->dir) : std::string();
  std::error_code ec;
  if (!best_dir.empty() && fs::exists(fs::path(best_dir) / "test_metrics.json", ec))
    os << report::card("best trial: test accuracy",
                       html::percent(read_test_metrics((fs::path(best_dir) / "test_metrics.json").string()).accuracy),
                       "the best trial's weights on the test set");
  os << "</div>\n";

  std::vector<html::Bar> bars;
  for (const auto& t : trials)
    bars.push_back({"trial " + std::to_string(t.trial) + (t.params.empty() ? "" : " (" + t.params + ")"),
                    t.score, &t == best});
  os << "<section id=\"scores\">\n<h2>Trials by score</h2>\n"
     << html::bar_chart(bars, "search-scores", "Score (validation accuracy) per trial", unit ? 1.0 : 0.0);
  os << "<table id=\"trials\">\n<thead><tr><th>rank</th><th>trial</th><th>score</th><th>best epoch</th>"
        "<th>epochs</th><th>status</th><th>settings</th></tr></thead>\n<tbody>\n";
  for (const auto& t : trials) {
    const std::string href = report_href(search_dir, trial_dir(search_dir, t.dir));
    std::string label = std::to_string(t.trial);
    if (!href.empty()) label = "<a href=\"" + escape(href) + "\">" + label + "</a>";
    os << "<tr" << (&t == best ? " class=\"best\"" : "") << "><td class=\"n\">" << (t.rank > 0 ? std::to_string(t.rank) : "")
       << "</td><td class=\"n\">" << label << "</td><td class=\"n\">" << html::num(t.score)
       << "</td><td class=\"n\">" << t.best_epoch << "</td><td class=\"n\">" << t.epochs << "</td><td>"
       << escape(t.status) << "</td><td class=\"mono\">" << escape(t.params) << "</td></tr>\n";
  }
  os << "</tbody>\n</table>\n</section>\n";

  os << "<section id=\"best-curves\">\n<h2>Best trial's training curves</h2>\n";
  if (best_dir.empty() || !fs::exists(fs::path(best_dir) / "metrics.csv", ec)) {
    os << "<p class=\"note\">"
       << (best ? "The best trial's folder '" + escape(best->dir) + "' has no metrics.csv."
                : std::string("No trial has a score."))
       << "</p>\n";
  } else {
    os << "<p>Trial " << best->trial << ": <span class=\"path\">" << escape(best_dir) << "</span>";
    const std::string href = report_href(search_dir, best_dir);
    if (!href.empty()) os << " (<a href=\"" << escape(href) << "\">its report</a>)";
    os << "</p>\n"
       << report::curves(read_metrics_csv((fs::path(best_dir) / "metrics.csv").string()), "best-plot-");
  }
  os << "</section>\n<footer>Written by graft from results.json. Regenerate with: graft report "
     << escape(search_dir) << "</footer>\n" << html::page_end();
  return os.str();
}

std::string write_search_report(const std::string& search_dir) {
  return html::write_report_page(search_dir, search_report_html(search_dir));
}

}  // namespace graft
