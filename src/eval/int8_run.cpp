#include "graft/eval/int8_run.h"

#include <filesystem>
#include <iostream>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/data/image_set.h"
#include "graft/data/order.h"
#include "graft/data/transforms.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kCalibrationSeed = 0;

// The training data a run was made from: config.json's options.data (as
// graft train wrote it, relative to where it ran when it was relative).
std::string run_training_data(const std::string& run) {
  const std::string cfg = run + "/config.json";
  GRAFT_CHECK_USAGE(fs::is_regular_file(cfg), "--precision int8: '", run,
                    "' has no config.json naming its training data; give --calibration-data PATH "
                    "(a folder of images like the training data)");
  const nlohmann::json j = parse_json(read_regular_file(cfg), "'" + cfg + "'");
  const bool named = j.is_object() && j.contains("options") && j["options"].is_object() &&
                     j["options"].contains("data") && j["options"]["data"].is_string() &&
                     !j["options"]["data"].get<std::string>().empty();
  GRAFT_CHECK_USAGE(named, "--precision int8: ", cfg, " names no training data (options.data); give "
                    "--calibration-data PATH");
  const std::string data = j["options"]["data"].get<std::string>();
  GRAFT_CHECK_USAGE(fs::exists(data), "--precision int8: the run's training data '", data, "' (", cfg,
                    ") is not there; give --calibration-data PATH");
  return data;
}

}  // namespace

std::vector<torch::Tensor> calibration_batches(const std::string& data, const InputSpec& spec,
                                               const InferOptions& options, const std::string& option) {
  GRAFT_CHECK_USAGE(options.calibration >= kMinCalibrationImages, "--calibration: ", options.calibration,
                    " images (expected at least ", kMinCalibrationImages, ")");
  GRAFT_CHECK_USAGE(fs::exists(data), option, ": '", data, "' does not exist (expected a folder of images)");
  const ImageSet set = open_image_set(data);
  const std::vector<size_t> order = epoch_order(set.size(), kCalibrationSeed, 0, /*shuffle=*/true);
  std::vector<torch::Tensor> images, batches;
  int64_t unreadable = 0;
  for (size_t i = 0; i < order.size() && static_cast<int64_t>(images.size()) < options.calibration; ++i) {
    cv::Mat img;
    try {
      img = set.load(order[i]);
    } catch (const Error&) {
      ++unreadable;
      continue;
    }
    images.push_back(eval_transform(img, spec));
    if (static_cast<int64_t>(images.size()) % std::max<int64_t>(1, options.batch_size) == 0) {
      batches.push_back(torch::stack(images));
      images.clear();
    }
  }
  if (!images.empty()) batches.push_back(torch::stack(images));
  int64_t n = 0;
  for (const auto& b : batches) n += b.size(0);
  GRAFT_CHECK_USAGE(n >= kMinCalibrationImages, option, ": '", data, "' gave ", n, " readable images",
                    unreadable ? str_cat(" (", unreadable, " unreadable)") : std::string(), " (expected at least ",
                    kMinCalibrationImages, " to calibrate int8)");
  if (n < options.calibration)
    log_warn(str_cat("--calibration ", options.calibration, ": '", data, "' gave only ", n,
                     " images; calibrating on those"));
  return batches;
}

void prepare_int8_run(LoadedModel& loaded, const std::string& run, const InferOptions& options) {
  if (options.precision != Precision::kInt8) return;
  check_int8_supported(*loaded.model, loaded.info.backbone);
  const std::string data = options.calibration_data.empty() ? run_training_data(run) : options.calibration_data;
  const std::string file = run + "/" + kInt8CalibrationFile;
  nlohmann::ordered_json recipe;
  recipe["weights_sha256"] = sha256_file(run + "/model.safetensors");
  recipe["calibration_data"] = fs::weakly_canonical(data).string();
  recipe["requested"] = options.calibration;
  if (auto kept = read_kept_int8_calibration(file, recipe)) {
    loaded.model->set_int8(build_int8(*loaded.model, *kept));
    return;
  }
  const Int8Calibration c =
      calibrate_int8(*loaded.model, calibration_batches(data, loaded.info.input, options, "--calibration-data"));
  keep_int8_calibration(file, c, recipe);
  loaded.model->set_int8(build_int8(*loaded.model, c));
}

std::optional<Int8Calibration> read_kept_int8_calibration(const std::string& file,
                                                          const nlohmann::ordered_json& recipe) {
  if (!fs::is_regular_file(file)) return std::nullopt;
  const nlohmann::json j = parse_json(read_regular_file(file), "'" + file + "'");
  bool same = j.is_object();
  for (auto it = recipe.begin(); same && it != recipe.end(); ++it)
    same = j.contains(it.key()) && j[it.key()].dump() == it.value().dump();  // scalars: same text, same value
  if (same) return int8_calibration_from_json(j, "'" + file + "'");
  log_info(str_cat("int8: ", file, " was made for other weights, data or --calibration; calibrating again"));
  return std::nullopt;
}

void keep_int8_calibration(const std::string& file, const Int8Calibration& c, const nlohmann::ordered_json& recipe) {
  nlohmann::ordered_json j = to_json(c);
  for (auto it = recipe.begin(); it != recipe.end(); ++it) j[it.key()] = it.value();
  j["seed"] = kCalibrationSeed;
  try {
    write_file_atomic(file, j.dump(2) + "\n");
    log_info(str_cat("int8: calibrated on ", c.images, " images of ", recipe.value("calibration_data", std::string()),
                     "; kept in ", file));
  } catch (const Error& e) {
    log_warn(str_cat("int8: calibrated on ", c.images, " images, but could not keep it (", e.what(),
                     "); the next call calibrates again"));
  }
}

void prepare_int8_source(BackboneImpl& model, const std::string& backbone, const InputSpec& spec,
                         const InferOptions& options) {
  if (options.precision != Precision::kInt8) return;
  check_int8_supported(model, backbone);
  GRAFT_CHECK_USAGE(!options.calibration_data.empty(), "--precision int8 on a source model needs "
                    "--calibration-data PATH (a folder of images to calibrate on)");
  model.set_int8(build_int8(model, calibrate_int8(model, calibration_batches(options.calibration_data, spec, options,
                                                                              "--calibration-data"))));
}

}  // namespace graft
