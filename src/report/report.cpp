#include "graft/report/report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/progress.h"
#include "graft/report/grad_cam.h"
#include "graft/report/html.h"
#include "graft/report/run_data.h"
#include "parts.h"

namespace fs = std::filesystem;

namespace graft {

namespace report {

std::string display_name(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  if (p.filename().empty() || p.filename() == "." || p.filename() == "..") p = fs::absolute(p).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  // A search trial (SEARCH/trials/007) is named by its search too.
  if (p.parent_path().filename() == "trials" && !p.parent_path().parent_path().filename().empty())
    return p.parent_path().parent_path().filename().string() + "/" + p.filename().string();
  return p.filename().string();
}

std::string card(const std::string& key, const std::string& value, const std::string& title) {
  return "<div class=\"card\"" + (title.empty() ? std::string() : " title=\"" + html::escape(title) + "\"") +
         "><div class=\"k\">" + html::escape(key) + "</div><div class=\"v\">" + html::escape(value) +
         "</div></div>\n";
}

std::string curves(const std::vector<EpochRow>& epochs, const std::string& id_prefix) {
  std::vector<double> x, tl, vl, ta, va, lr;
  for (const auto& r : epochs) {
    x.push_back(static_cast<double>(r.epoch));
    tl.push_back(r.train_loss);
    vl.push_back(r.val_loss);
    ta.push_back(r.train_accuracy);
    va.push_back(r.val_accuracy);
    lr.push_back(r.lr);
  }
  const std::string train_color = html::palette(0), val_color = html::palette(1);
  html::ChartOptions loss;
  loss.id = id_prefix + "loss";
  loss.title = "Loss";
  loss.x_label = "epoch";
  loss.y_label = "cross-entropy";
  html::ChartOptions acc = loss;
  acc.id = id_prefix + "accuracy";
  acc.title = "Accuracy";
  acc.y_label = "accuracy";
  acc.y_unit = true;
  html::ChartOptions rate = loss;
  rate.id = id_prefix + "lr";
  rate.title = "Learning rate";
  rate.y_label = "learning rate (head)";
  std::string out = "<div class=\"charts\">\n";
  out += html::line_chart({{"train", x, tl, train_color}, {"validation", x, vl, val_color}}, loss);
  std::vector<html::Series> acc_series = {{"train", x, ta, train_color}, {"validation", x, va, val_color}};
  // --adapt dann|cdan (issue 19): the domain classifier's accuracy (0.5: the
  // features no longer tell source from target).
  // --self-train: the share of unlabelled inputs that gave a pseudo-label.
  std::vector<double> da, kept;
  bool has_domain = false, has_kept = false;
  for (const auto& r : epochs) {
    da.push_back(r.domain_accuracy);
    kept.push_back(r.unlabeled_kept);
    has_domain = has_domain || !std::isnan(r.domain_accuracy);
    has_kept = has_kept || !std::isnan(r.unlabeled_kept);
  }
  if (has_domain) acc_series.push_back({"domain classifier", x, da, html::palette(3)});
  if (has_kept) acc_series.push_back({"pseudo-labels kept", x, kept, html::palette(4)});
  out += html::line_chart(acc_series, acc);
  out += html::line_chart({{"lr", x, lr, html::palette(2)}}, rate);
  out += "</div>\n";
  if (epochs.empty()) out += "<p class=\"note\">No epoch finished yet (metrics.csv is missing or empty).</p>\n";
  return out;
}

std::string url_path(const std::string& path) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace report

namespace {

using report::card;
using html::escape;

std::string per_class_table(const TestMetrics& m) {
  std::ostringstream os;
  os << "<table id=\"per-class\">\n<thead><tr><th>class</th><th>precision</th><th>recall</th>"
        "<th>F1</th><th>support</th></tr></thead>\n<tbody>\n";
  double p = 0, r = 0, f = 0;
  int64_t support = 0, n = 0;
  for (const auto& c : m.per_class) {
    // F1 shaded from red (0) to green (1): weak classes stand out.
    const double hue = std::isfinite(c.f1) ? 120 * std::min(1.0, std::max(0.0, c.f1)) : 0;
    os << "<tr><td>" << escape(c.name) << "</td><td class=\"n\">" << html::num(c.precision)
       << "</td><td class=\"n\">" << html::num(c.recall) << "</td><td class=\"n\" style=\"background:hsl("
       << static_cast<int>(hue) << ",70%,88%)\">" << html::num(c.f1) << "</td><td class=\"n\">"
       << c.support << "</td></tr>\n";
    p += c.precision;
    r += c.recall;
    f += c.f1;
    support += c.support;
    ++n;
  }
  os << "</tbody>\n";
  if (n > 0)
    os << "<tfoot><tr><th>macro average</th><td class=\"n\">" << html::num(p / n) << "</td><td class=\"n\">"
       << html::num(r / n) << "</td><td class=\"n\">" << html::num(f / n) << "</td><td class=\"n\">"
       << support << "</td></tr></tfoot>\n";
  os << "</table>\n";
  return os.str();
}

constexpr size_t kThumbnails = 12;

/// The Grad-CAM overlays (PNG bytes, "" where there is none) of the images
/// shown, for an image run with a registry CNN; computed here, once per
/// report. A failure is a warning: the report is written without them.
std::vector<std::string> report_grad_cams(const RunData& run,
                                          const std::vector<std::pair<const PredictionRow*, std::string>>& shown) {
  std::vector<std::string> pngs(shown.size());
  if (shown.empty()) return pngs;
  try {
    if (!grad_cam_applies(run.dir)) return pngs;
    std::vector<std::string> paths, predicted;
    for (const auto& [p, uri] : shown) {
      paths.push_back(p->path);
      predicted.push_back(p->predicted);
    }
    const std::vector<GradCamOverlay> overlays = grad_cam_overlays(run.dir, paths, predicted);
    for (size_t i = 0; i < overlays.size() && i < pngs.size(); ++i) pngs[i] = overlays[i].png;
  } catch (const std::exception& e) {
    log_warn(str_cat("report: no Grad-CAM heat maps for '", run.dir, "': ", e.what()));
    std::fill(pngs.begin(), pngs.end(), std::string());
  }
  return pngs;
}

/// The validation set's reliability diagram from calibration.json, before
/// and after temperature scaling; "" when the file has no bins.
std::string calibration_section(const RunData& run) {
  if (!run.reliability) return "";
  const ReliabilityDiagram& d = *run.reliability;
  // Without a temperature (--calibrate none, or a fit that kept T = 1) both
  // sides are the same bins: one series.
  const bool scaled = d.method == "temperature" && d.converged;
  int64_t n = 0;
  for (const ReliabilityBin& b : d.before) n += b.count;
  std::vector<html::ReliabilitySeries> series = {{scaled ? "before (T = 1)" : "uncalibrated", d.before, "#ff7f0e"}};
  if (scaled) series.push_back({"after (T = " + html::num(d.temperature) + ")", d.after, "#1f77b4"});
  std::ostringstream os;
  os << "<section id=\"calibration\">\n<h2>Calibration</h2>\n<figure class=\"chart-figure\">\n"
     << html::reliability_chart(series, "reliability", "Reliability diagram (validation set)")
     << "<figcaption>Accuracy against confidence (the top softmax probability) of the " << n
     << " validation inputs in " << d.before.size() << " equal-width confidence bins; the dashed diagonal is "
     << "perfect calibration. ";
  if (scaled)
    os << "Expected calibration error <b>" << html::num(d.ece_before) << "</b> before and <b>"
       << html::num(d.ece_after) << "</b> after temperature scaling (T = " << html::num(d.temperature)
       << ", fitted on these inputs; eval and predict divide the logits by it).";
  else
    os << "Expected calibration error <b>" << html::num(d.ece_before) << "</b> ("
       << (d.method == "temperature" ? "the temperature fit did not converge: T stays 1"
                                     : "--calibrate none: no temperature")
       << ").";
  os << "</figcaption>\n</figure>\n</section>\n";
  return os.str();
}

std::string wrong_examples(const RunData& run) {
  std::ostringstream os;
  os << "<section id=\"wrong-examples\">\n<h2>Most confidently wrong test images</h2>\n";
  if (!run.predictions) {
    os << "<p class=\"note\">No test_predictions.csv in this run"
       << (run.test ? "" : " (it had no test set; train with --test to get one)") << ".</p>\n</section>\n";
    return os.str();
  }
  std::vector<const PredictionRow*> wrong;
  for (const auto& p : *run.predictions)
    if (p.label != p.predicted) wrong.push_back(&p);
  std::stable_sort(wrong.begin(), wrong.end(), [](const PredictionRow* a, const PredictionRow* b) {
    return a->confidence > b->confidence;
  });
  if (wrong.empty()) {
    os << "<p class=\"note\">No test image was misclassified (" << run.predictions->size()
       << " predictions).</p>\n</section>\n";
    return os.str();
  }
  html::Thumbnails thumbs(64);
  std::vector<std::pair<const PredictionRow*, std::string>> shown;  // with its thumbnail
  size_t unreadable = 0;
  std::string first_unreadable;
  for (const PredictionRow* p : wrong) {
    if (shown.size() == kThumbnails) break;
    std::string uri = thumbs.uri(p->path);
    if (uri.empty()) {
      if (unreadable++ == 0) first_unreadable = p->path;
      continue;
    }
    shown.emplace_back(p, std::move(uri));
  }
  const std::vector<std::string> cams = report_grad_cams(run, shown);
  std::ostringstream figs;
  for (size_t i = 0; i < shown.size(); ++i) {
    const PredictionRow* p = shown[i].first;
    figs << "<figure class=\"thumb\"><img src=\"" << shown[i].second << "\" alt=\"" << escape(p->label)
         << " predicted as " << escape(p->predicted) << "\" title=\"" << escape(p->path) << "\">\n";
    if (!cams[i].empty())
      figs << "<img class=\"cam\" width=\"120\" src=\"data:image/png;base64," << html::base64(cams[i])
           << "\" alt=\"Grad-CAM of " << escape(p->predicted) << "\" title=\"Grad-CAM of the predicted class "
           << escape(p->predicted) << " over the crop the model saw\">\n";
    figs << "<figcaption>true <b>" << escape(p->label) << "</b><br>predicted <span class=\"wrong\">"
         << escape(p->predicted) << "</span><br>" << html::percent(p->confidence) << " confident</figcaption></figure>\n";
  }
  os << "<p>" << wrong.size() << " of " << run.predictions->size() << " test images are misclassified.";
  if (!shown.empty())
    os << " Shown: the " << (shown.size() == 1 ? std::string("one") : std::to_string(shown.size()))
       << " predicted wrong with the highest confidence.";
  if (std::any_of(cams.begin(), cams.end(), [](const std::string& c) { return !c.empty(); }))
    os << " Under each, its Grad-CAM heat map for the <b>predicted</b> class over the crop the model saw "
          "(the last convolutional stage's evidence for that class, red = most; Selvaraju et al. 2017).";
  os << "</p>\n";
  if (unreadable > 0) {
    const bool idx = first_unreadable.find('#') != std::string::npos;
    os << "<p class=\"note\">" << unreadable << " misclassified test "
       << (unreadable == 1 ? "image was" : "images were") << " skipped: '" << escape(first_unreadable) << "'"
       << (unreadable > 1 ? " and others are" : " is")
       << (idx ? " an image of an IDX file that cannot be read at that path now"
               : " not a readable image file (moved or deleted since the run, or a relative path "
                 "from another working directory)")
       << ".</p>\n";
  }
  os << "<div class=\"thumbs\">\n" << figs.str() << "</div>\n</section>\n";
  return os.str();
}

std::string config_table(const RunData& run) {
  std::ostringstream os;
  os << "<table id=\"config\">\n<thead><tr><th>setting</th><th>value</th></tr></thead>\n<tbody>\n";
  auto row = [&](const std::string& k, const std::string& v) {
    os << "<tr><th>" << escape(k) << "</th><td class=\"mono\">" << escape(v) << "</td></tr>\n";
  };
  if (run.config.contains("graft_version")) row("graft version", json_text(run.config["graft_version"]));
  for (const auto& [key, value] : run.config["options"].items()) row(key, json_text(value));
  if (!run.classes.empty())
    row(str_cat("classes (", run.classes.size(), ")"), json_text(run.config["classes"]));
  if (run.config.contains("counts") && run.config["counts"].is_object())
    for (const auto& [key, value] : run.config["counts"].items()) row("images: " + key, json_text(value));
  if (run.config.contains("trainable_stages"))
    row("trainable stages", run.config["trainable_stages"].is_array() && run.config["trainable_stages"].empty()
                                ? "none (head only)"
                                : json_text(run.config["trainable_stages"]));
  os << "</tbody>\n</table>\n";
  return os.str();
}

}  // namespace

std::string run_report_html(const std::string& run_dir) {
  RunData run = read_run(run_dir);
  const std::string name = report::display_name(run_dir);
  const int64_t best = best_epoch(run.epochs);
  double best_val = std::numeric_limits<double>::quiet_NaN();
  for (const auto& r : run.epochs)
    if (r.epoch == best) best_val = r.val_accuracy;
  std::ostringstream os;
  os << html::page_begin("graft report: " + name);
  os << "<h1>Run " << escape(name) << "</h1>\n<div class=\"path\">"
     << escape(fs::absolute(run_dir).lexically_normal().string()) << "</div>\n<div class=\"cards\" id=\"summary\">\n";
  // A run whose loop's epochs are not options.epochs (face: the fine-tune's) says so.
  const std::string planned =
      run.config.contains("loop_epochs") ? json_text(run.config["loop_epochs"]) : run.option("epochs");
  if (!run.option("task").empty()) os << card("task", run.option("task"), "");
  os << card("backbone", run.option("backbone"), "");
  os << card("strategy", run.option("strategy"), "");
  const std::string weights = run.option("weights");
  os << card("source weights", weights.empty() ? "none" : fs::path(weights).filename().string(), weights);
  os << card("epochs", std::to_string(run.epochs.size()) + (planned.empty() ? "" : " / " + planned), "");
  if (best > 0) os << card("best epoch", std::to_string(best), "the epoch whose weights were kept");
  if (std::isfinite(best_val)) os << card("validation accuracy", html::percent(best_val), "at the best epoch");
  if (run.test) os << card("test accuracy", html::percent(run.test->accuracy), "");
  if (run.test && std::isfinite(run.test->top5)) os << card("test top-5", html::percent(run.test->top5), "");
  os << card("training time", html::duration(training_seconds(run.epochs)), "sum of metrics.csv's seconds");
  os << "</div>\n";

  os << "<section id=\"curves\">\n<h2>Training curves</h2>\n" << report::curves(run.epochs, "plot-")
     << "</section>\n";

  os << "<section id=\"test\">\n<h2>Test set</h2>\n";
  if (run.test) {
    const TestMetrics& t = *run.test;
    os << "<p>" << t.count << " test images: accuracy <b>" << html::percent(t.accuracy) << "</b>";
    if (std::isfinite(t.top5)) os << ", top-5 " << html::percent(t.top5);
    if (std::isfinite(t.loss)) os << ", loss " << html::num(t.loss);
    os << ".</p>\n<div class=\"charts\">\n" << html::heat_map(t.confusion, t.classes, "confusion")
       << "<div>\n<h3>Per class</h3>\n" << per_class_table(t) << "</div>\n</div>\n";
  } else {
    os << "<p class=\"note\">This run has no test_metrics.json (train with --test, or run graft eval).</p>\n";
  }
  os << "</section>\n";
  os << calibration_section(run);
  os << wrong_examples(run);
  os << "<section id=\"configuration\">\n<h2>Configuration</h2>\n" << config_table(run) << "</section>\n";
  os << "<footer>Written by graft " << escape(json_text(run.config.value("graft_version", nlohmann::json())))
     << " from config.json, metrics.csv" << (run.test ? ", test_metrics.json" : "")
     << (run.predictions ? ", test_predictions.csv" : "") << (run.reliability ? ", calibration.json" : "")
     << ". Regenerate with: graft report "
     << escape(run_dir) << "</footer>\n";
  os << html::page_end();
  return os.str();
}

std::string write_run_report(const std::string& run_dir) {
  return html::write_report_page(run_dir, run_report_html(run_dir));
}

std::string write_report(const std::string& dir) {
  return is_search_dir(dir) ? write_search_report(dir) : write_run_report(dir);
}

}  // namespace graft
