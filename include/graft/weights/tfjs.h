#pragma once
/// TF.js weights: a manifest (`*-weights_manifest.json`, a JSON array of
/// groups, or `model.json` with a "weightsManifest" key holding that array)
/// and binary shard files. Each group {"paths": [...], "weights": [...]} has
/// its shards concatenated in order into one buffer holding its weights back
/// to back, little-endian, in manifest order. A weight {"name", "shape",
/// "dtype", optional "quantization": {"dtype", "scale", "min"}} occupies
/// numel times the byte size of its stored dtype (the quantization dtype when
/// quantized). uint8/uint16 values are dequantized as q * scale + min (in
/// double, stored as float32, as TF.js does; rounded as Math.round for int32
/// weights); float16 is widened to float32. The output dtype is the weight's
/// "dtype" (or the quantization's "original_dtype" when that is absent).

#include <functional>
#include <string>

#include "graft/weights/safetensors.h"

namespace graft {

/// True when `json_text` is a TF.js manifest: a JSON array, or an object with
/// a "weightsManifest" key. Unparsable text is not a manifest (false).
bool is_tfjs_manifest(const std::string& json_text);

/// Parses a TF.js manifest; shards are read relative to the folder of
/// `manifest_path` (used also in error messages). Tensors come in manifest
/// order, named as in the manifest. Throws graft::Error naming the manifest
/// or shard on bad JSON, an unknown dtype, a negative dimension, a missing
/// shard, or shard data shorter or longer than the weights need.
TensorList parse_tfjs_weights(const std::string& json_text, const std::string& manifest_path);

/// Returns the bytes of the shard at `path` (the manifest's folder joined
/// with the manifest's path) or throws graft::Error when it is missing.
using ShardReader = std::function<std::string(const std::string& path)>;

/// As above, with the shards supplied by `read_shard` instead of the disk
/// (used by the fuzz target, and by callers that hold shards in memory).
TensorList parse_tfjs_weights(const std::string& json_text, const std::string& manifest_path,
                              const ShardReader& read_shard);

/// Reads a TF.js manifest file and its shards (see parse_tfjs_weights).
TensorList read_tfjs_weights(const std::string& manifest_path);

}  // namespace graft
