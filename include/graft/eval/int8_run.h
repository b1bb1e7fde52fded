#pragma once
/// --precision int8 on a trained image run or a source model: the
/// calibration (models/int8.h) made once and kept in the run folder, and the
/// int8 network installed on the loaded model.

#include <optional>
#include <string>

#include "graft/eval/infer.h"
#include "graft/models/int8.h"
#include "graft/models/saved_model.h"

namespace graft {

/// The file in a run folder that keeps its int8 calibration.
inline constexpr const char* kInt8CalibrationFile = "int8_calibration.json";
/// Fewer calibration images than this are refused.
inline constexpr int64_t kMinCalibrationImages = 16;

/// A calibration kept in `file` (a run's int8_calibration.json) when every
/// field of `recipe` (what it was made from: the weights' sha256, the data,
/// N, ...) has the same value there; else nullopt, with a log line when the
/// file exists but was made from another recipe. Throws graft::Error naming
/// a damaged file.
std::optional<Int8Calibration> read_kept_int8_calibration(const std::string& file,
                                                          const nlohmann::ordered_json& recipe);
/// Writes `c` and its `recipe` to `file` atomically; a file that cannot be
/// written is a warning (the next call calibrates again), not an error.
void keep_int8_calibration(const std::string& file, const Int8Calibration& c, const nlohmann::ordered_json& recipe);

/// The calibration images: options.calibration images (at most; all when the
/// set has fewer, with a warning) drawn without replacement by a seeded
/// permutation (seed 0) from `data`, with the evaluation transform of
/// `spec`, in batches of options.batch_size. Throws graft::UsageError naming
/// `option` when `data` is missing or gives fewer than
/// kMinCalibrationImages images, or options.calibration is below it.
std::vector<torch::Tensor> calibration_batches(const std::string& data, const InputSpec& spec,
                                               const InferOptions& options, const std::string& option);

/// With options.precision int8: checks that the model has an int8 path,
/// reads `run`/int8_calibration.json when it was made for these weights
/// (sha256 of model.safetensors), this data and this many images, or else
/// calibrates on the run's training data (options.calibration_data, or
/// config.json's options.data) and writes the file atomically (a folder that
/// cannot be written gets a warning, not an error); then installs the int8
/// network on loaded.model. Call it before prepare_for_inference, so that
/// the BatchNorms are folded as PyTorch FX folds them. Other precisions:
/// nothing.
void prepare_int8_run(LoadedModel& loaded, const std::string& run, const InferOptions& options);

/// As prepare_int8_run for a source model (no run folder): calibrates on
/// options.calibration_data, which must be given, and keeps nothing.
void prepare_int8_source(BackboneImpl& model, const std::string& backbone, const InputSpec& spec,
                         const InferOptions& options);

}  // namespace graft
