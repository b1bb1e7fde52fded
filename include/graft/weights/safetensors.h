#pragma once
/// safetensors: 8-byte little-endian header length, a JSON header
/// {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then the
/// raw little-endian tensor bytes. Readable by Python's safetensors and back.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace graft {

/// Named tensors in a stable order (the order they were added or stored).
using TensorList = std::vector<std::pair<std::string, torch::Tensor>>;

/// Serialises tensors (any device; written as contiguous CPU data) with
/// optional string metadata. Tensors are laid out in the order given.
std::string safetensors_bytes(const TensorList& tensors,
                              const std::map<std::string, std::string>& metadata = {});

/// Writes a safetensors file atomically.
void save_safetensors(const std::string& path, const TensorList& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  TensorList tensors;  // in file-offset order
  std::map<std::string, std::string> metadata;
};

/// Parses safetensors bytes; `name` is used in error messages. Every offset,
/// dtype and shape is checked: a bad file throws graft::Error naming it.
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& name);

/// Reads a safetensors file.
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace graft
