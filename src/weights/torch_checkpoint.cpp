#include "graft/weights/torch_checkpoint.h"

#include <cstring>
#include <map>
#include <memory>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "pickle.h"
#include "zip_reader.h"

namespace graft {

namespace {

using pickle::Kind;
using pickle::Value;
using pickle::ValuePtr;

// 0x1950a86a20f9469cfc6c as the little-endian bytes LONG1 stores.
const std::string kLegacyMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
constexpr int64_t kLegacyProtocol = 1001;

struct StorageId {
  torch::ScalarType dtype = torch::kFloat32;
  std::string key;
  int64_t numel = 0;
};

// A persistent id: ('storage', type, key, location, numel) in zip files,
// with a sixth field (view metadata) in legacy ones.
StorageId parse_pid(const Value& pid, size_t fields, const std::string& ctx) {
  const char* expected = fields == 5 ? "('storage', storage type, key, location, numel)"
                                     : "('storage', storage type, key, location, numel, view)";
  const auto& it = pid.items;
  GRAFT_CHECK(pid.kind == Kind::kTuple && it.size() == fields && it[0]->kind == Kind::kString &&
                  it[0]->s == "storage",
              ctx, ": a persistent id is not ", expected);
  GRAFT_CHECK(it[1]->kind == Kind::kGlobal, ctx, ": a storage type is a ", pickle::kind_name(it[1]->kind),
              ", expected a class such as torch.FloatStorage");
  GRAFT_CHECK(it[2]->kind == Kind::kString && it[3]->kind == Kind::kString, ctx,
              ": a storage key or location is not a string; expected ", expected);
  GRAFT_CHECK(it[4]->kind == Kind::kInt && it[4]->i >= 0, ctx,
              ": a storage size is not a non-negative int; expected ", expected);
  return {pickle::storage_dtype(it[1]->s, ctx), it[2]->s, it[4]->i};
}

// Allocates a storage of `numel` elements once it is known that `available`
// bytes could hold it, so that a hostile size cannot exhaust memory.
ValuePtr new_storage(const StorageId& id, uint64_t available, const std::string& ctx) {
  uint64_t esize = c10::elementSize(id.dtype);
  GRAFT_CHECK(static_cast<uint64_t>(id.numel) <= available / esize, ctx, ": storage '", id.key,
              "' claims ", id.numel, " elements of ", esize, " bytes, but only ", available,
              " bytes are there");
  auto v = std::make_shared<Value>();
  v->kind = Kind::kStorage;
  v->s = id.key;
  v->tensor = torch::empty({id.numel}, torch::TensorOptions().dtype(id.dtype));
  return v;
}

void fill_storage(const torch::Tensor& t, std::string_view bytes, const std::string& ctx,
                  const std::string& key) {
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  // A bool outside {0, 1} is undefined behaviour in LibTorch's kernels.
  if (t.scalar_type() == torch::kBool)
    for (char c : bytes)
      GRAFT_CHECK(static_cast<uint8_t>(c) <= 1, ctx, ": bool storage '", key,
                  "' holds a byte other than 0 or 1");
}

TensorList collect(const Value& v, const std::string& name, int depth) {
  GRAFT_CHECK(depth < 4, "'", name, "': state_dict wrappers nested more than 4 deep");
  GRAFT_CHECK(v.kind == Kind::kDict, "'", name, "' holds a ", pickle::kind_name(v.kind),
              ", expected a {name: tensor} dict (a state_dict)");
  for (const char* wrapper : {"state_dict", "model", "net"})
    for (const auto& [k, val] : v.entries)
      if (k->kind == Kind::kString && k->s == wrapper && val->kind == Kind::kDict)
        return collect(*val, name, depth + 1);
  TensorList out;
  std::map<std::string, size_t> index;
  for (const auto& [k, val] : v.entries) {
    GRAFT_CHECK(k->kind == Kind::kString, "'", name, "': a state_dict key is a ",
                pickle::kind_name(k->kind), ", expected a string");
    if (val->kind != Kind::kTensor) continue;  // e.g. an epoch or 'best_prec1'
    auto [it, fresh] = index.emplace(k->s, out.size());
    if (fresh)
      out.emplace_back(k->s, val->tensor);
    else
      out[it->second].second = val->tensor;
  }
  GRAFT_CHECK(!out.empty(), "'", name, "' holds no tensors; expected a state_dict");
  return out;
}

TensorList parse_zip(const std::string& bytes, const std::string& name) {
  zip::Reader zip(bytes, name);
  std::string prefix;
  bool found = false;
  for (const auto& n : zip.names()) {
    size_t slash = n.find('/');
    if (slash != std::string::npos && n.compare(slash, std::string::npos, "/data.pkl") == 0) {
      prefix = n.substr(0, slash);
      found = true;
      break;
    }
  }
  GRAFT_CHECK(found, "'", name,
              "' is a zip archive without a '<folder>/data.pkl' entry; expected a torch.save file");
  if (zip.has(prefix + "/byteorder")) {
    std::string_view order = zip.read(prefix + "/byteorder");
    GRAFT_CHECK(order == "little", "'", name, "' was saved with byte order '", order,
                "'; expected 'little'");
  }
  std::string ctx = str_cat("'", name, "' (", prefix, "/data.pkl)");
  std::map<std::string, ValuePtr> storages;
  uint64_t allocated = 0;
  auto load = [&](const Value& pid) -> ValuePtr {
    StorageId id = parse_pid(pid, 5, ctx);
    auto it = storages.find(id.key);
    if (it != storages.end()) {
      GRAFT_CHECK(it->second->tensor.scalar_type() == id.dtype && it->second->tensor.numel() == id.numel,
                  ctx, ": storage '", id.key, "' is used with two different types or sizes");
      return it->second;
    }
    std::string entry = prefix + "/data/" + id.key;
    std::string_view data = zip.read(entry);
    uint64_t want = static_cast<uint64_t>(id.numel) * c10::elementSize(id.dtype);
    GRAFT_CHECK(static_cast<uint64_t>(id.numel) <= data.size() && data.size() == want, "'", name,
                "': entry '", entry, "' has ", data.size(), " bytes; expected ", id.numel,
                " elements of ", c10::elementSize(id.dtype), " bytes");
    // All storages together must fit in the file, as in the legacy format
    // (the reader already refuses entries that share bytes).
    GRAFT_CHECK(data.size() <= bytes.size() - allocated, "'", name, "': entry '", entry, "' (",
                data.size(), " bytes) would bring the storages to ", allocated + data.size(),
                " bytes, more than the file's ", bytes.size(), " bytes");
    ValuePtr v = new_storage(id, data.size(), ctx);
    allocated += data.size();
    fill_storage(v->tensor, data, ctx, id.key);
    storages.emplace(id.key, v);
    return v;
  };
  pickle::Machine machine(zip.read(prefix + "/data.pkl"), ctx, load);
  ValuePtr root = machine.run();
  return collect(*root, name, 0);
}

// The legacy format's three leading pickles (magic number, protocol version,
// sys_info), checked; returns their size in bytes.
size_t legacy_header_size(std::string_view data, const std::string& name, const std::string& ctx) {
  size_t pos = 0;
  {
    bool magic = false;
    try {
      pickle::Machine m(data, ctx);
      ValuePtr v = m.run();
      magic = v->kind == Kind::kBigInt && v->s == kLegacyMagic;
      pos = m.consumed();
    } catch (const Error&) {
    }
    GRAFT_CHECK(magic, "'", name,
                "' is not a torch.save file: expected a zip archive ('PK') or the legacy format's "
                "magic number 0x1950a86a20f9469cfc6c");
  }
  {
    pickle::Machine m(data.substr(pos), str_cat(ctx, " (protocol version)"));
    ValuePtr v = m.run();
    GRAFT_CHECK(v->kind == Kind::kInt && v->i == kLegacyProtocol, "'", name,
                "': legacy torch.save protocol version is not ", kLegacyProtocol);
    pos += m.consumed();
  }
  {
    pickle::Machine m(data.substr(pos), str_cat(ctx, " (sys_info)"));
    ValuePtr v = m.run();
    GRAFT_CHECK(v->kind == Kind::kDict, "'", name, "': legacy sys_info is a ",
                pickle::kind_name(v->kind), ", expected a dict");
    for (const auto& [k, val] : v->entries)
      if (k->kind == Kind::kString && k->s == "little_endian")
        GRAFT_CHECK(val->kind == Kind::kBool && val->i == 1, "'", name,
                    "' was saved on a big-endian machine; expected little-endian data");
    pos += m.consumed();
  }
  return pos;
}

TensorList parse_legacy(const std::string& bytes, const std::string& name) {
  std::string_view data(bytes);
  std::string ctx = str_cat("'", name, "'");
  size_t pos = legacy_header_size(data, name, ctx);

  struct Root {
    ValuePtr value;
    bool filled = false;
  };
  std::map<std::string, Root> roots;
  std::map<std::string, ValuePtr> views;
  uint64_t allocated = 0;
  std::string obj_ctx = str_cat(ctx, " (object pickle)");
  auto load = [&](const Value& pid) -> ValuePtr {
    StorageId id = parse_pid(pid, 6, obj_ctx);
    auto it = roots.find(id.key);
    if (it == roots.end()) {
      // All storages together must fit in the file, which bounds allocation.
      ValuePtr s = new_storage(id, data.size() - allocated, obj_ctx);
      allocated += s->tensor.nbytes();
      it = roots.emplace(id.key, Root{s}).first;
    } else {
      GRAFT_CHECK(it->second.value->tensor.scalar_type() == id.dtype &&
                      it->second.value->tensor.numel() == id.numel,
                  obj_ctx, ": storage '", id.key, "' is used with two different types or sizes");
    }
    const Value& view = *pid.items[5];
    if (view.kind == Kind::kNone) return it->second.value;
    // Files from PyTorch < 1.0 may name a slice of a storage:
    // (view key, offset, size) in elements.
    GRAFT_CHECK(view.kind == Kind::kTuple && view.items.size() == 3 &&
                    view.items[0]->kind == Kind::kString && view.items[1]->kind == Kind::kInt &&
                    view.items[2]->kind == Kind::kInt,
                obj_ctx, ": storage view metadata is not None or (key, offset, size)");
    auto v = views.find(view.items[0]->s);
    if (v != views.end()) return v->second;
    int64_t off = view.items[1]->i, len = view.items[2]->i;
    GRAFT_CHECK(off >= 0 && len >= 0 && off <= id.numel && len <= id.numel - off, obj_ctx,
                ": storage view [", off, ", +", len, ") lies outside storage '", id.key, "' of ",
                id.numel, " elements");
    auto s = std::make_shared<Value>();
    s->kind = Kind::kStorage;
    s->s = view.items[0]->s;
    s->tensor = it->second.value->tensor.narrow(0, off, len);
    views.emplace(s->s, s);
    return s;
  };
  auto object = std::make_unique<pickle::Machine>(data.substr(pos), obj_ctx, load);
  ValuePtr root = object->run();
  pos += object->consumed();

  std::vector<std::string> keys;
  {
    pickle::Machine m(data.substr(pos), str_cat(ctx, " (storage keys)"));
    ValuePtr v = m.run();
    GRAFT_CHECK(v->kind == Kind::kList, "'", name, "': the legacy storage key list is a ",
                pickle::kind_name(v->kind), ", expected a list of strings");
    for (const auto& k : v->items) {
      GRAFT_CHECK(k->kind == Kind::kString, "'", name, "': a legacy storage key is a ",
                  pickle::kind_name(k->kind), ", expected a string");
      keys.push_back(k->s);
    }
    pos += m.consumed();
  }
  for (const auto& key : keys) {
    auto it = roots.find(key);
    GRAFT_CHECK(it != roots.end(), "'", name, "': storage '", key,
                "' has data but no tensor uses it; expected only the keys of the object pickle");
    GRAFT_CHECK(!it->second.filled, "'", name, "': storage '", key, "' is listed twice");
    const torch::Tensor& t = it->second.value->tensor;
    GRAFT_CHECK(data.size() - pos >= 8, "'", name, "' is truncated: storage '", key,
                "' expected an 8-byte element count at byte ", pos);
    uint64_t count = 0;
    for (int i = 7; i >= 0; --i) count = (count << 8) | static_cast<uint8_t>(data[pos + i]);
    pos += 8;
    GRAFT_CHECK(count == static_cast<uint64_t>(t.numel()), "'", name, "': storage '", key, "' has ",
                count, " elements; the object pickle expected ", t.numel());
    uint64_t nbytes = count * t.element_size();
    GRAFT_CHECK(nbytes <= data.size() - pos, "'", name, "' is truncated: storage '", key,
                "' needs ", nbytes, " bytes at byte ", pos, ", but the file ends ", data.size() - pos,
                " bytes later");
    fill_storage(t, data.substr(pos, nbytes), ctx, key);
    pos += nbytes;
    it->second.filled = true;
  }
  for (const auto& [key, r] : roots)
    GRAFT_CHECK(r.filled, "'", name, "': storage '", key,
                "' is used by a tensor but its data is missing from the file");
  return collect(*root, name, 0);
}

}  // namespace

bool is_torch_checkpoint(const std::string& bytes) {
  if (bytes.size() < 4) return false;
  if (bytes[0] == 'P' && bytes[1] == 'K') return true;
  return bytes.compare(0, 4, "\x80\x02\x8a\x0a") == 0;
}

TensorList parse_torch_checkpoint(const std::string& bytes, const std::string& name) {
  if (bytes.size() >= 2 && bytes[0] == 'P' && bytes[1] == 'K') return parse_zip(bytes, name);
  return parse_legacy(bytes, name);
}

TensorList load_torch_checkpoint(const std::string& path) {
  return parse_torch_checkpoint(read_regular_file(path), path);
}

}  // namespace graft
