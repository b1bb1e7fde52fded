#pragma once
/// Building blocks of graft's HTML pages: escaping, number formatting, SVG
/// charts drawn by hand, and inline JPEG thumbnails. Every page they make is
/// self-contained: no scripts, fonts, stylesheets or images from elsewhere.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graft/eval/reliability.h"

namespace cv {
class Mat;
}

namespace graft::html {

/// Text made safe for HTML/SVG element content and quoted attribute values
/// (& < > " ' replaced by entities).
std::string escape(const std::string& text);

/// A number for people: %.4g, or "–" for NaN/inf.
std::string num(double value, int digits = 4);
/// A fraction in [0, 1] as a percentage with one decimal ("93.4%"), or "–".
std::string percent(double fraction);
/// A duration: "0.42 s", "12.3 s", "4 min 05 s", "1 h 02 min".
std::string duration(double seconds);

/// The start of a page (doctype, head with inline CSS, body) and its end.
std::string page_begin(const std::string& title);
std::string page_end();
/// Writes `page` as DIR/report.html, atomically; returns the path.
std::string write_report_page(const std::string& dir, const std::string& page);

/// One line of a line chart. Non-finite y values leave a gap: the polyline is
/// drawn only through finite points, one `points` pair per finite point.
struct Series {
  std::string name;
  std::vector<double> x, y;
  std::string color;  // CSS colour; empty: picked from the palette by index
};

struct ChartOptions {
  std::string id;        // the <svg> element's id
  std::string title, x_label, y_label;
  int width = 420, height = 280;
  bool y_from_zero = true;  // the y axis starts at 0 (else at the data's minimum)
  bool y_unit = false;      // the y axis spans [0, 1] (accuracies) when the data fit
  bool x_integer = true;    // x ticks at whole numbers (epochs)
};

/// A line chart as an <svg> element: axes with ticks, one
/// `<polyline class="series" data-series=NAME>` per series with data, a
/// marker circle with a tooltip per point when there are few, and a legend.
/// Without any finite point it says "no data".
std::string line_chart(const std::vector<Series>& series, const ChartOptions& options);

/// A confusion matrix as an <svg> heat map: one
/// `<rect class="cell" data-row=R data-col=C data-count=N>` per cell,
/// coloured by the cell's share of its row (the true class), counts written
/// in cells large enough, class names on both axes, and a colour scale.
std::string heat_map(const std::vector<std::vector<int64_t>>& counts,
                     const std::vector<std::string>& names, const std::string& id);

/// Horizontal bars, one `<rect class="bar" data-value=V>` per entry, in the
/// order given; labels left, values right. Non-finite values get no bar.
struct Bar {
  std::string label;
  double value = 0;
  bool highlight = false;
};
std::string bar_chart(const std::vector<Bar>& bars, const std::string& id, const std::string& title,
                      double max_value);

/// A reliability diagram as an <svg>: x the confidence (top probability)
/// in equal-width bins, y the accuracy; per non-empty bin one
/// `<rect class="bar" data-series=NAME data-bin=B data-count=N
/// data-accuracy=A>` per series (side by side within the bin), a dashed
/// `<line class="diagonal">` where accuracy equals confidence, and a legend.
/// Series: (name, bins, colour); every series has the same number of bins.
struct ReliabilitySeries {
  std::string name;
  std::vector<ReliabilityBin> bins;
  std::string color;
};
std::string reliability_chart(const std::vector<ReliabilitySeries>& series, const std::string& id,
                              const std::string& title);

/// The palette's i-th colour (10 colours, then repeating).
std::string palette(size_t i);

/// Base64 (RFC 4648, with padding).
std::string base64(const std::string& bytes);

/// Thumbnails as `data:image/jpeg;base64,...` URIs, longest side `size`
/// pixels. Keeps the IDX files it has read, so many thumbnails from one test
/// set read it once.
class Thumbnails {
 public:
  explicit Thumbnails(int size = 64);
  ~Thumbnails();
  /// The thumbnail of the image at `path`; "" if it is not a readable image.
  /// `FILE#INDEX` names image INDEX of an IDX file (the MNIST format), as
  /// test_predictions.csv does for IDX test sets.
  std::string uri(const std::string& path);
  /// The image at `path` (or `FILE#INDEX`) as evaluation decodes it: 8-bit,
  /// grey or RGB; empty if it is not a readable image.
  cv::Mat image(const std::string& path);

 private:
  struct Idx;
  int size_;
  std::map<std::string, std::shared_ptr<const Idx>> idx_;
};

}  // namespace graft::html
