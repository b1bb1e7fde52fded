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
/// dtype and shape is checked: a bad file throws graft::Error naming it. As
/// Hugging Face's reader: sorted by offset, the tensors must cover the data
/// section exactly (no overlaps, no gaps, nothing after the last), a shape's
/// element count and byte size must fit in 64 bits, and BOOL bytes must be
/// 0 or 1. All of this is checked before any tensor is allocated.
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& name);

/// Reads a safetensors file. A path that is not a regular file (/dev/zero, a
/// FIFO, a folder) is refused before anything is read.
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace graft
