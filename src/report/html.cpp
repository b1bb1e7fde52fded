#include "graft/report/html.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/data/image_header.h"
#include "graft/data/image_set.h"

namespace fs = std::filesystem;

namespace graft::html {

std::string escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string num(double value, int digits) {
  if (!std::isfinite(value)) return "\xE2\x80\x93";  // en dash
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*g", digits, value);
  return buf;
}

std::string percent(double fraction) {
  if (!std::isfinite(fraction)) return "\xE2\x80\x93";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * fraction);
  return buf;
}

std::string duration(double seconds) {
  if (!std::isfinite(seconds)) return "\xE2\x80\x93";
  char buf[64];
  if (seconds < 10) {
    std::snprintf(buf, sizeof buf, "%.2f s", seconds);
  } else if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  } else if (seconds < 3600) {
    long s = std::lround(seconds);
    std::snprintf(buf, sizeof buf, "%ld min %02ld s", s / 60, s % 60);
  } else {
    long m = std::lround(seconds / 60);
    std::snprintf(buf, sizeof buf, "%ld h %02ld min", m / 60, m % 60);
  }
  return buf;
}

std::string page_begin(const std::string& title) {
  // System fonts only: the page must open offline and load nothing.
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<link rel=\"icon\" href=\"data:,\">\n<title>" +
         escape(title) +
         "</title>\n<style>\n"
         "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
         "margin:24px auto;max-width:1320px;padding:0 16px;color:#1f2328;background:#fff}\n"
         "h1{font-size:1.5em;margin:0 0 4px}h3{font-size:1em;margin:0 0 6px}h2{font-size:1.15em;margin:28px 0 8px;"
         "border-bottom:1px solid #d0d7de;padding-bottom:4px}\n"
         ".path{color:#57606a;font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.85em;"
         "word-break:break-all}\n"
         ".cards{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0}"
         ".card{border:1px solid #d0d7de;border-radius:6px;padding:6px 12px;min-width:110px}"
         ".card .k{color:#57606a;font-size:.75em;text-transform:uppercase;letter-spacing:.04em}"
         ".card .v{font-size:1.1em;font-weight:600;word-break:break-all}\n"
         ".charts{display:flex;flex-wrap:wrap;gap:12px}"
         "svg{background:#fff;border:1px solid #eaeef2;border-radius:6px}"
         "svg text{font-family:inherit}\n"
         "table{border-collapse:collapse;font-size:.9em;margin:4px 0}"
         "th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}"
         "th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
         "td.mono{font-family:ui-monospace,'DejaVu Sans Mono',monospace;word-break:break-all}\n"
         ".note{color:#57606a;font-style:italic}\n"
         ".thumbs{display:flex;flex-wrap:wrap;gap:10px}"
         "figure{margin:0;width:132px;border:1px solid #d0d7de;border-radius:6px;padding:6px;"
         "text-align:center}figure img{image-rendering:auto;background:#f6f8fa}"
         "figcaption{font-size:.75em;line-height:1.3;word-break:break-word}"
         "figcaption .wrong{color:#cf222e;font-weight:600}"
         "figure img.cam{display:block;margin:4px auto 0}"
         "figure.chart-figure{width:auto;max-width:440px;border:0;padding:0;text-align:left}"
         "figure.chart-figure figcaption{font-size:.85em;margin-top:4px}\n"
         "tr.best td{background:#dafbe1}\n"
         "footer{margin:32px 0 8px;color:#57606a;font-size:.8em}\n"
         "</style>\n</head>\n<body>\n";
}

std::string page_end() { return "</body>\n</html>\n"; }

std::string palette(size_t i) {
  static const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kColors[i % 10];
}

std::string write_report_page(const std::string& dir, const std::string& page) {
  const std::string path = (std::filesystem::path(dir) / "report.html").string();
  write_file_atomic(path, page);
  return path;
}

namespace {

/// A number for SVG coordinates: one decimal, no exponent.
std::string coord(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

/// A tick label: short, without floating-point noise (0.30000000000000004).
std::string tick_label(double v, double step) {
  if (std::fabs(v) < step * 1e-6) v = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

/// A "nice" step (1, 2 or 5 times a power of ten) near range / target.
double nice_step(double range, int target) {
  if (!(range > 0)) return 1;
  double raw = range / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / mag;
  double nice = f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10;
  return nice * mag;
}

/// At most `max_chars` UTF-8 code points, with "…" when cut.
std::string shorten(const std::string& s, size_t max_chars) {
  size_t chars = 0, i = 0;
  while (i < s.size()) {
    if (chars == max_chars) return s.substr(0, i) + "\xE2\x80\xA6";
    unsigned char c = static_cast<unsigned char>(s[i]);
    i += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    ++chars;
  }
  return s;
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string svg_open(const std::string& id, const std::string& cls, int w, int h,
                     const std::string& label) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"" + escape(id) + "\" class=\"" + cls +
         "\" width=\"" + std::to_string(w) + "\" height=\"" + std::to_string(h) +
         "\" viewBox=\"0 0 " + std::to_string(w) + " " + std::to_string(h) +
         "\" role=\"img\" aria-label=\"" + escape(label) + "\">\n";
}

std::string text_el(double x, double y, const std::string& text, const std::string& attrs) {
  return "<text x=\"" + coord(x) + "\" y=\"" + coord(y) + "\" " + attrs + ">" + escape(text) +
         "</text>\n";
}

/// Blues, as in matplotlib: white to dark blue over [0, 1].
std::string blue(double t) {
  static const double kStops[][3] = {{247, 251, 255}, {198, 219, 239}, {107, 174, 214},
                                     {33, 113, 181},  {8, 48, 107}};
  t = std::min(1.0, std::max(0.0, t));
  double pos = t * 4;
  int i = std::min(3, static_cast<int>(pos));
  double f = pos - i;
  char buf[16];
  int rgb[3];
  for (int k = 0; k < 3; ++k)
    rgb[k] = static_cast<int>(std::lround(kStops[i][k] + f * (kStops[i + 1][k] - kStops[i][k])));
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  return buf;
}

}  // namespace

namespace {

struct Legend {
  std::vector<std::pair<double, double>> at;  ///< each entry's (x, baseline y)
  int height = 0;                             ///< of the whole chart
};

// The legend goes right-aligned on the title line when it fits there, else
// in rows under the chart, which then grows to hold them. `ml`, `mr`: the
// plot's left and right margins.
Legend place_legend(const std::vector<std::string>& names, const ChartOptions& o, double ml, double mr) {
  std::vector<double> widths;
  double total = 0;
  for (const auto& name : names) {
    widths.push_back(24 + 6.5 * static_cast<double>(utf8_length(shorten(name, 24))) + 10);
    total += widths.back();
  }
  const bool on_top = ml + 8.0 * static_cast<double>(utf8_length(o.title)) + total <= o.width - mr;
  Legend legend;
  double bottom = o.height;
  double x = on_top ? o.width - mr - total : ml, y = on_top ? 20 : o.height + 6;
  for (size_t k = 0; k < names.size(); ++k) {
    if (!on_top && x > ml && x + widths[k] > o.width - mr) {
      x = ml;
      y += 16;
    }
    legend.at.emplace_back(x, y);
    x += widths[k];
    if (!on_top) bottom = y + 8;
  }
  legend.height = static_cast<int>(std::ceil(bottom));
  return legend;
}

}  // namespace

std::string line_chart(const std::vector<Series>& series, const ChartOptions& o) {
  const double ml = 58, mr = 14, mt = 34, mb = 44;
  const double pw = o.width - ml - mr, ph = o.height - mt - mb;
  // The finite points of each series; a series without any is left out.
  struct Line {
    std::string name, color;
    std::vector<std::pair<double, double>> pts;
  };
  std::vector<Line> lines;
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin;
  double ymin = xmin, ymax = -xmin;
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    Line line{s.name, s.color.empty() ? palette(k) : s.color, {}};
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      line.pts.emplace_back(s.x[i], s.y[i]);
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
    if (!line.pts.empty()) lines.push_back(std::move(line));
  }
  std::vector<std::string> names;
  for (const auto& line : lines) names.push_back(line.name);
  const Legend legend = place_legend(names, o, ml, mr);
  const std::vector<std::pair<double, double>>& legend_at = legend.at;
  const int height = legend.height;

  std::ostringstream os;
  os << svg_open(o.id, "chart line-chart", o.width, height, o.title);
  os << text_el(ml, 20, o.title, "font-size=\"14\" font-weight=\"600\" fill=\"#1f2328\"");
  if (lines.empty()) {
    os << text_el(o.width / 2.0, o.height / 2.0, "no data",
                  "class=\"no-data\" text-anchor=\"middle\" fill=\"#57606a\"");
    os << "</svg>\n";
    return os.str();
  }
  // Ranges and ticks.
  if (xmax == xmin) {
    xmin -= 0.5;
    xmax += 0.5;
  }
  double ylo, yhi, ystep;
  if (o.y_unit && ymin >= 0 && ymax <= 1) {
    ylo = 0;
    yhi = 1;
    ystep = 0.2;
  } else {
    ylo = o.y_from_zero ? std::min(0.0, ymin) : ymin;
    yhi = ymax;
    if (yhi <= ylo) yhi = ylo + (ylo == 0 ? 1 : std::fabs(ylo) * 0.1);
    ystep = nice_step(yhi - ylo, 5);
    ylo = std::floor(ylo / ystep + 1e-9) * ystep;
    yhi = std::ceil(yhi / ystep - 1e-9) * ystep;
  }
  auto sx = [&](double x) { return ml + (x - xmin) / (xmax - xmin) * pw; };
  auto sy = [&](double y) { return mt + ph - (y - ylo) / (yhi - ylo) * ph; };
  os << "<g class=\"grid\" stroke=\"#eaeef2\" stroke-width=\"1\">\n";
  const int yticks = static_cast<int>(std::lround((yhi - ylo) / ystep));
  for (int i = 0; i <= yticks; ++i) {
    double y = sy(ylo + i * ystep);
    os << "<line x1=\"" << coord(ml) << "\" x2=\"" << coord(ml + pw) << "\" y1=\"" << coord(y)
       << "\" y2=\"" << coord(y) << "\"/>\n";
  }
  os << "</g>\n<g class=\"axis\" font-size=\"11\" fill=\"#57606a\">\n";
  for (int i = 0; i <= yticks; ++i) {
    double v = ylo + i * ystep;
    os << text_el(ml - 6, sy(v) + 4, tick_label(v, ystep), "text-anchor=\"end\"");
  }
  double xstep = nice_step(xmax - xmin, 8);
  if (o.x_integer) xstep = std::max(1.0, std::round(xstep));
  for (double v = std::ceil(xmin / xstep - 1e-9) * xstep; v <= xmax + 1e-9; v += xstep)
    os << text_el(sx(v), mt + ph + 16, tick_label(v, xstep), "text-anchor=\"middle\"");
  os << text_el(ml + pw / 2, o.height - 8, o.x_label, "text-anchor=\"middle\" fill=\"#1f2328\"");
  os << "<text transform=\"translate(14," << coord(mt + ph / 2)
     << ") rotate(-90)\" text-anchor=\"middle\" fill=\"#1f2328\">" << escape(o.y_label)
     << "</text>\n</g>\n";
  os << "<rect x=\"" << coord(ml) << "\" y=\"" << coord(mt) << "\" width=\"" << coord(pw)
     << "\" height=\"" << coord(ph) << "\" fill=\"none\" stroke=\"#8c959f\"/>\n";
  for (const Line& line : lines) {
    os << "<polyline class=\"series\" data-series=\"" << escape(line.name) << "\" fill=\"none\" stroke=\""
       << line.color << "\" stroke-width=\"2\" stroke-linejoin=\"round\" points=\"";
    for (size_t i = 0; i < line.pts.size(); ++i)
      os << (i ? " " : "") << coord(sx(line.pts[i].first)) << "," << coord(sy(line.pts[i].second));
    os << "\"/>\n";
    if (line.pts.size() <= 60) {
      os << "<g class=\"markers\" fill=\"" << line.color << "\">\n";
      for (const auto& p : line.pts)
        os << "<circle cx=\"" << coord(sx(p.first)) << "\" cy=\"" << coord(sy(p.second))
           << "\" r=\"2.6\"><title>" << escape(line.name) << ", " << escape(o.x_label) << " "
           << tick_label(p.first, 1) << ": " << escape(num(p.second, 5)) << "</title></circle>\n";
      os << "</g>\n";
    }
  }
  os << "<g class=\"legend\" font-size=\"11\" fill=\"#1f2328\">\n";
  for (size_t k = 0; k < lines.size(); ++k) {
    const auto [x, y] = legend_at[k];
    os << "<line x1=\"" << coord(x) << "\" x2=\"" << coord(x + 14) << "\" y1=\"" << coord(y - 4)
       << "\" y2=\"" << coord(y - 4) << "\" stroke=\"" << lines[k].color << "\" stroke-width=\"2.5\"/>\n";
    os << text_el(x + 18, y, shorten(lines[k].name, 24), "");
  }
  os << "</g>\n</svg>\n";
  return os.str();
}

std::string heat_map(const std::vector<std::vector<int64_t>>& counts,
                     const std::vector<std::string>& names, const std::string& id) {
  const size_t n = counts.size();
  const double cs = n == 0 ? 40 : std::min(48.0, std::max(8.0, 520.0 / static_cast<double>(n)));
  const bool labels = cs >= 10;  // below that, class names only in tooltips
  size_t longest = 1;
  std::vector<std::string> shown;
  for (size_t i = 0; i < n; ++i) {
    shown.push_back(shorten(i < names.size() ? names[i] : std::to_string(i), 18));
    longest = std::max(longest, utf8_length(shown.back()));
  }
  const double label_w = labels ? 6.5 * static_cast<double>(longest) + 8 : 4;
  const double ml = 26 + label_w, mt = 34;
  const double side = cs * static_cast<double>(n);
  const double mb = (labels ? label_w * 0.72 : 4) + 34, mr = 78;
  const std::string title = "Confusion matrix";
  const int w = static_cast<int>(std::ceil(std::max(ml + side + mr, 16 + 8.5 * title.size())));
  const int h = static_cast<int>(std::ceil(mt + side + mb));
  std::ostringstream os;
  os << svg_open(id, "chart heat-map", w, h, "confusion matrix");
  os << text_el(8, 20, title, "font-size=\"14\" font-weight=\"600\" fill=\"#1f2328\"");
  os << "<g class=\"cells\">\n";
  for (size_t r = 0; r < n; ++r) {
    int64_t row_sum = 0;
    for (int64_t v : counts[r]) row_sum += v;
    for (size_t c = 0; c < counts[r].size(); ++c) {
      const int64_t v = counts[r][c];
      const double share = row_sum > 0 ? static_cast<double>(v) / static_cast<double>(row_sum) : 0;
      const double x = ml + cs * static_cast<double>(c), y = mt + cs * static_cast<double>(r);
      os << "<rect class=\"cell" << (r == c ? " diag" : "") << "\" data-row=\"" << r
         << "\" data-col=\"" << c << "\" data-count=\"" << v << "\" x=\"" << coord(x) << "\" y=\""
         << coord(y) << "\" width=\"" << coord(cs) << "\" height=\"" << coord(cs) << "\" fill=\""
         << blue(share) << "\" stroke=\"#fff\" stroke-width=\"0.5\"><title>true "
         << escape(r < names.size() ? names[r] : std::to_string(r)) << ", predicted "
         << escape(c < names.size() ? names[c] : std::to_string(c)) << ": " << v << " ("
         << escape(percent(share)) << " of the class)</title></rect>\n";
      const std::string text = std::to_string(v);
      const double fs = std::min(12.0, cs / (0.62 * static_cast<double>(text.size()) + 0.7));
      if (fs >= 7)
        os << "<text class=\"count\" x=\"" << coord(x + cs / 2) << "\" y=\"" << coord(y + cs / 2 + fs * 0.35)
           << "\" font-size=\"" << coord(fs) << "\" text-anchor=\"middle\" pointer-events=\"none\" fill=\""
           << (share > 0.5 ? "#fff" : "#1f2328") << "\">" << text << "</text>\n";
    }
  }
  os << "</g>\n<g class=\"labels\" font-size=\"11\" fill=\"#1f2328\">\n";
  if (labels) {
    for (size_t i = 0; i < n; ++i) {
      const double mid = cs * (static_cast<double>(i) + 0.5);
      os << text_el(ml - 5, mt + mid + 4, shown[i], "class=\"row-label\" text-anchor=\"end\"");
      os << "<text class=\"col-label\" text-anchor=\"end\" transform=\"translate(" << coord(ml + mid + 4)
         << "," << coord(mt + side + 8) << ") rotate(-45)\">" << escape(shown[i]) << "</text>\n";
    }
  }
  os << "<text transform=\"translate(12," << coord(mt + side / 2)
     << ") rotate(-90)\" text-anchor=\"middle\" font-weight=\"600\">true class</text>\n";
  os << text_el(ml + side / 2, h - 8, "predicted class", "text-anchor=\"middle\" font-weight=\"600\"");
  os << "</g>\n";
  // Colour scale: share of the true class.
  const double bx = ml + side + 16, bh = std::max(side, 60.0);
  os << "<defs><linearGradient id=\"" << escape(id) << "-scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (int k = 0; k <= 4; ++k)
    os << "<stop offset=\"" << k * 25 << "%\" stop-color=\"" << blue(k / 4.0) << "\"/>";
  os << "</linearGradient></defs>\n<g class=\"scale\" font-size=\"10\" fill=\"#57606a\">\n"
     << "<rect x=\"" << coord(bx) << "\" y=\"" << coord(mt) << "\" width=\"12\" height=\"" << coord(bh)
     << "\" fill=\"url(#" << escape(id) << "-scale)\" stroke=\"#8c959f\"/>\n";
  for (int k = 0; k <= 2; ++k)
    os << text_el(bx + 16, mt + bh - k * bh / 2 + 3, std::to_string(k * 50) + "%", "");
  os << "<text transform=\"translate(" << coord(bx + 52) << "," << coord(mt + bh / 2)
     << ") rotate(-90)\" text-anchor=\"middle\">share of true class</text>\n</g>\n</svg>\n";
  return os.str();
}

std::string bar_chart(const std::vector<Bar>& bars, const std::string& id, const std::string& title,
                      double max_value) {
  const double row = 22, mt = 34, label_w = 230, bar_w = 380, mr = 70;
  const int w = static_cast<int>(label_w + bar_w + mr);
  const int h = static_cast<int>(mt + row * static_cast<double>(std::max<size_t>(bars.size(), 1)) + 12);
  if (!(max_value > 0)) {
    max_value = 0;
    for (const auto& b : bars)
      if (std::isfinite(b.value)) max_value = std::max(max_value, b.value);
    if (!(max_value > 0)) max_value = 1;
  }
  std::ostringstream os;
  os << svg_open(id, "chart bar-chart", w, h, title);
  os << text_el(8, 20, title, "font-size=\"14\" font-weight=\"600\" fill=\"#1f2328\"");
  for (size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    const double y = mt + row * static_cast<double>(i);
    os << text_el(label_w - 8, y + row / 2 + 4, shorten(b.label, 34),
                  "class=\"bar-label\" font-size=\"11\" text-anchor=\"end\" fill=\"#1f2328\"");
    if (std::isfinite(b.value)) {
      const double len = std::max(0.0, std::min(1.0, b.value / max_value)) * bar_w;
      os << "<rect class=\"bar" << (b.highlight ? " best" : "") << "\" data-value=\"" << num(b.value, 6)
         << "\" x=\"" << coord(label_w) << "\" y=\"" << coord(y + 3) << "\" width=\"" << coord(len)
         << "\" height=\"" << coord(row - 6) << "\" fill=\"" << (b.highlight ? "#2ca02c" : "#1f77b4")
         << "\"><title>" << escape(b.label) << ": " << escape(num(b.value, 5)) << "</title></rect>\n";
      os << text_el(label_w + len + 4, y + row / 2 + 4, num(b.value, 4), "font-size=\"11\" fill=\"#1f2328\"");
    } else {
      os << text_el(label_w + 4, y + row / 2 + 4, "no score", "font-size=\"11\" fill=\"#57606a\"");
    }
  }
  os << "</svg>\n";
  return os.str();
}

std::string reliability_chart(const std::vector<ReliabilitySeries>& series, const std::string& id,
                              const std::string& title) {
  ChartOptions o;
  o.title = title;
  o.width = 420;
  o.height = 320;
  const double ml = 58, mr = 14, mt = 34, mb = 44;
  const double pw = o.width - ml - mr, ph = o.height - mt - mb;
  std::vector<std::string> names;
  for (const auto& s : series) names.push_back(s.name);
  const Legend legend = place_legend(names, o, ml, mr);
  auto sx = [&](double x) { return ml + x * pw; };
  auto sy = [&](double y) { return mt + ph - y * ph; };
  std::ostringstream os;
  os << svg_open(id, "chart reliability", o.width, legend.height, title);
  os << text_el(ml, 20, title, "font-size=\"14\" font-weight=\"600\" fill=\"#1f2328\"");
  os << "<g class=\"grid\" stroke=\"#eaeef2\" stroke-width=\"1\">\n";
  for (int i = 0; i <= 5; ++i)
    os << "<line x1=\"" << coord(ml) << "\" x2=\"" << coord(ml + pw) << "\" y1=\"" << coord(sy(i / 5.0))
       << "\" y2=\"" << coord(sy(i / 5.0)) << "\"/>\n";
  os << "</g>\n<g class=\"axis\" font-size=\"11\" fill=\"#57606a\">\n";
  for (int i = 0; i <= 5; ++i) {
    os << text_el(ml - 6, sy(i / 5.0) + 4, tick_label(i / 5.0, 0.2), "text-anchor=\"end\"");
    os << text_el(sx(i / 5.0), mt + ph + 16, tick_label(i / 5.0, 0.2), "text-anchor=\"middle\"");
  }
  os << text_el(ml + pw / 2, o.height - 8, "confidence (top probability)", "text-anchor=\"middle\" fill=\"#1f2328\"");
  os << "<text transform=\"translate(14," << coord(mt + ph / 2)
     << ") rotate(-90)\" text-anchor=\"middle\" fill=\"#1f2328\">accuracy</text>\n</g>\n";
  const size_t bins = series.empty() ? 0 : series.front().bins.size();
  const double bw = bins ? pw / static_cast<double>(bins) : pw;
  const double slot = (bw - 2) / static_cast<double>(std::max<size_t>(series.size(), 1));
  os << "<g class=\"bars\">\n";
  for (size_t k = 0; k < series.size(); ++k) {
    const ReliabilitySeries& s = series[k];
    const std::string color = s.color.empty() ? palette(k) : s.color;
    for (size_t b = 0; b < s.bins.size() && b < bins; ++b) {
      const ReliabilityBin& bin = s.bins[b];
      if (bin.count == 0) continue;
      const double acc = std::min(1.0, std::max(0.0, bin.accuracy));
      const double x = ml + bw * static_cast<double>(b) + 1 + slot * static_cast<double>(k);
      os << "<rect class=\"bar\" data-series=\"" << escape(s.name) << "\" data-bin=\"" << b
         << "\" data-count=\"" << bin.count << "\" data-accuracy=\"" << num(bin.accuracy, 6) << "\" x=\""
         << coord(x) << "\" y=\"" << coord(sy(acc)) << "\" width=\"" << coord(slot) << "\" height=\""
         << coord(acc * ph) << "\" fill=\"" << color << "\" fill-opacity=\"0.85\"><title>" << escape(s.name)
         << ", confidence " << escape(num(static_cast<double>(b) / bins, 3)) << "\xE2\x80\x93"
         << escape(num(static_cast<double>(b + 1) / bins, 3)) << ": " << bin.count << " inputs, mean confidence "
         << escape(percent(bin.confidence)) << ", accuracy " << escape(percent(bin.accuracy))
         << "</title></rect>\n";
    }
  }
  os << "</g>\n<line class=\"diagonal\" x1=\"" << coord(sx(0)) << "\" y1=\"" << coord(sy(0)) << "\" x2=\""
     << coord(sx(1)) << "\" y2=\"" << coord(sy(1))
     << "\" stroke=\"#57606a\" stroke-width=\"1.2\" stroke-dasharray=\"5 4\"><title>perfect calibration: "
        "accuracy = confidence</title></line>\n";
  os << "<rect x=\"" << coord(ml) << "\" y=\"" << coord(mt) << "\" width=\"" << coord(pw) << "\" height=\""
     << coord(ph) << "\" fill=\"none\" stroke=\"#8c959f\"/>\n";
  os << "<g class=\"legend\" font-size=\"11\" fill=\"#1f2328\">\n";
  for (size_t k = 0; k < series.size(); ++k) {
    const auto [x, y] = legend.at[k];
    os << "<rect x=\"" << coord(x) << "\" y=\"" << coord(y - 9) << "\" width=\"14\" height=\"9\" fill=\""
       << (series[k].color.empty() ? palette(k) : series[k].color) << "\"/>\n";
    os << text_el(x + 18, y, shorten(series[k].name, 24), "");
  }
  os << "</g>\n</svg>\n";
  return os.str();
}

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                 uint32_t(uint8_t(bytes[i + 2]));
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

struct Thumbnails::Idx {
  IdxImages images;
};

Thumbnails::Thumbnails(int size) : size_(size) {}
Thumbnails::~Thumbnails() = default;

std::string Thumbnails::uri(const std::string& path) {
  cv::Mat img = image(path);
  if (img.empty() || img.cols <= 0 || img.rows <= 0) return "";
  if (img.channels() == 3) cv::cvtColor(img, img, cv::COLOR_RGB2BGR);  // imencode takes BGR
  const double scale = static_cast<double>(size_) / std::max(img.cols, img.rows);
  cv::Mat small;
  cv::resize(img, small,
             cv::Size(std::max(1, static_cast<int>(std::lround(img.cols * scale))),
                      std::max(1, static_cast<int>(std::lround(img.rows * scale)))),
             0, 0, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  std::vector<uchar> jpeg;
  if (!cv::imencode(".jpg", small, jpeg, {cv::IMWRITE_JPEG_QUALITY, 85})) return "";
  return "data:image/jpeg;base64," + base64(std::string(jpeg.begin(), jpeg.end()));
}

cv::Mat Thumbnails::image(const std::string& path) {
  cv::Mat img;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    // As the model saw it, through the reader every verb uses (GIF too):
    // EXIF orientation ignored, alpha dropped. An image over the pixel limit
    // (or not an image) gets none.
    try {
      const std::string bytes = read_regular_file(path);
      const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
      img = decode_image(std::vector<uint8_t>(data, data + bytes.size()), path);
    } catch (const std::exception&) {
      return cv::Mat();
    }
  } else {
    const size_t hash = path.rfind('#');
    if (hash == std::string::npos || hash + 1 == path.size()) return cv::Mat();
    const std::string file = path.substr(0, hash), index = path.substr(hash + 1);
    if (index.find_first_not_of("0123456789") != std::string::npos || index.size() > 12) return cv::Mat();
    auto it = idx_.find(file);
    if (it == idx_.end()) {
      std::shared_ptr<Idx> loaded;
      if (fs::is_regular_file(file, ec)) {
        try {
          loaded = std::make_shared<Idx>();
          loaded->images = read_idx_images(file);
        } catch (const Error&) {
          loaded.reset();  // not an IDX image file: no thumbnails from it
        }
      }
      it = idx_.emplace(file, loaded).first;
    }
    if (!it->second) return cv::Mat();
    const IdxImages& im = it->second->images;
    const int64_t i = std::stoll(index);
    if (i >= im.count) return cv::Mat();
    const size_t plane = static_cast<size_t>(im.rows * im.cols);
    cv::Mat grey(static_cast<int>(im.rows), static_cast<int>(im.cols), CV_8UC1,
                 const_cast<uint8_t*>(im.pixels.data() + plane * static_cast<size_t>(i)));
    img = grey.clone();
  }
  return img;
}

}  // namespace graft::html
