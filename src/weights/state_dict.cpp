#include "graft/weights/state_dict.h"

#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/weights/tfjs.h"
#include "graft/weights/torch_checkpoint.h"

namespace graft {

namespace {

std::string shape_str(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

std::string strip_module_prefix(const std::string& name) {
  return name.rfind("module.", 0) == 0 ? name.substr(7) : name;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A Hugging Face sharded checkpoint: {"metadata": {...}, "weight_map":
// {tensor: shard}}, shards next to the index. Tensors in weight_map order.
TensorList read_sharded_safetensors(const nlohmann::ordered_json& index, const std::string& path) {
  namespace fs = std::filesystem;
  const auto& map = index.at("weight_map");
  GRAFT_CHECK(map.is_object(), "'", path, "': \"weight_map\" is not an object of tensor name -> "
              "shard file (got ", map.type_name(), ")");
  fs::path dir = fs::path(path).parent_path();
  std::map<std::string, std::map<std::string, torch::Tensor>> shards;
  TensorList out;
  for (const auto& [name, value] : map.items()) {
    GRAFT_CHECK(value.is_string(), "'", path, "': the shard of tensor '", name,
                "' is not a file name (got ", value.type_name(), ")");
    std::string shard = value.get<std::string>();
    auto it = shards.find(shard);
    if (it == shards.end()) {
      std::string shard_path = (dir / shard).string();
      GRAFT_CHECK(fs::is_regular_file(shard_path), "'", path, "': shard '", shard_path,
                  "' (holding tensor '", name, "') is missing");
      std::map<std::string, torch::Tensor> named;
      for (auto& [n, t] : load_safetensors(shard_path).tensors) named.emplace(n, t);
      it = shards.emplace(shard, std::move(named)).first;
    }
    auto t = it->second.find(name);
    GRAFT_CHECK(t != it->second.end(), "'", path, "': tensor '", name, "' is not in its shard '",
                (dir / shard).string(), "' (", it->second.size(), " tensors there)");
    out.emplace_back(strip_module_prefix(name), t->second);
  }
  return out;
}

// A .json weight description: a safetensors index or a TF.js manifest.
TensorList read_json_weights(const std::string& path) {
  std::string text = read_regular_file(path);
  nlohmann::ordered_json j = parse_ordered_json(text, "'" + path + "'");
  if (j.is_object() && j.contains("weight_map")) return read_sharded_safetensors(j, path);
  if (j.is_array() || (j.is_object() && j.contains("weightsManifest")))
    return parse_tfjs_weights(text, path);
  throw Error(str_cat("'", path,
                      "' is JSON but neither a safetensors index (with \"weight_map\") nor a "
                      "TF.js weights manifest (an array, or an object with \"weightsManifest\")"));
}

}  // namespace

TensorList read_weights(const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) {
    for (const char* name : {"model.safetensors.index.json", "model.safetensors"}) {
      std::string candidate = (fs::path(path) / name).string();
      if (fs::is_regular_file(candidate)) return read_weights(candidate);
    }
    throw Error(str_cat("'", path, "' is a folder without model.safetensors.index.json or "
                        "model.safetensors"));
  }
  if (ends_with(path, ".json")) return read_json_weights(path);
  std::string bytes = read_regular_file(path);
  GRAFT_CHECK(bytes.size() >= 9, "'", path, "' is too short (", bytes.size(),
              " bytes) to be a weight file");
  // Checked first: a zip or legacy torch.save file never has '{' at byte 8,
  // but a safetensors header length may begin with the bytes "PK".
  if (bytes[8] == '{') {
    TensorList out = parse_safetensors(bytes, path).tensors;
    for (auto& [name, t] : out) name = strip_module_prefix(name);
    return out;
  }
  if (is_torch_checkpoint(bytes)) {
    TensorList out = parse_torch_checkpoint(bytes, path);
    for (auto& [name, t] : out) name = strip_module_prefix(name);
    return out;
  }
  throw Error(str_cat("'", path,
                      "' is not a weight file graft reads (expected safetensors or a torch.save "
                      "state_dict, zip or legacy format)"));
}

TensorList state_dict(const torch::nn::Module& module) {
  TensorList out;
  for (const auto& p : module.named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

std::string LoadReport::summary() const {
  std::string s;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    s += str_cat(v.size(), " ", what, ": ");
    for (size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > 8) s += str_cat(", ... (", v.size() - 8, " more)");
    s += "; ";
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("shape-mismatched", mismatched);
  if (!s.empty()) s.resize(s.size() - 2);
  return s;
}

LoadReport load_state_dict(torch::nn::Module& module, const TensorList& tensors,
                           const std::vector<std::string>& skip_prefixes) {
  auto skipped = [&](const std::string& name) {
    for (const auto& p : skip_prefixes)
      if (name == p || name.rfind(p + ".", 0) == 0) return true;
    return false;
  };
  std::map<std::string, torch::Tensor> targets;
  for (const auto& p : module.named_parameters(true)) targets[p.key()] = p.value();
  for (const auto& b : module.named_buffers(true)) targets[b.key()] = b.value();

  LoadReport report;
  std::set<std::string> seen;
  torch::NoGradGuard no_grad;
  for (const auto& [name, src] : tensors) {
    if (skipped(name)) continue;
    auto it = targets.find(name);
    if (it == targets.end()) {
      report.unexpected.push_back(name);
      continue;
    }
    seen.insert(name);
    torch::Tensor dst = it->second;
    if (dst.sizes() != src.sizes()) {
      report.mismatched.push_back(name + ": file " + shape_str(src) + " vs model " + shape_str(dst));
      continue;
    }
    dst.copy_(src.to(dst.device(), dst.scalar_type()));
    ++report.loaded;
  }
  // Checkpoints older than PyTorch 0.4.1 have no BatchNorm step counter;
  // PyTorch loads them silently, and so does graft (the counter stays 0).
  auto optional = [](const std::string& name) {
    const std::string suffix = ".num_batches_tracked";
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const auto& [name, t] : targets)
    if (!seen.count(name) && !skipped(name) && !optional(name)) report.missing.push_back(name);
  return report;
}

}  // namespace graft
