#pragma once
/// A trained model on disk: model.safetensors (torchvision parameter names,
/// the new head in the classifier slot) and model.json (architecture,
/// classes, preprocessing). Python can rebuild it with torchvision and
/// load_state_dict.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graft/data/input_spec.h"
#include "graft/models/backbone.h"

namespace graft {

struct ModelInfo {
  std::string task = "image";
  std::string backbone;  // registry name
  std::string head = "linear";
  std::vector<std::string> classes;
  InputSpec input;
  std::string source_weights;  // what the backbone started from
  /// The network's transform_input (BackboneSpec::transform_input). In
  /// model.json as "transform_input" when true; a model.json without it
  /// (every run saved before googlenet had the transform) means false, so
  /// such runs load and predict as before.
  bool transform_input = false;
};

nlohmann::ordered_json to_json(const ModelInfo& info);
ModelInfo model_info_from_json(const nlohmann::json& j, const std::string& source);

/// Builds the registry backbone (with info.transform_input) and the head of
/// `info` (not initialised from any file).
Backbone build_model(const ModelInfo& info);

/// Writes model.safetensors and model.json into `dir`, atomically each.
/// A centroid head's weights also name its classes (metadata
/// "graft_classes"); load_model takes the classes from there when present.
void save_model(const std::string& dir, BackboneImpl& model, const ModelInfo& info);
/// The weights-file metadata key under which a centroid run (image or text)
/// names its classes.
inline constexpr const char* kWeightClassesKey = "graft_classes";
/// The classes that a weights file's metadata names (kWeightClassesKey), or
/// nullopt; throws graft::Error naming `path` when the entry is malformed.
std::optional<std::vector<std::string>> weight_file_classes(const std::map<std::string, std::string>& metadata,
                                                            const std::string& path);
/// model.safetensors alone (atomically), with the classes of a centroid head.
void save_model_weights(const std::string& dir, BackboneImpl& model, const ModelInfo& info);

struct LoadedModel {
  ModelInfo info;
  Backbone model{nullptr};
};

/// Reads a run directory (or a folder holding model.json and
/// model.safetensors). Throws graft::Error naming the file if anything is
/// missing or does not match the architecture.
LoadedModel load_model(const std::string& dir);

}  // namespace graft
