#include "graft/report/run_data.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"

namespace fs = std::filesystem;

namespace graft {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

nlohmann::json parse_json_file(const std::string& path) {
  return read_json_file(path);
}

/// A whole field as a number; "nan", "-nan", "inf" accepted.
bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  const char* begin = s.c_str();
  char* end = nullptr;
  out = std::strtod(begin, &end);
  return end == begin + s.size();
}

/// Column positions by header name; throws naming the missing column.
std::map<std::string, size_t> header_columns(const CsvRecord& header,
                                             const std::vector<std::string>& required,
                                             const std::string& path, const std::string& expected) {
  std::map<std::string, size_t> cols;
  for (size_t i = 0; i < header.fields.size(); ++i) cols.emplace(header.fields[i], i);
  for (const auto& name : required)
    GRAFT_CHECK(cols.count(name), "'", path, "' has no column '", name, "' in its header (expected ",
                expected, ")");
  return cols;
}

double number_at(const nlohmann::json& j, const char* key, const std::string& path,
                 const std::string& where) {
  GRAFT_CHECK(j.contains(key), "'", path, "': ", where, " has no \"", key, "\" (expected a number)");
  const auto& v = j.at(key);
  if (v.is_null()) return kNaN;  // NaN is written as null
  GRAFT_CHECK(v.is_number(), "'", path, "': ", where, " \"", key, "\" is ", json_excerpt(v),
              " (expected a number)");
  return v.get<double>();
}

int64_t integer_at(const nlohmann::json& j, const char* key, const std::string& path,
                   const std::string& where) {
  GRAFT_CHECK(j.contains(key) && j.at(key).is_number_integer(), "'", path, "': ", where, " \"",
              key, "\" is ", j.contains(key) ? json_excerpt(j.at(key)) : std::string("missing"),
              " (expected an integer)");
  return j.at(key).get<int64_t>();
}

}  // namespace

std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& path) {
  std::vector<CsvRecord> records;
  CsvRecord rec;
  std::string field;
  int64_t line = 1;
  rec.line = 1;
  bool quoted = false, field_started = false, any = false;
  size_t i = 0;
  auto end_field = [&] {
    rec.fields.push_back(std::move(field));
    field.clear();
    field_started = false;
  };
  auto end_record = [&] {
    end_field();
    // A blank line is no record.
    if (!(rec.fields.size() == 1 && rec.fields[0].empty())) records.push_back(std::move(rec));
    rec = CsvRecord();
    any = false;
  };
  while (i < text.size()) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        ++i;
        GRAFT_CHECK(i == text.size() || text[i] == ',' || text[i] == '\n' || text[i] == '\r',
                    "'", path, "' line ", line, ": text after a closing quote (expected , or a line end)");
        continue;
      }
      if (c == '\n') ++line;
      field += c;
      ++i;
      continue;
    }
    if (!any) {
      rec.line = line;
      any = true;
    }
    if (c == '"' && !field_started && field.empty()) {
      quoted = true;
      field_started = true;
      ++i;
    } else if (c == ',') {
      end_field();
      ++i;
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      ++i;
    } else if (c == '\n') {
      end_record();
      ++line;
      ++i;
    } else {
      field += c;
      field_started = true;
      ++i;
    }
  }
  GRAFT_CHECK(!quoted, "'", path, "' line ", rec.line, ": a quoted field is not closed before the end of the file");
  if (any) end_record();
  return records;
}

std::vector<EpochRow> read_metrics_csv(const std::string& path) {
  static const std::vector<std::string> kRequired = {
      "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"};
  static const std::string kExpected =
      "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,items_per_second";
  auto records = parse_csv(read_file(path), path);
  GRAFT_CHECK(!records.empty(), "'", path, "' is empty (expected the header ", kExpected, ")");
  auto cols = header_columns(records[0], kRequired, path, kExpected);
  const bool has_ips = cols.count("items_per_second") > 0;
  const size_t width = records[0].fields.size();
  std::vector<EpochRow> rows;
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& rec = records[r];
    GRAFT_CHECK(rec.fields.size() == width, "'", path, "' line ", rec.line, " has ",
                rec.fields.size(), " fields (expected ", width, " as in the header)");
    auto get = [&](const std::string& name) {
      const std::string& s = rec.fields[cols.at(name)];
      double v = 0;
      GRAFT_CHECK(parse_number(s, v), "'", path, "' line ", rec.line, ": ", name, " is '", s,
                  "' (expected a number)");
      return v;
    };
    EpochRow row;
    double epoch = get("epoch");
    GRAFT_CHECK(std::isfinite(epoch) && epoch >= 1 && epoch == std::floor(epoch), "'", path,
                "' line ", rec.line, ": epoch is '", rec.fields[cols.at("epoch")],
                "' (expected a whole number from 1)");
    row.epoch = static_cast<int64_t>(epoch);
    GRAFT_CHECK(rows.empty() || row.epoch > rows.back().epoch, "'", path, "' line ", rec.line,
                ": epoch ", row.epoch, " follows epoch ", rows.empty() ? 0 : rows.back().epoch,
                " (expected increasing epochs)");
    row.train_loss = get("train_loss");
    row.train_accuracy = get("train_accuracy");
    row.val_loss = get("val_loss");
    row.val_accuracy = get("val_accuracy");
    row.lr = get("lr");
    row.seconds = get("seconds");
    row.items_per_second = has_ips ? get("items_per_second") : kNaN;
    if (cols.count("domain_accuracy")) row.domain_accuracy = get("domain_accuracy");  // issue 19
    if (cols.count("unlabeled_kept")) row.unlabeled_kept = get("unlabeled_kept");
    rows.push_back(row);
  }
  return rows;
}

TestMetrics read_test_metrics(const std::string& path) {
  nlohmann::json j = parse_json_file(path);
  GRAFT_CHECK(j.is_object(), "'", path, "' is not a JSON object (expected the test metrics graft writes)");
  TestMetrics m;
  m.count = integer_at(j, "count", path, "the file");
  m.accuracy = number_at(j, "accuracy", path, "the file");
  m.loss = j.contains("loss") ? number_at(j, "loss", path, "the file") : kNaN;
  m.top5 = j.contains("top5") ? number_at(j, "top5", path, "the file") : kNaN;
  GRAFT_CHECK(j.contains("classes") && j["classes"].is_array(), "'", path,
              "' has no \"classes\" array (expected the class names)");
  for (const auto& c : j["classes"]) {
    GRAFT_CHECK(c.is_string(), "'", path, "': class name ", json_excerpt(c), " is not a string");
    m.classes.push_back(c.get<std::string>());
  }
  const size_t n = m.classes.size();
  if (j.contains("per_class")) {
    GRAFT_CHECK(j["per_class"].is_array(), "'", path, "': \"per_class\" is not an array");
    for (size_t i = 0; i < j["per_class"].size(); ++i) {
      const auto& e = j["per_class"][i];
      std::string where = str_cat("per_class[", i, "]");
      GRAFT_CHECK(e.is_object() && e.contains("class") && e["class"].is_string(), "'", path,
                  "': ", where, " has no \"class\" name");
      ClassMetrics row;
      row.name = e["class"].get<std::string>();
      row.precision = number_at(e, "precision", path, where);
      row.recall = number_at(e, "recall", path, where);
      row.f1 = number_at(e, "f1", path, where);
      row.support = integer_at(e, "support", path, where);
      m.per_class.push_back(row);
    }
  }
  GRAFT_CHECK(j.contains("confusion") && j["confusion"].is_array(), "'", path,
              "' has no \"confusion\" array (expected ", n, " rows of ", n, " counts)");
  const auto& conf = j["confusion"];
  GRAFT_CHECK(conf.size() == n, "'", path, "': the confusion matrix has ", conf.size(),
              " rows (expected ", n, ", one per class)");
  for (size_t r = 0; r < n; ++r) {
    GRAFT_CHECK(conf[r].is_array() && conf[r].size() == n, "'", path, "': confusion row ", r,
                " has ", conf[r].is_array() ? conf[r].size() : 0, " entries (expected ", n, ")");
    std::vector<int64_t> row;
    for (const auto& v : conf[r]) {
      GRAFT_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0, "'", path, "': confusion row ",
                  r, " holds ", json_excerpt(v), " (expected a count)");
      row.push_back(v.get<int64_t>());
    }
    m.confusion.push_back(std::move(row));
  }
  return m;
}

std::vector<PredictionRow> read_predictions_csv(const std::string& path) {
  static const std::string kExpected = "path,label,predicted,confidence";
  auto records = parse_csv(read_file(path), path);
  GRAFT_CHECK(!records.empty(), "'", path, "' is empty (expected the header ", kExpected, ")");
  auto cols = header_columns(records[0], {"path", "label", "predicted", "confidence"}, path, kExpected);
  const size_t width = records[0].fields.size();
  std::vector<PredictionRow> out;
  out.reserve(records.size() - 1);
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& rec = records[r];
    GRAFT_CHECK(rec.fields.size() == width, "'", path, "' line ", rec.line, " has ",
                rec.fields.size(), " fields (expected ", width, " as in the header)");
    PredictionRow p;
    p.path = rec.fields[cols.at("path")];
    p.label = rec.fields[cols.at("label")];
    p.predicted = rec.fields[cols.at("predicted")];
    const std::string& c = rec.fields[cols.at("confidence")];
    GRAFT_CHECK(parse_number(c, p.confidence), "'", path, "' line ", rec.line,
                ": confidence is '", c, "' (expected a number)");
    out.push_back(std::move(p));
  }
  return out;
}

std::string json_text(const nlohmann::json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
    return buf;
  }
  if (v.is_array()) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + json_text(v[i]);
    return out;
  }
  return v.dump();
}

std::string RunData::option(const std::string& key) const {
  if (!config.contains("options") || !config["options"].contains(key)) return "";
  return json_text(config["options"][key]);
}

RunData read_run(const std::string& dir) {
  GRAFT_CHECK(fs::is_directory(dir), "run directory '", dir,
              "' does not exist or is not a folder (expected a folder written by graft train)");
  RunData run;
  run.dir = dir;
  const std::string cfg = (fs::path(dir) / "config.json").string();
  GRAFT_CHECK(fs::exists(cfg), "run directory '", dir,
              "' has no config.json (expected a folder written by graft train)");
  run.config = parse_json_file(cfg);
  GRAFT_CHECK(run.config.is_object() && run.config.contains("options") &&
                  run.config["options"].is_object(),
              "'", cfg, "' has no \"options\" object (expected the settings graft train writes)");
  if (run.config.contains("classes")) {
    GRAFT_CHECK(run.config["classes"].is_array(), "'", cfg, "': \"classes\" is not an array");
    for (const auto& c : run.config["classes"]) {
      GRAFT_CHECK(c.is_string(), "'", cfg, "': class name ", json_excerpt(c), " is not a string");
      run.classes.push_back(c.get<std::string>());
    }
  }
  const fs::path root(dir);
  if (fs::exists(root / "metrics.csv")) run.epochs = read_metrics_csv((root / "metrics.csv").string());
  if (fs::exists(root / "test_metrics.json"))
    run.test = read_test_metrics((root / "test_metrics.json").string());
  if (fs::exists(root / "test_predictions.csv"))
    run.predictions = read_predictions_csv((root / "test_predictions.csv").string());
  if (fs::exists(root / "calibration.json")) {
    const std::string path = (root / "calibration.json").string();
    run.reliability = read_reliability(parse_json_file(path), "'" + path + "'");
  }
  return run;
}

int64_t best_epoch(const std::vector<EpochRow>& epochs) {
  // As graft train keeps weights: a later epoch wins only if strictly better;
  // without validation every epoch is kept.
  int64_t best = 0;
  double best_acc = 0;
  for (const auto& r : epochs) {
    if (best == 0 || std::isnan(r.val_accuracy) || r.val_accuracy > best_acc) {
      best = r.epoch;
      best_acc = r.val_accuracy;
    }
  }
  return best;
}

double training_seconds(const std::vector<EpochRow>& epochs) {
  double s = 0;
  for (const auto& r : epochs)
    if (std::isfinite(r.seconds)) s += r.seconds;
  return s;
}

}  // namespace graft
