#include "graft/eval/embed.h"
#include "graft/eval/int8_run.h"

#include <cstring>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/progress.h"
#include "graft/data/image_set.h"
#include "graft/eval/metrics.h"
#include "graft/eval/run_eval.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/weights/state_dict.h"

namespace graft {

namespace fs = std::filesystem;

ImageSet embedding_image_set(const std::vector<std::string>& inputs) {
  ImageSet set;
  set.root = inputs.size() == 1 ? inputs.front() : str_cat(inputs.size(), " inputs");
  set.classes = {"input"};
  for (const std::string& input : inputs) {
    GRAFT_CHECK_USAGE(fs::exists(input), "graft embed: input '", input,
                      "' does not exist (expected an image file or a folder of images)");
    if (!fs::is_directory(input)) {
      set.samples.push_back({input, -1, 0});
      continue;
    }
    OpenOptions open;
    open.as_class = "input";
    const ImageSet folder = open_image_set(input, open);
    set.samples.insert(set.samples.end(), folder.samples.begin(), folder.samples.end());
    set.unreadable.insert(set.unreadable.end(), folder.unreadable.begin(), folder.unreadable.end());
    set.skipped += folder.skipped;
  }
  GRAFT_CHECK(!set.samples.empty(), "graft embed: no image among the inputs (", set.root, ")");
  return set;
}

Embeddings embed_image_files(BackboneImpl& model, const std::string& model_key, const InputSpec& spec,
                             const std::vector<std::string>& inputs, const InferOptions& options,
                             const std::string& cache_dir) {
  const ImageSet set = embedding_image_set(inputs);
  const Outputs out = cached_features(model, model_key, set, spec, options, cache_dir);
  Embeddings e;
  for (size_t p : out.positions) e.inputs.push_back(set.identity(p));
  e.rows = out.values.to(torch::kFloat32).contiguous();
  e.skipped = set.skipped + static_cast<int64_t>(out.unreadable.size());
  for (const auto& u : out.unreadable) log_warn(str_cat("graft embed: skipped ", u.message));
  return e;
}

Embeddings embed_with_backbone(const std::string& backbone, const std::string& weights,
                               const std::vector<std::string>& inputs, const InferOptions& options,
                               const std::string& cache_dir) {
  const BackboneSpec& spec = find_backbone(backbone);
  Backbone model = spec.make(spec.source_classes);
  // Keyed as graft train keys a backbone's features, so each finds the other's.
  std::string key = backbone_key(backbone, spec.transform_input);
  if (weights == "none") {
    key += "|random-init|0";
    torch::manual_seed(0);
    model = spec.make(spec.source_classes);
  } else {
    GRAFT_CHECK_USAGE(fs::is_regular_file(weights), "--weights: '", weights,
                      "' is not a file (expected the backbone's weights, or none)");
    const LoadReport r = load_state_dict(*model, read_weights(weights), {model->classifier_name()});
    GRAFT_CHECK(r.missing.empty() && r.mismatched.empty(), "--weights '", weights, "' does not fit ", backbone,
                ": ", r.summary());
    key += "|" + sha256_file(weights);
  }
  if (options.precision != Precision::kFp32) key += std::string("|") + precision_name(options.precision);
  if (options.precision == Precision::kInt8) key += str_cat("|", options.calibration, "|", options.calibration_data);
  prepare_int8_source(*model, backbone, spec.input, options);
  prepare_for_inference(*model, options.device);
  Embeddings e = embed_image_files(*model, key, spec.input, inputs, options, cache_dir);
  e.source = str_cat(backbone, " with ", weights);
  return e;
}

Embeddings embed_image_run(const std::string& run, const std::vector<std::string>& inputs,
                           const InferOptions& options, const std::string& cache_dir) {
  LoadedModel loaded = load_model(run);
  prepare_int8_run(loaded, run, options);
  prepare_for_inference(*loaded.model, options.device);
  // The run's own weights name its features (a fine-tuned backbone differs
  // from its source).
  std::string key = str_cat("run|", loaded.info.backbone, "|", sha256_file(run + "/model.safetensors"));
  if (options.precision != Precision::kFp32) key += std::string("|") + precision_name(options.precision);
  if (options.precision == Precision::kInt8) key += str_cat("|", options.calibration, "|", options.calibration_data);
  Embeddings e = embed_image_files(*loaded.model, key, loaded.info.input, inputs, options, cache_dir);
  e.source = run;
  return e;
}

std::string embedding_format(const std::string& out, const std::string& format) {
  std::string f = format;
  if (f.empty()) {
    const std::string ext = fs::path(out).extension().string();
    f = ext.empty() ? "" : ext.substr(1);
    GRAFT_CHECK_USAGE(f == "safetensors" || f == "npy" || f == "csv", "--out '", out,
                      "': the extension does not say the format (expected .safetensors, .npy or .csv, "
                      "or --format)");
  }
  GRAFT_CHECK_USAGE(f == "safetensors" || f == "npy" || f == "csv", "--format: '", format,
                    "' (expected safetensors, npy or csv)");
  return f;
}

namespace {

// NumPy's format 1.0: magic, version, a little-endian header length, then a
// Python dict literal padded with spaces and a newline to a multiple of 64.
std::string embedding_npy_bytes(const torch::Tensor& rows) {
  std::string header = str_cat("{'descr': '<f4', 'fortran_order': False, 'shape': (", rows.size(0), ", ",
                               rows.size(1), "), }");
  const size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  const size_t bytes = static_cast<size_t>(rows.numel()) * sizeof(float);
  const size_t at = out.size();
  out.resize(at + bytes);
  if (bytes) std::memcpy(&out[at], rows.data_ptr<float>(), bytes);
  return out;
}

std::string embedding_csv_bytes(const Embeddings& e) {
  std::ostringstream os;
  os << "input";
  for (int64_t d = 0; d < e.rows.size(1); ++d) os << ",f" << d;
  os << "\n" << std::setprecision(9);
  const float* p = e.rows.data_ptr<float>();
  for (size_t i = 0; i < e.inputs.size(); ++i) {
    os << csv_field(e.inputs[i]);
    for (int64_t d = 0; d < e.rows.size(1); ++d) os << "," << p[static_cast<int64_t>(i) * e.rows.size(1) + d];
    os << "\n";
  }
  return os.str();
}

}  // namespace

void write_embeddings(const Embeddings& e, const std::string& out, const std::string& format, bool overwrite) {
  GRAFT_CHECK_USAGE(overwrite || !fs::exists(out), "--out: '", out,
                    "' exists (expected a new file; --overwrite replaces it)");
  GRAFT_CHECK(e.rows.dim() == 2 && e.rows.size(0) == static_cast<int64_t>(e.inputs.size()),
              "graft embed: ", e.inputs.size(), " inputs but ", e.rows.sizes(), " rows");
  const torch::Tensor rows = e.rows.to(torch::kCPU, torch::kFloat32).contiguous();
  Embeddings c = e;
  c.rows = rows;
  if (format == "safetensors") {
    save_safetensors(out, {{"embeddings", rows}},
                     {{"inputs", nlohmann::json(e.inputs).dump()}, {"source", e.source}});
  } else if (format == "npy") {
    std::string list;
    for (const auto& input : e.inputs) list += input + "\n";
    write_file_atomic(out + ".inputs.txt", list);
    write_file_atomic(out, embedding_npy_bytes(rows));
  } else {
    write_file_atomic(out, embedding_csv_bytes(c));
  }
}

}  // namespace graft
