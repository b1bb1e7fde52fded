#pragma once
// Private to src/weights: a pickle reader for the subset torch.save uses.
// It executes nothing: GLOBAL may only name the classes and functions in
// allowed_globals(), and those are interpreted by the reader itself.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace graft::pickle {

enum class Kind { kNone, kBool, kInt, kBigInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor };

/// A value on the pickle stack. Containers are shared (memo references and
/// the stack may point to the same list or dict, as in Python).
struct Value {
  Kind kind = Kind::kNone;
  int64_t i = 0;  // kInt; kBool as 0/1
  double f = 0;   // kFloat
  std::string s;  // kString (text or bytes), kBigInt (little-endian bytes),
                  // kGlobal ("module.name"), kStorage (its key)
  std::vector<std::shared_ptr<Value>> items;                                    // kTuple, kList
  std::vector<std::pair<std::shared_ptr<Value>, std::shared_ptr<Value>>> entries;  // kDict
  torch::Tensor tensor;  // kStorage: 1-D, the storage's elements; kTensor
};
using ValuePtr = std::shared_ptr<Value>;

/// Called for BINPERSID with the persistent id; must return a kStorage value.
using PersistentLoad = std::function<ValuePtr(const Value& pid)>;

/// A readable name of a kind ("dict", "tensor", ...), for error messages.
const char* kind_name(Kind kind);

/// "module.name" of every global a checkpoint may name.
const std::vector<std::string>& allowed_globals();

/// The dtype of a storage class ("torch.FloatStorage" ...); throws
/// graft::Error naming `context` for any other name.
torch::ScalarType storage_dtype(const std::string& global, const std::string& context);

/// Runs one pickle from the start of `data` up to its STOP opcode.
/// `context` names the file (and entry) in errors. Values stay valid while
/// the machine lives; its destructor breaks reference cycles a hostile pickle
/// may build.
class Machine {
 public:
  Machine(std::string_view data, std::string context, PersistentLoad persistent_load = nullptr);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  /// Executes the pickle; returns the value left by STOP. Throws
  /// graft::Error on truncated data, an unknown opcode, a disallowed global
  /// or a malformed tensor.
  ValuePtr run();
  /// Bytes consumed, STOP included (where the next pickle starts).
  size_t consumed() const { return pos_; }

 private:
  [[noreturn]] void fail(const std::string& what) const;
  ValuePtr make(Kind kind);
  /// Counts `n` more objects (values, container elements, memo entries)
  /// against the budget, which grows with the size of the pickle.
  void grow(size_t n);
  std::string_view take(uint64_t n);
  uint64_t uint_le(int bytes);
  std::string line();
  void push(ValuePtr v);
  ValuePtr pop();
  std::vector<ValuePtr> pop_mark();
  ValuePtr call(const Value& callable, const Value& args);
  ValuePtr rebuild_tensor(const Value& args, bool v2);

  std::string_view data_;
  std::string context_;
  PersistentLoad persistent_load_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, ValuePtr> memo_;
  std::vector<ValuePtr> containers_;  // every container made, to break cycles
  size_t values_made_ = 0;
  size_t objects_ = 0;       // values + container elements + memo entries
  size_t object_limit_ = 0;  // kObjectsPerByte * data_.size() + kObjectsSlack
};

}  // namespace graft::pickle
