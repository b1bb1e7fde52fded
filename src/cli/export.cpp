// graft export: a trained run's model in a format other tools read
// (--format onnx: include/graft/export/onnx.h; --format safetensors-hf:
// include/graft/export/hf.h), written atomically.

#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "graft/core/error.h"
#include "graft/core/json.h"
#include "graft/core/runtime.h"
#include "graft/export/onnx.h"
#include "graft/train/task.h"
#include "verbs.h"

namespace graft::cli {

namespace {

struct ExportOptions {
  std::string run, format, out;
  bool overwrite = false;
  int threads = 0;
};

/// "1.2.3" -> {1, 2, 3} (missing or non-numeric parts: 0).
std::vector<int> version_parts(const std::string& v) {
  std::vector<int> parts;
  std::stringstream s(v);
  std::string part;
  while (std::getline(s, part, '.')) {
    int n = 0;
    for (char c : part) {
      if (c < '0' || c > '9') break;
      n = n * 10 + (c - '0');
    }
    parts.push_back(n);
  }
  parts.resize(3, 0);
  return parts;
}

/// A run saved by a newer graft than this one may hold what this exporter
/// does not know: refused, naming both versions.
void check_run_version(const std::string& run) {
  const std::string path = (std::filesystem::path(run) / "model.json").string();
  if (!std::filesystem::exists(path)) return;
  const nlohmann::json j = read_json_file(path);
  if (!j.is_object() || !j.contains("graft_version") || !j["graft_version"].is_string()) return;
  const std::string seen = j["graft_version"].get<std::string>();
  GRAFT_CHECK(version_parts(seen) <= version_parts(GRAFT_VERSION), "'", path, "' was written by graft ", seen,
              ", newer than this graft (", GRAFT_VERSION, "); export it with that graft or a later one");
}

int run_export(const ExportOptions& o) {
  set_threads(o.threads);
  GRAFT_CHECK_USAGE(o.format == "onnx" || o.format == "safetensors-hf", "--format: '", o.format,
                    "' (expected onnx or safetensors-hf)");
  GRAFT_CHECK_USAGE(!o.out.empty(), "--out: an output ", o.format == "onnx" ? "file" : "folder", " is required");
  // Refused before the (slow) export, and again when writing.
  GRAFT_CHECK_USAGE(o.overwrite || !std::filesystem::exists(o.out), "--out: '", o.out,
                    "' exists (expected a new path; --overwrite replaces it)");
  const TaskRow& task = task_of_run(o.run);
  check_run_version(o.run);
  nlohmann::ordered_json line;
  line["out"] = o.out;
  line["format"] = o.format;
  line["task"] = task.name;
  if (o.format == "onnx") {
    GRAFT_CHECK_USAGE(task.export_onnx, "'", o.run, "' is a ", task.name,
                      " run, which graft export --format onnx does not export (image, text and face runs are exported)");
    const std::string bytes = task.export_onnx(o.run);
    write_onnx_file(bytes, o.out, o.overwrite);
    line["bytes"] = bytes.size();
  } else {
    GRAFT_CHECK_USAGE(task.export_hf, "'", o.run, "' is a ", task.name,
                      " run, which graft export --format safetensors-hf does not export (image and text runs are)");
    GRAFT_CHECK_USAGE(!std::filesystem::exists(o.out) || std::filesystem::is_directory(o.out), "--out: '", o.out,
                      "' is a file (expected a folder for --format safetensors-hf)");
    task.export_hf(o.run, o.out);
    nlohmann::ordered_json files = nlohmann::ordered_json::array();
    for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"})
      if (std::filesystem::exists(std::filesystem::path(o.out) / f)) files.push_back(f);
    line["files"] = files;
  }
  std::cout << line.dump() << std::endl;
  return 0;
}

}  // namespace

void add_export(CLI::App& app, Action& run) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* sub = add_command(app, run, "export",
                              "Write a trained run's model for other runtimes: --format onnx (opset 17, dynamic "
                              "batch, BatchNorm folded; classes and preprocessing in its metadata) or "
                              "safetensors-hf (a folder torchvision or transformers loads as it is)",
                              o, run_export);
  sub->add_option("run", o->run, "Run directory written by graft train")->required();
  sub->add_option("--format", o->format, "onnx or safetensors-hf")->required();
  sub->add_option("--out", o->out, "onnx: the file to write (atomically); safetensors-hf: the folder")->required();
  sub->add_flag("--overwrite", o->overwrite, "Replace --out when it exists");
  add_threads(*sub, o->threads);
}

}  // namespace graft::cli
