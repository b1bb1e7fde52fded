#include "graft/report/report.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "graft/core/files.h"
#include "graft/eval/reliability.h"
#include "graft/report/compare.h"
#include "graft/report/grad_cam.h"
#include "graft/report/html.h"
#include "graft/report/run_data.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace graft {
namespace {

using test::error_of;
using test::TempDir;

const char* kOddClass = "<b>&\"x\"";  // must be escaped wherever it appears

void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// A small PNG: a horizontal gradient, w x h.
std::string write_png(const std::string& path, int w, int h) {
  fs::create_directories(fs::path(path).parent_path());
  cv::Mat img(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img.at<cv::Vec3b>(y, x) = cv::Vec3b(uint8_t(x * 8), uint8_t(y * 8), 128);
  EXPECT_TRUE(cv::imwrite(path, img));
  return path;
}

/// An uncompressed IDX image file of `count` images of rows x cols.
void write_idx(const std::string& path, int count, int rows, int cols) {
  std::string bytes;
  auto be32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) bytes += static_cast<char>((v >> s) & 0xff);
  };
  be32(0x00000803);
  be32(count);
  be32(rows);
  be32(cols);
  for (int i = 0; i < count * rows * cols; ++i) bytes += static_cast<char>(i * 7);
  write_text(path, bytes);
}

std::string config_json(const std::string& out, int epochs) {
  nlohmann::ordered_json j;
  j["graft_version"] = "0.1.0";
  j["options"] = {{"backbone", "resnet18"}, {"strategy", "partial:2"}, {"weights", "/models/resnet18.pth"},
                  {"lr", 0.010000000000000002}, {"epochs", epochs}, {"task", "image"},
                  {"classes", nlohmann::json::array()}, {"out", out}, {"feature_cache", true}};
  j["classes"] = {"cat", kOddClass, "dog"};
  j["counts"] = {{"train", 30}, {"val", 6}, {"test", 25}};
  j["trainable_stages"] = {"layer3", "layer4"};
  return j.dump(2);
}

const char* kMetrics =
    "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,items_per_second\n"
    "1,1.5,0.4,1.4,0.5,0.01,2.5,12\n"
    "2,1.1,0.6,1.2,0.7,0.008,2.25,13\n"
    "3,0.9,0.7,1.0,0.8,0.004,2.5,12\n"
    "4,0.8,0.75,1.1,0.8,0.001,2.75,11\n";

const std::vector<std::vector<int64_t>> kConfusion = {{5, 1, 0}, {2, 7, 1}, {0, 0, 9}};

std::string test_metrics_json() {
  nlohmann::ordered_json j;
  j["count"] = 25;
  j["accuracy"] = 21.0 / 25;
  j["loss"] = 0.5;
  j["per_class"] = nlohmann::json::array();
  j["per_class"].push_back({{"class", "cat"}, {"precision", 5.0 / 7}, {"recall", 5.0 / 6}, {"f1", 0.77}, {"support", 6}});
  j["per_class"].push_back({{"class", kOddClass}, {"precision", 0.875}, {"recall", 0.7}, {"f1", 0.78}, {"support", 10}});
  j["per_class"].push_back({{"class", "dog"}, {"precision", 0.9}, {"recall", 1.0}, {"f1", 0.95}, {"support", 9}});
  j["classes"] = {"cat", kOddClass, "dog"};
  j["confusion"] = kConfusion;
  return j.dump(2);
}

std::string csv_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

/// A complete run directory: config, 4 epochs of 5, test metrics, and
/// predictions with wrong rows of several kinds.
std::string make_run(const std::string& dir) {
  write_text(dir + "/config.json", config_json(dir, 5));
  write_text(dir + "/metrics.csv", kMetrics);
  write_text(dir + "/test_metrics.json", test_metrics_json());
  const std::string a = write_png(dir + "/images/a,1.png", 20, 10);  // a comma: quoted in the CSV
  const std::string b = write_png(dir + "/images/b.png", 16, 16);
  write_idx(dir + "/images/t10k-images-idx3-ubyte", 3, 6, 5);
  std::ostringstream csv;
  csv << "path,label,predicted,confidence\n";
  csv << csv_quote(a) << ",cat," << csv_quote(kOddClass) << ",0.61\n";            // wrong, shown 3rd
  csv << b << "," << csv_quote(kOddClass) << ",dog,0.93\n";                      // wrong, shown 1st
  csv << b << ",dog,dog,0.99\n";                                                  // right
  csv << dir << "/images/missing.png,cat,dog,0.97\n";                             // wrong, no file
  csv << "/nowhere/t10k-images-idx3-ubyte.gz#4,cat,dog,0.96\n";                   // wrong, no IDX file
  csv << dir << "/images/t10k-images-idx3-ubyte#1,dog,cat,0.7\n";                 // wrong, IDX image
  write_text(dir + "/test_predictions.csv", csv.str());
  return dir;
}

size_t count_of(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + needle.size())) ++n;
  return n;
}

/// The element <tag ... id="id" ...>...</tag> (tags of that name not nested).
std::string element(const std::string& html, const std::string& tag, const std::string& id) {
  size_t id_at = html.find("id=\"" + id + "\"");
  if (id_at == std::string::npos) return "";
  size_t begin = html.rfind("<" + tag, id_at);
  size_t end = html.find("</" + tag + ">", id_at);
  if (begin == std::string::npos || end == std::string::npos) return "";
  return html.substr(begin, end + tag.size() + 3 - begin);
}

/// Values of attribute `attr` on every `<tag` in `html`.
std::vector<std::string> attrs(const std::string& html, const std::string& tag, const std::string& attr) {
  std::vector<std::string> out;
  for (size_t at = html.find("<" + tag + " "); at != std::string::npos; at = html.find("<" + tag + " ", at + 1)) {
    size_t close = html.find('>', at);
    std::string el = html.substr(at, close - at);
    size_t a = el.find(" " + attr + "=\"");
    if (a == std::string::npos) continue;
    a += attr.size() + 3;
    out.push_back(el.substr(a, el.find('"', a) - a));
  }
  return out;
}

size_t point_count(const std::string& points) {
  std::istringstream in(points);
  std::string pair;
  size_t n = 0;
  while (in >> pair) n += pair.find(',') != std::string::npos;
  return n;
}

std::string decode_base64(const std::string& b64) {
  std::string bytes;
  auto value = [](char c) -> uint32_t {
    const std::string a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    return static_cast<uint32_t>(a.find(c));
  };
  for (size_t i = 0; i + 3 < b64.size(); i += 4) {
    uint32_t v = (value(b64[i]) << 18) | (value(b64[i + 1]) << 12);
    bytes += static_cast<char>(v >> 16);
    if (b64[i + 2] != '=') {
      v |= value(b64[i + 2]) << 6;
      bytes += static_cast<char>((v >> 8) & 0xff);
    }
    if (b64[i + 3] != '=') bytes += static_cast<char>((v | value(b64[i + 3])) & 0xff);
  }
  return bytes;
}

TEST(RunReport, CurvesHaveOnePointPerEpoch) {
  TempDir tmp;
  std::string html = run_report_html(make_run(tmp / "run"));
  for (const char* id : {"plot-loss", "plot-accuracy"}) {
    std::string svg = element(html, "svg", id);
    ASSERT_FALSE(svg.empty()) << id;
    EXPECT_EQ(attrs(svg, "polyline", "data-series"), (std::vector<std::string>{"train", "validation"})) << id;
    for (const auto& pts : attrs(svg, "polyline", "points")) EXPECT_EQ(point_count(pts), 4u) << id;
    EXPECT_EQ(count_of(svg, "<circle"), 8u) << id;  // a marker per point
  }
  std::string lr = element(html, "svg", "plot-lr");
  ASSERT_EQ(attrs(lr, "polyline", "points").size(), 1u);
  EXPECT_EQ(point_count(attrs(lr, "polyline", "points")[0]), 4u);
  // Summary: 4 of 5 epochs, best epoch 3 (the first with val accuracy 0.8),
  // 10 s of training.
  const size_t cards = html.find("id=\"summary\"");
  std::string summary = html.substr(cards, html.find("id=\"curves\"") - cards);
  EXPECT_NE(summary.find("4 / 5"), std::string::npos) << summary;
  EXPECT_NE(summary.find(">3<"), std::string::npos) << summary;
  EXPECT_NE(summary.find("10.0 s"), std::string::npos) << summary;
  EXPECT_NE(summary.find("84.0%"), std::string::npos) << summary;  // test accuracy
}

TEST(RunReport, RunWithoutValidationDrawsTrainOnly) {
  TempDir tmp;
  std::string dir = tmp / "run";
  write_text(dir + "/config.json", config_json(dir, 2));
  write_text(dir + "/metrics.csv",
             "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,items_per_second\n"
             "1,1.5,0.4,nan,nan,0.01,1,12\n2,1.1,0.6,-nan,nan,0.008,1,13\n");
  std::string html = run_report_html(dir);
  std::string loss = element(html, "svg", "plot-loss");
  EXPECT_EQ(attrs(loss, "polyline", "data-series"), (std::vector<std::string>{"train"}));
  EXPECT_NE(html.find("no test_metrics.json"), std::string::npos);
  EXPECT_NE(html.find("No test_predictions.csv"), std::string::npos);
  EXPECT_EQ(best_epoch(read_metrics_csv(dir + "/metrics.csv")), 2);  // no validation: the last
}

TEST(RunReport, RunWithoutEpochsSaysSo) {
  TempDir tmp;
  std::string dir = tmp / "run";
  write_text(dir + "/config.json", config_json(dir, 2));
  std::string html = run_report_html(dir);
  EXPECT_EQ(count_of(html, "<polyline"), 0u);
  EXPECT_EQ(count_of(html, "class=\"no-data\""), 3u);
  EXPECT_NE(html.find("No epoch finished yet"), std::string::npos);
}

TEST(RunReport, HeatMapCellsAreTheConfusionCounts) {
  TempDir tmp;
  std::string html = run_report_html(make_run(tmp / "run"));
  std::string svg = element(html, "svg", "confusion");
  ASSERT_FALSE(svg.empty());
  auto rows = attrs(svg, "rect", "data-row"), cols = attrs(svg, "rect", "data-col"),
       counts = attrs(svg, "rect", "data-count");
  ASSERT_EQ(counts.size(), 9u);
  ASSERT_EQ(rows.size(), 9u);
  std::vector<std::vector<int64_t>> seen(3, std::vector<int64_t>(3, -1));
  for (size_t i = 0; i < counts.size(); ++i) seen[std::stoi(rows[i])][std::stoi(cols[i])] = std::stoll(counts[i]);
  EXPECT_EQ(seen, kConfusion);
  // The counts are written in the cells, and the class names label the axes.
  EXPECT_EQ(count_of(svg, "class=\"count\""), 9u);
  EXPECT_EQ(count_of(svg, "class=\"row-label\""), 3u);
  EXPECT_EQ(count_of(svg, "class=\"col-label\""), 3u);
  // Colour is the share of the row: the full diagonal cell of "dog" is darkest.
  auto fills = attrs(svg, "rect", "fill");
  EXPECT_EQ(fills[8], "#08306b");
  EXPECT_EQ(fills[2], "#f7fbff");  // zero
}

TEST(RunReport, PerClassTableAndConfigurationRows) {
  TempDir tmp;
  std::string html = run_report_html(make_run(tmp / "run"));
  std::string table = element(html, "table", "per-class");
  ASSERT_FALSE(table.empty());
  std::string body = table.substr(table.find("<tbody>"), table.find("</tbody>") - table.find("<tbody>"));
  EXPECT_EQ(count_of(body, "<tr>"), 3u);
  EXPECT_NE(body.find("<td>cat</td>"), std::string::npos);
  EXPECT_NE(body.find(">0.875<"), std::string::npos);
  EXPECT_NE(table.find("macro average"), std::string::npos);
  std::string config = element(html, "table", "config");
  // graft version + 9 options + classes + 3 counts + trainable stages.
  EXPECT_EQ(count_of(config, "<tr>") - 1, 15u);
  EXPECT_NE(config.find("<th>strategy</th><td class=\"mono\">partial:2</td>"), std::string::npos);
  EXPECT_NE(config.find("<td class=\"mono\">0.01</td>"), std::string::npos);  // not 0.010000000000000002
  EXPECT_NE(config.find("layer3, layer4"), std::string::npos);
}

TEST(RunReport, EscapesNamesFromUsers) {
  TempDir tmp;
  std::string html = run_report_html(make_run(tmp / "run"));
  EXPECT_EQ(html.find(kOddClass), std::string::npos);
  EXPECT_EQ(html.find("&\"x\""), std::string::npos);
  // In the table, heat-map labels, config and captions.
  EXPECT_GE(count_of(html, "&lt;b&gt;&amp;&quot;x&quot;"), 6u);
}

TEST(RunReport, ThumbnailsOfTheMostConfidentlyWrong) {
  TempDir tmp;
  std::string html = run_report_html(make_run(tmp / "run"));
  std::string section = element(html, "section", "wrong-examples");
  ASSERT_FALSE(section.empty());
  auto srcs = attrs(section, "img", "src");
  // Five wrong rows; the missing file and the missing IDX file are skipped.
  ASSERT_EQ(srcs.size(), 3u);
  auto titles = attrs(section, "img", "title");
  EXPECT_NE(titles[0].find("b.png"), std::string::npos);             // 0.93
  EXPECT_NE(titles[1].find("t10k-images-idx3-ubyte#1"), std::string::npos);  // 0.7
  EXPECT_NE(titles[2].find("a,1.png"), std::string::npos);           // 0.61
  const std::string prefix = "data:image/jpeg;base64,";
  std::vector<cv::Size> sizes;
  for (const auto& src : srcs) {
    ASSERT_EQ(src.rfind(prefix, 0), 0u);
    // Decode the base64 JPEG back: 64 px on the longest side.
    const std::string bytes = decode_base64(src.substr(prefix.size()));
    cv::Mat img = cv::imdecode(std::vector<uchar>(bytes.begin(), bytes.end()), cv::IMREAD_COLOR);
    ASSERT_FALSE(img.empty());
    sizes.push_back(img.size());
  }
  EXPECT_EQ(sizes[0], cv::Size(64, 64));
  EXPECT_EQ(sizes[1], cv::Size(53, 64));  // IDX image 6 rows x 5 cols
  EXPECT_EQ(sizes[2], cv::Size(64, 32));
  EXPECT_NE(section.find("5 of 6 test images are misclassified. Shown: the 3 predicted wrong"), std::string::npos)
      << section;
  EXPECT_NE(section.find("2 misclassified test images were skipped"), std::string::npos) << section;
}

// Thumbnails read images as the verbs do: a GIF gets one, in its colours.
TEST(RunReport, ThumbnailOfAGif) {
  TempDir tmp;
  cv::Mat rgb(20, 40, CV_8UC3, cv::Scalar(200, 30, 10));  // R G B
  test::write_bytes(tmp / "red.gif", test::gif_bytes(rgb));
  const std::string uri = html::Thumbnails(64).uri(tmp / "red.gif");
  const std::string prefix = "data:image/jpeg;base64,";
  ASSERT_EQ(uri.rfind(prefix, 0), 0u) << uri.substr(0, 40);
  std::string bytes;
  const std::string a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint32_t v = 0;
  int n = 0;
  for (char c : uri.substr(prefix.size())) {
    if (c == '=') break;
    v = (v << 6) | static_cast<uint32_t>(a.find(c));
    if ((n += 6) >= 8) bytes += static_cast<char>((v >> (n -= 8)) & 0xff);
  }
  cv::Mat img = cv::imdecode(std::vector<uchar>(bytes.begin(), bytes.end()), cv::IMREAD_COLOR);
  ASSERT_EQ(img.size(), cv::Size(64, 32));
  const cv::Vec3b bgr = img.at<cv::Vec3b>(16, 32);
  EXPECT_NEAR(bgr[2], 200, 12);
  EXPECT_NEAR(bgr[1], 30, 12);
  EXPECT_NEAR(bgr[0], 10, 12);
}

TEST(RunReport, IdxTestSetWithoutItsFileSaysSo) {
  TempDir tmp;
  std::string dir = tmp / "run";
  write_text(dir + "/config.json", config_json(dir, 5));
  write_text(dir + "/metrics.csv", kMetrics);
  write_text(dir + "/test_predictions.csv",
             "path,label,predicted,confidence\n/gone/t10k.gz#0,cat,dog,0.9\n/gone/t10k.gz#1,dog,dog,0.9\n");
  std::string section = element(run_report_html(dir), "section", "wrong-examples");
  EXPECT_EQ(count_of(section, "<img"), 0u);
  EXPECT_NE(section.find("an image of an IDX file that cannot be read"), std::string::npos) << section;
}

TEST(RunReport, IsSelfContained) {
  TempDir tmp;
  std::string html = run_report_html(make_run(tmp / "run"));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(count_of(html, "<script"), 0u);
  // The only URL is the SVG namespace, which is a name, not something loaded.
  const std::string ns = "xmlns=\"http://www.w3.org/2000/svg\"";
  for (size_t at = html.find("//"); at != std::string::npos; at = html.find("//", at + 2)) {
    const size_t start = at >= 12 ? at - 12 : 0;
    EXPECT_EQ(html.compare(start, ns.size(), ns), 0) << html.substr(start, 60);
  }
  for (const auto& src : attrs(html, "img", "src")) EXPECT_EQ(src.rfind("data:", 0), 0u);
  for (const auto& href : attrs(html, "link", "href")) EXPECT_EQ(href.rfind("data:", 0), 0u);
}

TEST(RunReport, WriteIsAtomicAndRepeatable) {
  TempDir tmp;
  std::string dir = make_run(tmp / "run");
  EXPECT_EQ(write_run_report(dir), dir + "/report.html");
  std::string first = read_text(dir + "/report.html");
  EXPECT_EQ(first, run_report_html(dir));
  EXPECT_EQ(write_report(dir), dir + "/report.html");  // a run dir, not a search
  EXPECT_EQ(read_text(dir + "/report.html"), first);
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(RunReport, BadInputNamesTheFile) {
  TempDir tmp;
  std::string dir = tmp / "run";
  EXPECT_NE(error_of([&] { run_report_html(dir); }).find("does not exist"), std::string::npos);
  fs::create_directories(dir);
  std::string e = error_of([&] { run_report_html(dir); });
  EXPECT_NE(e.find("has no config.json"), std::string::npos) << e;
  // Each file bad in turn, those before it good (and those after it absent):
  // the message names the file and what is wrong.
  const std::string header = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,items_per_second\n";
  struct Case {
    std::string file, bytes, message;
    std::string good;  // written after the case ("": the file is removed)
  } cases[] = {
      {"config.json", "{\"options\": ", "config.json': not valid JSON", config_json(dir, 2)},
      {"config.json", "{\"classes\": []}", "no \"options\" object", config_json(dir, 2)},
      {"metrics.csv", "", "metrics.csv' is empty", kMetrics},
      {"metrics.csv", "epoch,loss\n1,2\n", "metrics.csv' has no column 'train_loss'", kMetrics},
      {"metrics.csv", header + "1,1.5,0.4,1.4,0.5,0.01,2.5,12\n2,abc,0.6,1.2,0.7,0.008,2.25,13\n",
       "metrics.csv' line 3: train_loss is 'abc' (expected a number)", kMetrics},
      {"metrics.csv", header + "1,1.5,0.4,1.4,0.5,0.01,2.5\n", "line 2 has 7 fields (expected 8", kMetrics},
      {"test_metrics.json",
       "{\"count\": 3, \"accuracy\": 1, \"classes\": [\"a\", \"b\"], \"confusion\": [[1, 0], [0]]}",
       "test_metrics.json': confusion row 1 has 1 entries (expected 2)", test_metrics_json()},
      {"test_predictions.csv", "path,label,predicted,confidence\na.png,cat,dog,high\n",
       "test_predictions.csv' line 2: confidence is 'high'", ""},
      {"test_predictions.csv", "path,label,predicted,confidence\n\"a.png,cat,dog,0.5\n", "quoted field is not closed",
       ""},
  };
  for (const Case& c : cases) {
    write_text(dir + "/" + c.file, c.bytes);
    e = error_of([&] { run_report_html(dir); });
    EXPECT_NE(e.find(c.message), std::string::npos) << c.file << ": " << e;
    if (c.good.empty())
      fs::remove(dir + "/" + c.file);
    else
      write_text(dir + "/" + c.file, c.good);
  }
}


// A trained image run with a test set (resnet20, one epoch): its report
// shows a Grad-CAM overlay under each misclassified thumbnail, and the
// validation set's reliability diagram from calibration.json.
class ImageRunReport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    test::write_synthetic_image_folder(*dir_ / "data", 3, 6, 32);
    test::write_synthetic_image_folder(*dir_ / "test", 3, 4, 32, 3, 99);
    const test::CliResult r = test::graft_cli(
        {"train", "--data", *dir_ / "data", "--val-split", "0.34", "--test", *dir_ / "test", "--backbone", "resnet20",
         "--weights", "none", "--strategy", "full", "--epochs", "1", "--batch-size", "6", "--augment", "none",
         "--quiet", "--cache-dir", *dir_ / "cache", "--out", *dir_ / "run"});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string run() { return *dir_ / "run"; }
  static TempDir* dir_;
};
TempDir* ImageRunReport::dir_ = nullptr;

TEST_F(ImageRunReport, WrongThumbnailsHaveGradCamOverlays) {
  EXPECT_TRUE(grad_cam_applies(run()));
  const std::string html = read_text(run() + "/report.html");  // written by graft train
  const std::string section = element(html, "section", "wrong-examples");
  ASSERT_FALSE(section.empty());
  const size_t thumbs = count_of(section, "src=\"data:image/jpeg;base64,");
  ASSERT_GT(thumbs, 0u) << "the one-epoch model made no mistake on the test set: " << section.substr(0, 400);
  EXPECT_EQ(count_of(section, "<img class=\"cam\""), thumbs);
  EXPECT_NE(section.find("Grad-CAM heat map for the <b>predicted</b> class"), std::string::npos);
  // Each overlay is a 120 x 120 PNG (the 32 x 32 crop, scaled).
  const std::string prefix = "data:image/png;base64,";
  size_t pngs = 0;
  for (const std::string& src : attrs(section, "img", "src")) {
    if (src.rfind(prefix, 0) != 0) continue;
    const std::string bytes = decode_base64(src.substr(prefix.size()));
    const cv::Mat img = cv::imdecode(std::vector<uchar>(bytes.begin(), bytes.end()), cv::IMREAD_COLOR);
    ASSERT_FALSE(img.empty());
    EXPECT_EQ(img.size(), cv::Size(120, 120));
    ++pngs;
  }
  EXPECT_EQ(pngs, thumbs);
  // graft report writes the same page again.
  EXPECT_EQ(run_report_html(run()), html);
}

TEST_F(ImageRunReport, ReliabilityDiagramWhenCalibrationJsonHasTheBins) {
  const std::string html = read_text(run() + "/report.html");
  const std::string section = element(html, "section", "calibration");
  ASSERT_FALSE(section.empty()) << "no calibration section";
  const std::string svg = element(section, "svg", "reliability");
  ASSERT_FALSE(svg.empty());
  EXPECT_EQ(count_of(svg, "class=\"diagonal\""), 1u);
  const auto j = nlohmann::json::parse(read_file(run() + "/calibration.json"));
  // One bar per non-empty bin, before and after (one series when the fit
  // kept T = 1); the counts are the file's.
  const bool converged = j["converged"].get<bool>();
  for (const char* side : {"before", "after"}) {
    int64_t nonempty = 0, total = 0;
    for (const auto& c : j["reliability"][side]["count"]) {
      nonempty += c.get<int64_t>() > 0;
      total += c.get<int64_t>();
    }
    EXPECT_EQ(total, j["examples"].get<int64_t>()) << side;
    const bool before = std::string(side) == "before";
    const std::string series = !converged ? "uncalibrated" : before ? "before (T = 1)" : "after (T = ";
    if (converged || before)
      EXPECT_EQ(count_of(svg, "data-series=\"" + series), static_cast<size_t>(nonempty)) << side;
  }
  EXPECT_NE(section.find("Expected calibration error <b>" + html::num(j["ece_before"].get<double>()) + "</b>"),
            std::string::npos)
      << section;
}

// The diagram from a calibration.json with bins: two series after a fitted
// temperature, one with --calibrate none or a fit that kept T = 1.
TEST(RunReport, ReliabilityDiagramSeriesAndCaption) {
  TempDir tmp;
  const std::string dir = make_run(tmp / "run");
  std::vector<ReliabilityBin> before(15), after(15);
  before[14] = {6, 0.97, 0.5};
  before[9] = {4, 0.62, 0.75};
  after[11] = {6, 0.77, 0.5};
  after[8] = {4, 0.55, 0.75};
  nlohmann::ordered_json j = {{"method", "temperature"}, {"temperature", 1.8}, {"converged", true},
                              {"examples", 10},          {"ece_before", 0.31}, {"ece_after", 0.12}};
  j["reliability"] = reliability_json(before, after);
  write_text(dir + "/calibration.json", j.dump());
  std::string section = element(run_report_html(dir), "section", "calibration");
  EXPECT_EQ(count_of(section, "data-series=\"before (T = 1)\""), 2u);
  EXPECT_EQ(count_of(section, "data-series=\"after (T = 1.8)\""), 2u);
  EXPECT_EQ(count_of(section, "data-bin=\"14\" data-count=\"6\" data-accuracy=\"0.5\""), 1u);
  EXPECT_NE(section.find("of the 10 validation inputs in 15 equal-width confidence bins"), std::string::npos);
  EXPECT_NE(section.find("<b>0.31</b> before and <b>0.12</b> after temperature scaling (T = 1.8"), std::string::npos)
      << section;
  j["converged"] = false;
  j["temperature"] = 1;
  j["reliability"] = reliability_json(before, before);
  write_text(dir + "/calibration.json", j.dump());
  section = element(run_report_html(dir), "section", "calibration");
  EXPECT_EQ(count_of(section, "<rect class=\"bar\""), 2u);
  EXPECT_EQ(count_of(section, "data-series=\"uncalibrated\""), 2u);
  EXPECT_NE(section.find("the temperature fit did not converge: T stays 1"), std::string::npos) << section;
  j["method"] = "none";
  write_text(dir + "/calibration.json", j.dump());
  EXPECT_NE(run_report_html(dir).find("--calibrate none: no temperature"), std::string::npos);
  // Without calibration.json: no section.
  fs::remove(dir + "/calibration.json");
  EXPECT_TRUE(element(run_report_html(dir), "section", "calibration").empty());
}

TEST_F(ImageRunReport, NoDiagramWithoutBinsAndAFailedGradCamIsAWarning) {
  TempDir tmp;
  const std::string copy = tmp / "run";
  fs::copy(run(), copy, fs::copy_options::recursive);
  // An older calibration.json: no "reliability", no diagram.
  auto j = nlohmann::json::parse(read_file(copy + "/calibration.json"));
  j.erase("reliability");
  write_text(copy + "/calibration.json", j.dump());
  std::string html = run_report_html(copy);
  EXPECT_TRUE(element(html, "section", "calibration").empty());
  EXPECT_EQ(count_of(html, "class=\"chart reliability\""), 0u);
  EXPECT_GT(count_of(html, "<img class=\"cam\""), 0u);
  // Weights that do not load: the report is still written, without overlays.
  write_text(copy + "/model.safetensors", "not weights");
  testing::internal::CaptureStderr();
  html = run_report_html(copy);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count_of(html, "<img class=\"cam\""), 0u);
  EXPECT_GT(count_of(element(html, "section", "wrong-examples"), "data:image/jpeg"), 0u);
  EXPECT_TRUE(test::contains(err, "report: no Grad-CAM heat maps for")) << err;
  // A text or face run (no image model.json): no Grad-CAM.
  write_text(copy + "/model.json", "{\"format\": \"graft-model\", \"task\": \"text\", \"backbone\": \"bert\"}");
  EXPECT_FALSE(grad_cam_applies(copy));
  fs::remove(copy + "/model.json");
  EXPECT_FALSE(grad_cam_applies(copy));
}

TEST(RunData, CsvQuotingAndLineEnds) {
  auto recs = parse_csv("a,b\r\n\"x,1\",\"say \"\"hi\"\"\"\r\n\n\"multi\nline\",\n", "t.csv");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1].fields, (std::vector<std::string>{"x,1", "say \"hi\""}));
  EXPECT_EQ(recs[1].line, 2);
  EXPECT_EQ(recs[2].fields, (std::vector<std::string>{"multi\nline", ""}));
  EXPECT_EQ(recs[2].line, 4);
  EXPECT_NE(error_of([] { parse_csv("\"a\"b\n", "t.csv"); }).find("text after a closing quote"),
            std::string::npos);
}

TEST(Html, EscapeBase64AndNumbers) {
  EXPECT_EQ(html::escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
  EXPECT_EQ(html::base64(""), "");
  EXPECT_EQ(html::base64("f"), "Zg==");
  EXPECT_EQ(html::base64("fo"), "Zm8=");
  EXPECT_EQ(html::base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(html::num(0.30000000000000004), "0.3");
  EXPECT_EQ(html::percent(0.8898), "89.0%");
  EXPECT_EQ(html::duration(245), "4 min 05 s");
  EXPECT_EQ(html::duration(7260), "2 h 01 min");
}

/// A search folder with three trials (one without a score).
std::string make_search(const std::string& dir) {
  std::string t0 = make_run(dir + "/trials/000"), t1 = dir + "/trials/001";
  write_text(t1 + "/config.json", config_json(t1, 3));
  write_text(t1 + "/metrics.csv",
             "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,items_per_second\n"
             "1,1.5,0.4,1.4,0.9,0.1,1,12\n2,1.1,0.6,1.2,0.95,0.05,1,13\n");
  write_run_report(t0);
  nlohmann::json j;
  j["method"] = "random";
  auto trial = [](int rank, int id, const std::string& d, nlohmann::json score, const char* status) {
    return nlohmann::json{{"rank", rank}, {"trial", id}, {"dir", d}, {"score", score}, {"best_epoch", 2},
                          {"epochs", 3}, {"status", status}, {"params", {{"lr", 0.1}}}};
  };
  j["trials"] = {trial(2, 0, t0, 0.8, "done"), trial(1, 1, t1, 0.95, "done"),
                 trial(3, 2, dir + "/trials/002", nullptr, "failed")};
  j["best"] = j["trials"][1];
  write_text(dir + "/results.json", j.dump(2));
  return dir;
}

TEST(SearchReport, ScoresSortedAndBestCurves) {
  TempDir tmp;
  std::string dir = make_search(tmp / "search");
  EXPECT_TRUE(is_search_dir(dir));
  EXPECT_FALSE(is_search_dir(dir + "/trials/000"));
  std::string html = search_report_html(dir);
  std::string bars = element(html, "svg", "search-scores");
  EXPECT_EQ(attrs(bars, "rect", "data-value"), (std::vector<std::string>{"0.95", "0.8"}));
  EXPECT_EQ(count_of(bars, "class=\"bar best\""), 1u);
  EXPECT_NE(bars.find("no score"), std::string::npos);
  std::string table = element(html, "table", "trials");
  EXPECT_EQ(count_of(table, "<tr") - 1, 3u);
  EXPECT_LT(table.find(">1<"), table.find(">0.8<"));
  // Trial 0 has a report: linked relative to the search folder.
  EXPECT_EQ(attrs(table, "a", "href"), (std::vector<std::string>{"trials/000/report.html"}));
  std::string best = element(html, "svg", "best-plot-accuracy");
  ASSERT_EQ(attrs(best, "polyline", "points").size(), 2u);
  EXPECT_EQ(point_count(attrs(best, "polyline", "points")[0]), 2u);
  EXPECT_EQ(write_report(dir), dir + "/report.html");
  EXPECT_TRUE(fs::exists(dir + "/report.html"));
  std::string e = error_of([&] { search_report_html(tmp / "nothing"); });
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
  write_text(dir + "/results.json", "{\"method\": \"grid\"}");
  e = error_of([&] { search_report_html(dir); });
  EXPECT_NE(e.find("results.json' has no \"trials\" array"), std::string::npos) << e;
}

TEST(Compare, TableOfRuns) {
  TempDir tmp;
  std::string a = make_run(tmp / "a");
  std::string b = tmp / "b|x";  // a pipe must not break the markdown table
  write_text(b + "/config.json", config_json(b, 2));
  write_text(b + "/metrics.csv",
             "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,items_per_second\n"
             "1,1.5,0.4,1.4,0.9,0.1,30,12\n2,1.1,0.6,1.2,0.85,0.05,40,13\n");
  auto rows = compare_runs({a, b});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].accuracy_kind, "test");
  EXPECT_DOUBLE_EQ(rows[0].accuracy, 0.84);
  EXPECT_EQ(rows[1].accuracy_kind, "val");
  EXPECT_DOUBLE_EQ(rows[1].accuracy, 0.9);
  EXPECT_EQ(rows[1].best_epoch, 1);
  EXPECT_DOUBLE_EQ(rows[1].seconds, 70);
  EXPECT_EQ(rows[0].strategy, "partial:2");
  EXPECT_EQ(rows[0].weights, "/models/resnet18.pth");
  EXPECT_EQ(rows[0].lr, "0.01");
  std::string md = compare_markdown(rows);
  std::istringstream lines(md);
  std::vector<std::string> ls;
  for (std::string l; std::getline(lines, l);) ls.push_back(l);
  ASSERT_EQ(ls.size(), 4u) << md;
  EXPECT_EQ(ls[0], "| run | accuracy | best epoch | epochs | time | strategy | backbone | source weights | lr |");
  EXPECT_EQ(count_of(ls[2], " | "), 8u) << ls[2];
  EXPECT_NE(ls[2].find("| 0.8400 (test) |"), std::string::npos) << ls[2];
  EXPECT_NE(ls[2].find("| 4 / 5 |"), std::string::npos) << ls[2];
  EXPECT_NE(ls[3].find("b\\|x"), std::string::npos) << ls[3];
  EXPECT_NE(ls[3].find("**0.9000 (val)**"), std::string::npos) << ls[3];
  EXPECT_NE(ls[3].find("1 min 10 s"), std::string::npos) << ls[3];

  std::string html = compare_html(rows);
  std::string table = element(html, "table", "compare");
  EXPECT_EQ(count_of(table, "<tr") - 1, 2u);
  EXPECT_EQ(count_of(table, "<tr class=\"best\">"), 1u);
  EXPECT_EQ(attrs(element(html, "svg", "compare-val-accuracy"), "polyline", "points").size(), 2u);

  // A search folder stands for its trials, best first.
  std::string s = make_search(tmp / "search");
  rows = compare_runs({s});
  ASSERT_EQ(rows.size(), 2u);  // trial 2 failed and has no folder
  EXPECT_NE(rows[0].run.find("001"), std::string::npos);  // rank 1 first
  EXPECT_NE(rows[1].run.find("000"), std::string::npos);
  std::string e = error_of([&] { compare_runs({a, tmp / "typo"}); });
  EXPECT_NE(e.find("typo"), std::string::npos) << e;
}

#ifndef GRAFT_ARTIFACT_DIR
#define GRAFT_ARTIFACT_DIR GRAFT_FIXTURE_DIR "/../artifacts"
#endif

/// Output and exit status of a shell command.
std::pair<int, std::string> run_command(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Renders the pages in headless Chromium (tests/report/browser_check.py):
// plots and tables present and laid out, images decoded, nothing loaded from
// elsewhere, no console errors. Screenshots stay in the build folder's
// artifacts/report-browser/. Skipped when Chromium, its driver or selenium is
// missing, unless GRAFT_REQUIRE_BROWSER=1.
TEST(ReportBrowser, RendersInChromium) {
  const fs::path root = fs::path(GRAFT_ARTIFACT_DIR) / "report-browser";
  fs::remove_all(root);
  const std::string run = make_run((root / "run").string());
  const std::string search = make_search((root / "search").string());
  // A reliability diagram: 3 bars before, 2 after.
  std::vector<ReliabilityBin> before(15), after(15);
  before[14] = {6, 0.97, 0.5};
  before[9] = {3, 0.62, 0.67};
  before[5] = {1, 0.36, 1};
  after[11] = {6, 0.77, 0.5};
  after[8] = {4, 0.55, 0.75};
  nlohmann::ordered_json calibration = {{"method", "temperature"}, {"temperature", 1.8}, {"converged", true},
                                        {"examples", 10},          {"ece_before", 0.31}, {"ece_after", 0.12}};
  calibration["reliability"] = reliability_json(before, after);
  write_text(run + "/calibration.json", calibration.dump());
  write_run_report(run);
  write_search_report(search);
  const std::string compare = (root / "compare.html").string();
  write_text(compare, compare_html(compare_runs({run, search})));
  auto q = [](const std::string& s) { return "'" + s + "'"; };  // paths here hold no quote
  std::string cmd = "timeout 120 /usr/bin/python3 " + q(std::string(GRAFT_SOURCE_DIR) + "/tests/report/browser_check.py") +
                    " --count '#plot-loss polyline=2' --points '#plot-loss polyline=4'"
                    " --count '#confusion rect.cell=9' --count '#per-class tbody tr=3'"
                    " --count '#wrong-examples img=3' --count '#config tbody tr=15'"
                    " --count '#reliability rect.bar=5' --count '#reliability line.diagonal=1'"
                    " --count '#search-scores rect.bar=2' --count '#trials tbody tr=3'"
                    " --points '#best-plot-accuracy polyline=2'"
                    " --count '#compare tbody tr=3' --count '#compare-val-accuracy polyline=3' " +
                    q(run + "/report.html") + " " + q(search + "/report.html") + " " + q(compare);
  auto [rc, out] = run_command(cmd);
  if (rc == 77) {
    const char* require = std::getenv("GRAFT_REQUIRE_BROWSER");
    if (!(require && std::string(require) == "1")) GTEST_SKIP() << out;
  }
  EXPECT_EQ(rc, 0) << cmd << "\n" << out;
  EXPECT_TRUE(fs::exists(run + "/report.png")) << out;
  EXPECT_TRUE(fs::exists(search + "/report.png")) << out;
}

}  // namespace
}  // namespace graft
