#pragma once
/// Reading the state_dict files that torch.save writes, without Python and
/// without torch::pickle_load: the zip format (PyTorch >= 1.6) and the legacy
/// format before it. Nothing in the file is executed: its pickle may only
/// name OrderedDict, the tensor-rebuilding functions and the storage types
/// (see the error message for the full list).

#include <string>

#include "graft/weights/safetensors.h"

namespace graft {

/// True when `bytes` start like a torch.save file: a zip archive ("PK") or
/// the legacy format's magic-number pickle (0x80 0x02 0x8a 0x0a ...).
bool is_torch_checkpoint(const std::string& bytes);

/// Parses a torch.save file held in `bytes`; `name` (usually the path) is used
/// in errors. The pickled object must be a dict of name -> tensor, possibly
/// wrapped (also repeatedly) in {"state_dict"|"model"|"net": dict}; values
/// that are not tensors (an epoch, 'best_prec1') are skipped. Names are
/// returned as stored ("module." is not removed) in pickle order; a repeated
/// name keeps its last tensor at its first position.
///
/// Accepted: zip archives with any top folder name (`<name>/data.pkl`,
/// `<name>/data/<key>`, optional `<name>/byteorder` = "little"), entries
/// stored uncompressed; legacy files (magic, protocol 1001, sys_info, object,
/// storage keys, then per key an 8-byte element count and the raw data);
/// pickle protocols 2-5; storages of float32/float16/bfloat16/float64/int64/
/// int32/int16/int8/uint8/bool saved on any device (all load to the CPU).
/// Tensors that shared a storage in the file share one here; views keep
/// their offset and strides.
///
/// Throws graft::Error naming `name` and what was expected for anything else:
/// a truncated or damaged archive, a missing entry, wrong magic, an unknown
/// opcode, a class outside the allow-list, an unknown storage type, a view
/// outside its storage, sizes and strides that disagree, or no tensors.
/// Files that would stand for far more memory than their size are refused
/// too: zip entries that share bytes (or reach into the central directory),
/// storages larger in total than the file, a pickle memo with more entries
/// than values, and a pickle making more than 4 objects (values, container
/// elements, memo entries) per byte of it plus 65536.
TensorList parse_torch_checkpoint(const std::string& bytes, const std::string& name);

/// Reads and parses a torch.save file; see parse_torch_checkpoint. A path
/// that is not a regular file (/dev/zero, a FIFO, a folder) is refused before
/// anything is read.
TensorList load_torch_checkpoint(const std::string& path);

}  // namespace graft
