// graft export --format safetensors-hf: a run folder as torchvision or
// Hugging Face transformers load it (include/graft/export/hf.h).

#include "graft/export/hf.h"

#include <filesystem>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/models/registry.h"
#include "graft/models/saved_model.h"
#include "graft/text/text_model.h"
#include "graft/weights/safetensors.h"
#include "graft/weights/state_dict.h"

namespace graft {
namespace {

void write_json_file(const std::string& path, const nlohmann::ordered_json& j) {
  write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace

void export_image_run_hf(const std::string& run, const std::string& out) {
  LoadedModel m = load_model(run);
  const ModelInfo& info = m.info;
  const std::string& family = find_backbone(info.backbone).family;
  GRAFT_CHECK(family != "cifar_resnet", "--format safetensors-hf: '", run, "' is a ", info.backbone,
              " run, and torchvision has no CIFAR ResNet (its model.safetensors holds akamaster's names: "
              "pytorch_resnet_cifar10's resnet.py loads it)");
  GRAFT_CHECK(info.head == "linear", "--format safetensors-hf: '", run, "' has head '", info.head,
              "', which is not a torchvision module (expected a linear head; --format onnx exports every head)");
  nlohmann::ordered_json config;
  config["library"] = "torchvision";
  config["architecture"] = info.backbone;  // the torchvision.models builder of the same name
  nlohmann::ordered_json kwargs;
  kwargs["num_classes"] = info.classes.size();
  if (family == "googlenet") {
    kwargs["aux_logits"] = false;
    kwargs["transform_input"] = info.transform_input;
    kwargs["init_weights"] = false;
  }
  config["kwargs"] = kwargs;
  config["classes"] = info.classes;
  config["input_size"] = info.input.size;
  config["resize"] = info.input.resize;
  config["mean"] = info.input.mean;
  config["std"] = info.input.std;
  config["graft_version"] = GRAFT_VERSION;
  config["usage"] = str_cat("model = torchvision.models.", info.backbone,
                            "(**config['kwargs']); model.load_state_dict(safetensors.torch.load_file("
                            "'model.safetensors'))");
  std::filesystem::create_directories(out);
  write_json_file(out + "/config.json", config);
  save_safetensors(out + "/model.safetensors", state_dict(*m.model), {{"format", "pt"}});
}

void export_text_run_hf(const std::string& run, const std::string& out) {
  TextModel m = load_text_model(run);
  const TextModelInfo& i = m.info;
  GRAFT_CHECK(i.architecture == "bert", "--format safetensors-hf: '", run, "' is a ",
              i.architecture == "tfidf" ? "TF-IDF" : i.architecture,  // textcnn: named, not called TF-IDF
              " run, which transformers has no model for",
              i.architecture == "tfidf" ? " (--format onnx exports it)" : "");
  GRAFT_CHECK(i.head == "linear", "--format safetensors-hf: '", run, "' has head '", i.head,
              "', which BertForSequenceClassification does not have (expected linear; --format onnx exports it)");
  // transformers reads config.json: what graft keeps as bert_config.json.
  nlohmann::ordered_json config = read_ordered_json_file(run + "/bert_config.json");
  config["num_labels"] = i.classes.size();
  std::filesystem::create_directories(out);
  write_json_file(out + "/config.json", config);
  nlohmann::ordered_json tokenizer;
  tokenizer["tokenizer_class"] = "BertTokenizer";
  tokenizer["do_lower_case"] = i.lower_case;
  tokenizer["model_max_length"] = i.max_length;
  write_json_file(out + "/tokenizer_config.json", tokenizer);
  write_file_atomic(out + "/vocab.txt", read_file(run + "/vocab.txt"));
  save_safetensors(out + "/model.safetensors", state_dict(m.module()), {{"format", "pt"}});
}

}  // namespace graft
