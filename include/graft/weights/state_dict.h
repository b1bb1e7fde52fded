#pragma once
/// Reading weight files into named tensors, and loading them into a module
/// with a report of missing, unexpected and mismatched names.

#include <string>
#include <vector>

#include <torch/torch.h>

#include "graft/weights/safetensors.h"

namespace graft {

/// Reads a weight file: safetensors (by its header), or a torch.save file in
/// the zip format (1.6+) or the legacy format, read by graft's own reader
/// (torch_checkpoint.h: no code in the file is executed). A {name: tensor}
/// dict may be wrapped in {"state_dict"|"model"|"net": ...}; tensors saved on
/// CUDA load to the CPU. A leading "module." (DataParallel) is removed from
/// every name. Also a sharded safetensors checkpoint
/// (model.safetensors.index.json, or a folder holding it or a single
/// model.safetensors) and a TF.js weights manifest (*.json, see tfjs.h).
/// Throws graft::Error naming the file.
TensorList read_weights(const std::string& path);

struct LoadReport {
  std::vector<std::string> missing;     // in the module, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the module
  std::vector<std::string> mismatched;  // "name: file [a, b] vs model [c, d]"
  size_t loaded = 0;                    // tensors copied into the module
  bool clean() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string summary() const;
};

/// The module's parameters and buffers by name, in registration order.
TensorList state_dict(const torch::nn::Module& module);

/// Copies tensors into the module's parameters and buffers of the same name
/// and shape; others are reported. Names starting with one of `skip_prefixes`
/// (e.g. the source classifier) are neither loaded nor reported.
LoadReport load_state_dict(torch::nn::Module& module, const TensorList& tensors,
                           const std::vector<std::string>& skip_prefixes = {});

}  // namespace graft
