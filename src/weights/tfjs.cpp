#include "graft/weights/tfjs.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"

namespace graft {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Widens IEEE half bits to float (exact for every half value).
float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Bytes per element of a stored (possibly quantized) dtype.
size_t stored_bytes(const std::string& dtype, const std::string& where) {
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "uint16" || dtype == "float16") return 2;
  if (dtype == "bool" || dtype == "uint8") return 1;
  throw Error(str_cat(where, ": unsupported dtype '", dtype,
                      "' (expected float32, int32 or bool; quantized uint8, uint16 or float16)"));
}

template <typename T>
T get_field(const Json& obj, const char* key, const std::string& where) {
  GRAFT_CHECK(obj.is_object() && obj.contains(key), where, ": missing \"", key, "\"");
  try {
    return obj.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(str_cat(where, ": \"", key, "\" has the wrong type (", obj.at(key).type_name(), ")"));
  }
}

// Decodes one weight from `data` (exactly its stored bytes).
torch::Tensor decode(const Json& w, const std::string& where, const std::vector<int64_t>& shape,
                     int64_t numel, const char* data) {
  // Older converters name the dequantized dtype only in the quantization.
  bool original = !w.contains("dtype") && w.contains("quantization") &&
                  w.at("quantization").is_object() &&
                  w.at("quantization").contains("original_dtype");
  std::string dtype = original
                          ? get_field<std::string>(w.at("quantization"), "original_dtype", where)
                          : get_field<std::string>(w, "dtype", where);
  torch::ScalarType out_type;
  if (dtype == "float32") {
    out_type = torch::kFloat32;
  } else if (dtype == "int32") {
    out_type = torch::kInt32;
  } else if (dtype == "bool") {
    out_type = torch::kBool;
  } else {
    stored_bytes(dtype, where);  // throws for unknown names
    throw Error(str_cat(where, ": dtype '", dtype,
                        "' is only valid as a quantization dtype (expected float32, int32 or bool)"));
  }
  if (!w.contains("quantization")) {
    if (out_type == torch::kBool) {
      // Any non-zero byte is true, as a Uint8Array read as bool.
      torch::Tensor raw = torch::empty(shape, torch::kUInt8);
      if (numel > 0) std::memcpy(raw.data_ptr(), data, static_cast<size_t>(numel));
      return raw.ne(0);
    }
    torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(out_type));
    if (numel > 0) std::memcpy(t.data_ptr(), data, static_cast<size_t>(numel) * 4);
    return t;
  }
  const Json& q = w.at("quantization");
  std::string qwhere = where + " quantization";
  std::string qtype = get_field<std::string>(q, "dtype", qwhere);
  GRAFT_CHECK(out_type != torch::kBool, where, ": a bool weight cannot be quantized");
  if (qtype == "float16") {
    GRAFT_CHECK(out_type == torch::kFloat32, where, ": float16 quantization of a ", dtype,
                " weight (expected float32)");
    torch::Tensor f = torch::empty(shape, torch::kFloat32);
    float* out = f.data_ptr<float>();
    for (int64_t i = 0; i < numel; ++i) {
      uint16_t h;
      std::memcpy(&h, data + 2 * i, 2);
      out[i] = half_to_float(h);
    }
    return f;
  }
  GRAFT_CHECK(qtype == "uint8" || qtype == "uint16", qwhere, ": unsupported dtype '", qtype,
              "' (expected uint8, uint16 or float16)");
  double scale = get_field<double>(q, "scale", qwhere);
  double min = get_field<double>(q, "min", qwhere);
  torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(out_type));
  for (int64_t i = 0; i < numel; ++i) {
    double v;
    if (qtype == "uint8") {
      v = static_cast<unsigned char>(data[i]);
    } else {
      uint16_t u;
      std::memcpy(&u, data + 2 * i, 2);
      v = u;
    }
    // In double, then stored: as TF.js fills a Float32Array (or rounds for int32).
    double x = v * scale + min;
    if (out_type == torch::kInt32)
      t.data_ptr<int32_t>()[i] = static_cast<int32_t>(std::floor(x + 0.5));  // Math.round
    else
      t.data_ptr<float>()[i] = static_cast<float>(x);
  }
  return t;
}

}  // namespace

bool is_tfjs_manifest(const std::string& json_text) {
  Json j;
  try {
    j = parse_json(json_text, "a TF.js manifest");
  } catch (const Error&) {
    return false;
  }
  return j.is_array() || (j.is_object() && j.contains("weightsManifest"));
}

TensorList parse_tfjs_weights(const std::string& json_text, const std::string& manifest_path) {
  return parse_tfjs_weights(json_text, manifest_path, [](const std::string& shard) {
    GRAFT_CHECK(fs::is_regular_file(shard), "shard '", shard, "' is missing");
    return read_regular_file(shard);
  });
}

TensorList parse_tfjs_weights(const std::string& json_text, const std::string& manifest_path,
                              const ShardReader& read_shard) {
  Json j = parse_json(json_text, "'" + manifest_path + "'");
  if (j.is_object() && j.contains("weightsManifest")) j = j.at("weightsManifest");
  GRAFT_CHECK(j.is_array(), "'", manifest_path,
              "' is not a TF.js weights manifest (expected a JSON array of groups or an object "
              "with \"weightsManifest\")");
  fs::path dir = fs::path(manifest_path).parent_path();
  TensorList out;
  for (size_t g = 0; g < j.size(); ++g) {
    const Json& group = j[g];
    std::string gwhere = str_cat("'", manifest_path, "' group ", g);
    auto paths = get_field<std::vector<std::string>>(group, "paths", gwhere);
    GRAFT_CHECK(group.contains("weights") && group.at("weights").is_array(), gwhere,
                ": missing \"weights\" array");
    const Json& weights = group.at("weights");

    // The bytes each weight needs, checked before any shard is read.
    std::vector<std::vector<int64_t>> shapes;
    std::vector<int64_t> numels;
    std::vector<size_t> sizes;
    size_t needed = 0;
    for (size_t k = 0; k < weights.size(); ++k) {
      const Json& w = weights[k];
      std::string where = str_cat(gwhere, " weight ", k);
      std::string name = get_field<std::string>(w, "name", where);
      where = str_cat(gwhere, " weight '", name, "'");
      auto shape = get_field<std::vector<int64_t>>(w, "shape", where);
      int64_t numel = 1;
      for (int64_t d : shape) {
        GRAFT_CHECK(d >= 0, where, ": negative dimension ", d, " in its shape");
        GRAFT_CHECK(d == 0 || numel <= (int64_t{1} << 40) / d, where, ": shape too large (",
                    "more than 2^40 values)");
        numel *= d;
      }
      std::string dtype = w.contains("quantization")
                              ? get_field<std::string>(w.at("quantization"), "dtype",
                                                       where + " quantization")
                              : get_field<std::string>(w, "dtype", where);
      shapes.push_back(shape);
      numels.push_back(numel);
      sizes.push_back(static_cast<size_t>(numel) * stored_bytes(dtype, where));
      needed += sizes.back();
    }

    std::string buffer;
    for (const auto& p : paths) {
      std::string shard = (dir / p).string();
      try {
        buffer += read_shard(shard);
      } catch (const Error& e) {
        throw Error(str_cat(gwhere, ": ", e.what()));
      }
    }
    GRAFT_CHECK(buffer.size() == needed, gwhere, ": its shards (", paths.size(), " files from '",
                (dir / (paths.empty() ? std::string() : paths.front())).string(), "') hold ",
                buffer.size(), " bytes but its weights need ", needed, " bytes");

    size_t offset = 0;
    for (size_t k = 0; k < weights.size(); ++k) {
      const Json& w = weights[k];
      std::string name = w.at("name").get<std::string>();
      std::string where = str_cat(gwhere, " weight '", name, "'");
      out.emplace_back(name, decode(w, where, shapes[k], numels[k], buffer.data() + offset));
      offset += sizes[k];
    }
  }
  return out;
}

TensorList read_tfjs_weights(const std::string& manifest_path) {
  return parse_tfjs_weights(read_regular_file(manifest_path), manifest_path);
}

}  // namespace graft
