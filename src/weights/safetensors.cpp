#include "graft/weights/safetensors.h"

#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"

namespace graft {

namespace {

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
};

const DtypeInfo kDtypes[] = {
    {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"F64", torch::kFloat64}, {"I64", torch::kInt64},   {"I32", torch::kInt32},
    {"I16", torch::kInt16},   {"I8", torch::kInt8},     {"U8", torch::kUInt8},
    {"BOOL", torch::kBool},
};

const char* dtype_name(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  throw Error(str_cat("safetensors: tensor dtype ", c10::toString(t), " cannot be stored"));
}

}  // namespace

std::string safetensors_bytes(const TensorList& tensors,
                              const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    GRAFT_CHECK(name != "__metadata__", "safetensors: '__metadata__' is reserved");
    GRAFT_CHECK(!header.contains(name), "safetensors: tensor name '", name, "' appears twice");
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    uint64_t n = c.numel() * c.element_size();
    nlohmann::ordered_json entry;
    entry["dtype"] = dtype_name(c.scalar_type());
    entry["shape"] = c.sizes().vec();
    entry["data_offsets"] = {offset, offset + n};
    header[name] = entry;
    offset += n;
    data.push_back(c);
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // align the data start to 8 bytes
  std::string out;
  out.reserve(8 + h.size() + offset);
  uint64_t len = h.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  out += h;
  for (const auto& c : data)
    out.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  return out;
}

void save_safetensors(const std::string& path, const TensorList& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, safetensors_bytes(tensors, metadata));
}

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& name) {
  GRAFT_CHECK(bytes.size() >= 8, "'", name, "' is not a safetensors file: ", bytes.size(),
              " bytes, expected at least an 8-byte header length");
  uint64_t len = 0;
  for (int i = 0; i < 8; ++i) len |= uint64_t(static_cast<uint8_t>(bytes[i])) << (8 * i);
  GRAFT_CHECK(len <= bytes.size() - 8, "'", name, "' is not a valid safetensors file: header length ",
              len, " exceeds the file size ", bytes.size());
  const nlohmann::json header =
      parse_json(std::string(bytes.data() + 8, len), "the header of safetensors file '" + name + "'");
  GRAFT_CHECK(header.is_object(), "'", name, "': safetensors header must be a JSON object");
  const uint64_t data_size = bytes.size() - 8 - len;
  const char* base = bytes.data() + 8 + len;
  SafetensorsFile out;
  // Every entry is checked, and the offsets together, before any tensor is
  // allocated: tensors sharing bytes could otherwise make a small file
  // allocate many times its size.
  struct Entry {
    std::string key;
    const DtypeInfo* info = nullptr;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;
  };
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "__metadata__") {
      GRAFT_CHECK(v.is_object(), "'", name, "': __metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        GRAFT_CHECK(m.value().is_string(), "'", name, "': __metadata__ value '", m.key(),
                    "' must be a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    GRAFT_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") &&
                    v.contains("data_offsets"),
                "'", name, "': tensor '", key, "' needs dtype, shape and data_offsets");
    GRAFT_CHECK(v["dtype"].is_string(), "'", name, "': tensor '", key, "' dtype must be a string");
    std::string dt = v["dtype"].get<std::string>();
    const DtypeInfo* info = nullptr;
    for (const auto& d : kDtypes)
      if (dt == d.name) info = &d;
    GRAFT_CHECK(info != nullptr, "'", name, "': tensor '", key, "' has dtype '", dt,
                "' (expected one of F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)");
    GRAFT_CHECK(v["shape"].is_array(), "'", name, "': tensor '", key, "' shape must be an array");
    const uint64_t esize = c10::elementSize(info->type);
    std::vector<int64_t> shape;
    // numel: the element count; extent: the product of the non-zero
    // dimensions times the element size, which LibTorch computes for
    // strides and sizes even when a dimension is 0. Both must fit in int64.
    uint64_t numel = 1, extent = esize;
    std::string dims;
    for (const auto& d : v["shape"]) {
      dims += (dims.empty() ? "" : ", ") + d.dump();
      GRAFT_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
                  "'", name, "': tensor '", key, "' has a negative or non-integer dimension ",
                  d.dump(), "; expected integers from 0 to ", std::numeric_limits<int64_t>::max());
      uint64_t dim = d.get<uint64_t>();
      constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      uint64_t e = extent;
      GRAFT_CHECK(dim <= kMax && (dim == 0 || !__builtin_mul_overflow(extent, dim, &e)) && e <= kMax,
                  "'", name, "': tensor '", key, "' has shape [", dims, "...]: its size overflows ",
                  "64-bit arithmetic; expected at most ", kMax, " bytes");
      extent = e;
      numel *= dim;  // <= extent, or 0
      shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& off = v["data_offsets"];
    GRAFT_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() &&
                    off[1].is_number_unsigned(),
                "'", name, "': tensor '", key, "' data_offsets must be two non-negative integers");
    uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    uint64_t expected = numel * esize;
    GRAFT_CHECK(begin <= end && end <= data_size, "'", name, "': tensor '", key,
                "' data_offsets [", begin, ", ", end, "] fall outside the data (", data_size,
                " bytes); the file may be truncated");
    GRAFT_CHECK(end - begin == expected, "'", name, "': tensor '", key, "' holds ", end - begin,
                " bytes, expected ", expected, " for dtype ", dt, " and its shape");
    entries.push_back({key, info, std::move(shape), begin, end});
  }
  // As Hugging Face's reader: sorted by offset, the tensors must cover the
  // data section exactly, without overlaps or gaps.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    GRAFT_CHECK(e.begin == covered, "'", name, "': tensor '", e.key, "' data_offsets [", e.begin,
                ", ", e.end, "] ", e.begin < covered ? "overlap" : "leave a gap after",
                previous ? str_cat(" tensor '", previous->key, "' (ending at ", covered, ")")
                         : std::string(" the start of the data"),
                "; expected each tensor to start where the previous one ends, at ", covered);
    covered = e.end;
    previous = &e;
  }
  GRAFT_CHECK(covered == data_size, "'", name, "': the tensors cover ", covered,
              " bytes of the data section, but it holds ", data_size,
              " bytes; expected them to cover it exactly");
  for (const Entry& e : entries) {
    const uint64_t n = e.end - e.begin;
    if (e.info->type == torch::kBool) {
      // A bool outside {0, 1} is undefined behaviour in LibTorch's kernels.
      for (uint64_t i = 0; i < n; ++i) {
        const uint8_t b = static_cast<uint8_t>(base[e.begin + i]);
        GRAFT_CHECK(b <= 1, "'", name, "': BOOL tensor '", e.key, "' holds the byte ",
                    static_cast<int>(b), " at element ", i, "; expected 0 or 1");
      }
    }
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.info->type));
    if (n > 0) std::memcpy(t.data_ptr(), base + e.begin, n);
    out.tensors.emplace_back(e.key, std::move(t));
  }
  return out;
}

SafetensorsFile load_safetensors(const std::string& path) {
  return parse_safetensors(read_regular_file(path), path);
}

}  // namespace graft
