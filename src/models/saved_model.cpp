#include "graft/models/saved_model.h"

#include <filesystem>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/models/head.h"
#include "graft/models/registry.h"
#include "graft/weights/safetensors.h"
#include "graft/weights/state_dict.h"

namespace graft {


nlohmann::ordered_json to_json(const ModelInfo& info) {
  nlohmann::ordered_json j;
  j["format"] = "graft-model";
  j["format_version"] = 1;
  j["graft_version"] = GRAFT_VERSION;
  j["task"] = info.task;
  j["backbone"] = info.backbone;
  j["head"] = info.head;
  j["num_classes"] = info.classes.size();
  j["classes"] = info.classes;
  j["input"] = {{"size", info.input.size},
                {"resize", info.input.resize},
                {"channels", info.input.channels},
                {"mean", info.input.mean},
                {"std", info.input.std}};
  j["source_weights"] = info.source_weights;
  // Only when true: torchvision's GoogLeNet flag, meaningless elsewhere, and
  // its absence means false (runs saved before it existed).
  if (info.transform_input) j["transform_input"] = true;
  return j;
}

ModelInfo model_info_from_json(const nlohmann::json& j, const std::string& source) {
  try {
    GRAFT_CHECK(j.value("format", "") == "graft-model", source,
                ": not a graft model description (expected \"format\": \"graft-model\")");
    ModelInfo info;
    info.task = j.at("task").get<std::string>();
    info.backbone = j.at("backbone").get<std::string>();
    info.head = j.at("head").get<std::string>();
    info.classes = j.at("classes").get<std::vector<std::string>>();
    const auto& in = j.at("input");
    info.input.size = in.at("size").get<int>();
    info.input.resize = in.at("resize").get<int>();
    info.input.channels = in.at("channels").get<int>();
    info.input.mean = in.at("mean").get<std::array<float, 3>>();
    info.input.std = in.at("std").get<std::array<float, 3>>();
    info.source_weights = j.value("source_weights", "");
    info.transform_input = j.value("transform_input", false);
    GRAFT_CHECK(!info.classes.empty(), source, ": \"classes\" is empty");
    return info;
  } catch (const nlohmann::json::exception& e) {
    throw Error(str_cat(source, ": malformed model description (", e.what(), ")"));
  }
}

Backbone build_model(const ModelInfo& info) {
  const BackboneSpec& spec = find_backbone(info.backbone);
  Backbone model = make_backbone(spec, spec.source_classes, info.transform_input);
  model->set_classifier(make_head(info.head, model->feature_dim(),
                                  static_cast<int64_t>(info.classes.size())));
  return model;
}

void save_model(const std::string& dir, BackboneImpl& model, const ModelInfo& info) {
  make_dirs(dir);
  // model.json is the same for every epoch of a run, so it goes first and the
  // weights last: a kill between the two leaves either the previous model or
  // none, never weights without their description.
  write_file_atomic(dir + "/model.json", to_json(info).dump(2) + "\n");
  save_model_weights(dir, model, info);
}

void save_model_weights(const std::string& dir, BackboneImpl& model, const ModelInfo& info) {
  std::map<std::string, std::string> meta{{"format", "pt"}, {"graft_backbone", info.backbone}};
  // A centroid run's classes change with graft enroll: its weights name
  // them too, so the weights file alone is the commit point of an enrolment.
  if (info.head == "centroid") meta[kWeightClassesKey] = nlohmann::json(info.classes).dump();
  save_safetensors(dir + "/model.safetensors", state_dict(model), meta);
}

std::optional<std::vector<std::string>> weight_file_classes(const std::map<std::string, std::string>& metadata,
                                                            const std::string& path) {
  auto named = metadata.find(kWeightClassesKey);
  if (named == metadata.end()) return std::nullopt;
  const nlohmann::json list = parse_json(named->second, str_cat(path, " (metadata ", kWeightClassesKey, ")"));
  GRAFT_CHECK(list.is_array() && !list.empty(), path, ": metadata ", kWeightClassesKey,
              " is not a list of class names");
  std::vector<std::string> classes;
  for (const auto& c : list) {
    GRAFT_CHECK(c.is_string(), path, ": metadata ", kWeightClassesKey, " holds a non-string class name");
    classes.push_back(c.get<std::string>());
  }
  return classes;
}

LoadedModel load_model(const std::string& dir) {
  std::string json_path = dir + "/model.json";
  std::string weights_path = dir + "/model.safetensors";
  GRAFT_CHECK(std::filesystem::exists(json_path), "'", dir,
              "' is not a graft run directory: model.json is missing");
  GRAFT_CHECK(std::filesystem::exists(weights_path), "'", dir,
              "' holds no trained model: model.safetensors is missing");
  const nlohmann::json j = read_json_file(json_path);
  LoadedModel out;
  out.info = model_info_from_json(j, json_path);
  SafetensorsFile weights = load_safetensors(weights_path);
  // Classes named by the weights win (graft enroll writes them first, then
  // model.json: a kill between the two leaves the weights' list current).
  if (auto named = weight_file_classes(weights.metadata, weights_path)) out.info.classes = *named;
  out.model = build_model(out.info);
  LoadReport report = load_state_dict(*out.model, weights.tensors);
  GRAFT_CHECK(report.clean(), weights_path, " does not match the ", out.info.backbone,
              " architecture in model.json: ", report.summary());
  out.model->eval();
  return out;
}

}  // namespace graft
