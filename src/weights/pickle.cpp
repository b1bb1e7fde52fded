#include "pickle.h"

#include <cstring>

#include "graft/core/error.h"

namespace graft::pickle {

namespace {

// Caps that keep a hostile pickle from exhausting memory; real state_dicts
// stay far below them (a ResNet-152 makes ~20k values).
constexpr size_t kMaxStack = size_t(1) << 20;
constexpr size_t kMaxMarks = size_t(1) << 16;
constexpr size_t kMaxValues = size_t(1) << 23;
// Every object (value, container element, memo entry) counts against a
// budget proportional to the pickle's size: torch.save's pickles make about
// one object per 3 bytes, while a hostile one could otherwise make a value
// per byte stand for millions of elements (OrderedDict of a shared list) or
// grow the memo by one entry per byte (MEMOIZE after MEMOIZE).
constexpr size_t kObjectsPerByte = 4;
constexpr size_t kObjectsSlack = size_t(1) << 16;
// The memo holds at most one entry per value made (a pickler memoizes each
// object once), plus some slack.
constexpr size_t kMemoSlack = 1024;
constexpr size_t kMaxDims = 64;
constexpr int64_t kMaxNumel = int64_t(1) << 40;

struct StorageType {
  const char* name;
  torch::ScalarType dtype;
};
const StorageType kStorageTypes[] = {
    {"torch.FloatStorage", torch::kFloat32}, {"torch.HalfStorage", torch::kFloat16},
    {"torch.BFloat16Storage", torch::kBFloat16}, {"torch.DoubleStorage", torch::kFloat64},
    {"torch.LongStorage", torch::kInt64},    {"torch.IntStorage", torch::kInt32},
    {"torch.ShortStorage", torch::kInt16},   {"torch.CharStorage", torch::kInt8},
    {"torch.ByteStorage", torch::kUInt8},    {"torch.BoolStorage", torch::kBool},
};

}  // namespace

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kBigInt: return "big int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "string";
    case Kind::kTuple: return "tuple";
    case Kind::kList: return "list";
    case Kind::kDict: return "dict";
    case Kind::kGlobal: return "class";
    case Kind::kStorage: return "storage";
    case Kind::kTensor: return "tensor";
  }
  return "value";
}

namespace {

std::string allowed_list() {
  std::string s;
  for (const auto& g : allowed_globals()) s += (s.empty() ? "" : ", ") + g;
  return s;
}

}  // namespace

const std::vector<std::string>& allowed_globals() {
  static const std::vector<std::string> globals = [] {
    std::vector<std::string> g = {
        "collections.OrderedDict",       "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor",  "torch._utils._rebuild_parameter",
        "torch._tensor._rebuild_from_type_v2", "torch._tensor.Tensor",
        "torch.nn.parameter.Parameter",
    };
    for (const auto& t : kStorageTypes) g.emplace_back(t.name);
    return g;
  }();
  return globals;
}

torch::ScalarType storage_dtype(const std::string& global, const std::string& context) {
  for (const auto& t : kStorageTypes)
    if (global == t.name) return t.dtype;
  std::string known;
  for (const auto& t : kStorageTypes) known += (known.empty() ? "" : ", ") + std::string(t.name);
  throw Error(str_cat(context, ": unknown storage type '", global, "' (expected one of ", known, ")"));
}

Machine::Machine(std::string_view data, std::string context, PersistentLoad persistent_load)
    : data_(data), context_(std::move(context)), persistent_load_(std::move(persistent_load)),
      object_limit_(data.size() > (SIZE_MAX - kObjectsSlack) / kObjectsPerByte
                        ? SIZE_MAX
                        : kObjectsPerByte * data.size() + kObjectsSlack) {}

Machine::~Machine() {
  // Containers may hold each other in cycles or in chains deep enough to
  // overflow the stack on destruction; emptying each one here avoids both.
  for (auto& c : containers_) {
    c->items.clear();
    c->entries.clear();
  }
}

void Machine::fail(const std::string& what) const {
  throw Error(str_cat(context_, ": ", what, " (pickle opcode at byte ", op_pos_, ")"));
}

void Machine::grow(size_t n) {
  if (n > object_limit_ - objects_)
    fail(str_cat("the pickle makes more than ", object_limit_, " objects (values, container "
                 "elements and memo entries; the limit is ", kObjectsPerByte, " per byte of its ",
                 data_.size(), " bytes plus ", kObjectsSlack, "); expected a state_dict"));
  objects_ += n;
}

ValuePtr Machine::make(Kind kind) {
  if (++values_made_ > kMaxValues)
    fail(str_cat("more than ", kMaxValues, " values; expected a state_dict"));
  grow(1);
  auto v = std::make_shared<Value>();
  v->kind = kind;
  if (kind == Kind::kTuple || kind == Kind::kList || kind == Kind::kDict) containers_.push_back(v);
  return v;
}

std::string_view Machine::take(uint64_t n) {
  if (n > data_.size() - pos_)
    fail(str_cat("truncated: needs ", n, " more bytes, but only ", data_.size() - pos_,
                 " remain (expected a STOP opcode)"));
  std::string_view v = data_.substr(pos_, n);
  pos_ += n;
  return v;
}

uint64_t Machine::uint_le(int bytes) {
  std::string_view b = take(bytes);
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

std::string Machine::line() {
  size_t end = data_.find('\n', pos_);
  if (end == std::string_view::npos || end - pos_ > 1024)
    fail("truncated GLOBAL name (expected a line ending in a newline)");
  std::string s(data_.substr(pos_, end - pos_));
  pos_ = end + 1;
  return s;
}

void Machine::push(ValuePtr v) {
  if (stack_.size() >= kMaxStack) fail(str_cat("stack deeper than ", kMaxStack, " values"));
  stack_.push_back(std::move(v));
}

ValuePtr Machine::pop() {
  size_t fence = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= fence) fail("stack underflow");
  ValuePtr v = std::move(stack_.back());
  stack_.pop_back();
  return v;
}

std::vector<ValuePtr> Machine::pop_mark() {
  if (marks_.empty()) fail("an opcode needs a MARK, but there is none");
  size_t m = marks_.back();
  marks_.pop_back();
  // The popped values go into a container (or are dropped): count them.
  grow(stack_.size() - m);
  std::vector<ValuePtr> out(std::make_move_iterator(stack_.begin() + m),
                            std::make_move_iterator(stack_.end()));
  stack_.resize(m);
  return out;
}

ValuePtr Machine::run() {
  for (;;) {
    op_pos_ = pos_;
    auto op = static_cast<uint8_t>(take(1)[0]);
    switch (op) {
      case 0x80: {  // PROTO
        uint64_t v = uint_le(1);
        if (v < 2 || v > 5) fail(str_cat("pickle protocol ", v, "; expected 2 to 5"));
        break;
      }
      case 0x95:  // FRAME: only a read-ahead hint
        uint_le(8);
        break;
      case '.': {  // STOP
        ValuePtr v = pop();
        return v;
      }
      case '(':
        if (marks_.size() >= kMaxMarks) fail(str_cat("more than ", kMaxMarks, " nested MARKs"));
        marks_.push_back(stack_.size());
        break;
      case '0':  // POP
        if (!marks_.empty() && marks_.back() == stack_.size())
          marks_.pop_back();
        else
          pop();
        break;
      case '1':  // POP_MARK
        pop_mark();
        break;
      case '2': {  // DUP
        ValuePtr v = pop();
        push(v);
        push(v);
        break;
      }
      case '}': push(make(Kind::kDict)); break;
      case ']': push(make(Kind::kList)); break;
      case ')': push(make(Kind::kTuple)); break;
      case 'N': push(make(Kind::kNone)); break;
      case 0x88:
      case 0x89: {
        ValuePtr v = make(Kind::kBool);
        v->i = op == 0x88;
        push(v);
        break;
      }
      case 'J': {
        ValuePtr v = make(Kind::kInt);
        v->i = static_cast<int32_t>(static_cast<uint32_t>(uint_le(4)));
        push(v);
        break;
      }
      case 'K':
      case 'M': {
        ValuePtr v = make(Kind::kInt);
        v->i = static_cast<int64_t>(uint_le(op == 'K' ? 1 : 2));
        push(v);
        break;
      }
      case 0x8a:    // LONG1
      case 0x8b: {  // LONG4
        uint64_t n = op == 0x8a ? uint_le(1) : uint_le(4);
        std::string_view b = take(n);
        ValuePtr v;
        if (n <= 8) {
          v = make(Kind::kInt);
          uint64_t u = 0;
          for (size_t i = n; i-- > 0;) u = (u << 8) | static_cast<uint8_t>(b[i]);
          if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80)) u |= ~uint64_t(0) << (8 * n);
          v->i = static_cast<int64_t>(u);
        } else {
          v = make(Kind::kBigInt);
          v->s = std::string(b);
        }
        push(v);
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        std::string_view b = take(8);
        uint64_t u = 0;
        for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<uint8_t>(b[i]);
        ValuePtr v = make(Kind::kFloat);
        std::memcpy(&v->f, &u, 8);
        push(v);
        break;
      }
      case 0x8c:  // SHORT_BINUNICODE
      case 'U':   // SHORT_BINSTRING
      case 'C':   // SHORT_BINBYTES
      case 'X':   // BINUNICODE
      case 'B':   // BINBYTES
      case 'T':   // BINSTRING
      case 0x8d:  // BINUNICODE8
      case 0x8e: {  // BINBYTES8
        int width = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e) ? 8 : 4;
        uint64_t n = uint_le(width);
        if (op == 'T' && n > 0x7fffffff) fail("BINSTRING with a negative length");
        ValuePtr v = make(Kind::kString);
        v->s = std::string(take(n));
        push(v);
        break;
      }
      case 't':
      case 'l': {  // TUPLE, LIST
        ValuePtr v = make(op == 't' ? Kind::kTuple : Kind::kList);
        v->items = pop_mark();
        push(v);
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        size_t n = op - 0x84;
        ValuePtr v = make(Kind::kTuple);
        grow(n);
        v->items.resize(n);
        for (size_t i = n; i-- > 0;) v->items[i] = pop();
        push(v);
        break;
      }
      case 'd':  // DICT
      case 'u': {  // SETITEMS
        std::vector<ValuePtr> kv = pop_mark();
        if (kv.size() % 2) fail(str_cat("dict items from MARK are odd in number (", kv.size(), ")"));
        ValuePtr d;
        if (op == 'd') {
          d = make(Kind::kDict);
          push(d);
        } else {
          d = pop();
          push(d);
          if (d->kind != Kind::kDict) fail(str_cat("SETITEMS on a ", kind_name(d->kind), ", expected a dict"));
        }
        for (size_t i = 0; i < kv.size(); i += 2) d->entries.emplace_back(kv[i], kv[i + 1]);
        break;
      }
      case 's': {  // SETITEM
        ValuePtr value = pop();
        ValuePtr key = pop();
        ValuePtr d = pop();
        push(d);
        if (d->kind != Kind::kDict) fail(str_cat("SETITEM on a ", kind_name(d->kind), ", expected a dict"));
        grow(1);
        d->entries.emplace_back(std::move(key), std::move(value));
        break;
      }
      case 'a':
      case 'e': {  // APPEND, APPENDS
        std::vector<ValuePtr> add;
        if (op == 'a') {
          add.push_back(pop());
          grow(1);
        } else {
          add = pop_mark();
        }
        ValuePtr l = pop();
        push(l);
        if (l->kind != Kind::kList) fail(str_cat("APPEND on a ", kind_name(l->kind), ", expected a list"));
        for (auto& v : add) l->items.push_back(std::move(v));
        break;
      }
      case 'q':
      case 'r':
      case 0x94: {  // BINPUT, LONG_BINPUT, MEMOIZE
        auto id = static_cast<uint32_t>(op == 'q' ? uint_le(1) : op == 'r' ? uint_le(4) : memo_.size());
        if (stack_.empty()) fail("memoizing with an empty stack");
        auto slot = memo_.find(id);
        if (slot == memo_.end()) {
          if (memo_.size() >= values_made_ + kMemoSlack)
            fail(str_cat("the memo would hold ", memo_.size() + 1, " entries for ", values_made_,
                         " values made; expected at most one entry per value (plus ", kMemoSlack,
                         ")"));
          grow(1);
          memo_.emplace(id, stack_.back());
        } else {
          slot->second = stack_.back();
        }
        break;
      }
      case 'h':
      case 'j': {  // BINGET, LONG_BINGET
        auto id = static_cast<uint32_t>(uint_le(op == 'h' ? 1 : 4));
        auto it = memo_.find(id);
        if (it == memo_.end()) fail(str_cat("memo entry ", id, " is read before it is written"));
        push(it->second);
        break;
      }
      case 'c':      // GLOBAL
      case 0x93: {   // STACK_GLOBAL
        std::string module, name;
        if (op == 'c') {
          module = line();
          name = line();
        } else {
          ValuePtr n = pop();
          ValuePtr m = pop();
          if (m->kind != Kind::kString || n->kind != Kind::kString)
            fail("STACK_GLOBAL needs two strings");
          module = m->s;
          name = n->s;
        }
        std::string full = module + "." + name;
        bool ok = false;
        for (const auto& g : allowed_globals()) ok = ok || g == full;
        if (!ok)
          throw Error(str_cat(context_, " uses class '", full,
                              "', which a checkpoint may not (allowed: ", allowed_list(), ")"));
        ValuePtr v = make(Kind::kGlobal);
        v->s = full;
        push(v);
        break;
      }
      case 'R':
      case 0x81: {  // REDUCE, NEWOBJ
        ValuePtr args = pop();
        ValuePtr callable = pop();
        push(call(*callable, *args));
        break;
      }
      case 'b': {  // BUILD
        ValuePtr state = pop();
        ValuePtr obj = pop();
        push(obj);
        // An OrderedDict state_dict carries its `_metadata` (module versions)
        // as attribute state, which tensors do not need.
        if (obj->kind != Kind::kDict)
          fail(str_cat("BUILD on a ", kind_name(obj->kind), "; expected only an OrderedDict's state"));
        break;
      }
      case 'Q': {  // BINPERSID
        ValuePtr pid = pop();
        if (!persistent_load_) fail("a persistent id (storage) where none is expected");
        ValuePtr v = persistent_load_(*pid);
        push(v);
        break;
      }
      default: {
        static const char* hex = "0123456789abcdef";
        fail(str_cat("unknown pickle opcode 0x", hex[op >> 4], hex[op & 15],
                     " (expected one of the opcodes torch.save emits)"));
      }
    }
  }
}

ValuePtr Machine::call(const Value& callable, const Value& args) {
  if (callable.kind != Kind::kGlobal)
    fail(str_cat("calling a ", kind_name(callable.kind), ", expected a class or function"));
  if (args.kind != Kind::kTuple)
    fail(str_cat("'", callable.s, "' called with a ", kind_name(args.kind), ", expected a tuple"));
  const std::string& f = callable.s;
  const auto& a = args.items;
  if (f == "collections.OrderedDict") {
    ValuePtr d = make(Kind::kDict);
    if (a.empty()) return d;
    if (a.size() != 1 || (a[0]->kind != Kind::kList && a[0]->kind != Kind::kTuple))
      fail("OrderedDict called with arguments other than () or ([(key, value), ...],)");
    grow(a[0]->items.size());
    for (const auto& kv : a[0]->items) {
      if ((kv->kind != Kind::kList && kv->kind != Kind::kTuple) || kv->items.size() != 2)
        fail("OrderedDict item is not a (key, value) pair");
      d->entries.emplace_back(kv->items[0], kv->items[1]);
    }
    return d;
  }
  if (f == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(args, true);
  if (f == "torch._utils._rebuild_tensor") return rebuild_tensor(args, false);
  if (f == "torch._utils._rebuild_parameter" || f == "torch.nn.parameter.Parameter") {
    if (a.empty() || a[0]->kind != Kind::kTensor)
      fail(str_cat("'", f, "' called without a tensor as its first argument"));
    return a[0];
  }
  if (f == "torch._tensor._rebuild_from_type_v2") {
    if (a.size() != 4 || a[1]->kind != Kind::kGlobal ||
        (a[1]->s != "torch._tensor.Tensor" && a[1]->s != "torch.nn.parameter.Parameter"))
      fail("_rebuild_from_type_v2 expects (function, torch.Tensor or Parameter, args, state)");
    if (a[0]->kind != Kind::kGlobal || a[0]->s == f)
      fail("_rebuild_from_type_v2 expects a tensor-rebuilding function first");
    ValuePtr t = call(*a[0], *a[2]);
    if (t->kind != Kind::kTensor) fail("_rebuild_from_type_v2 did not rebuild a tensor");
    return t;
  }
  fail(str_cat("class '", f, "' cannot be called here"));
}

ValuePtr Machine::rebuild_tensor(const Value& args, bool v2) {
  const auto& a = args.items;
  const char* fn = v2 ? "_rebuild_tensor_v2" : "_rebuild_tensor";
  if (v2 ? (a.size() < 6 || a.size() > 7) : a.size() != 4)
    fail(str_cat(fn, " called with ", a.size(), " arguments, expected ", v2 ? "6 or 7" : "4",
                 " (storage, offset, size, stride, ...)"));
  if (a[0]->kind != Kind::kStorage)
    fail(str_cat(fn, ": the first argument is a ", kind_name(a[0]->kind), ", expected a storage"));
  if (a[1]->kind != Kind::kInt) fail(str_cat(fn, ": the storage offset is not an int"));
  auto int_list = [&](const Value& v, const char* what) {
    if (v.kind != Kind::kTuple && v.kind != Kind::kList)
      fail(str_cat(fn, ": the ", what, " is a ", kind_name(v.kind), ", expected a tuple of ints"));
    if (v.items.size() > kMaxDims)
      fail(str_cat(fn, ": the ", what, " has ", v.items.size(), " dimensions, at most ", kMaxDims,
                   " expected"));
    std::vector<int64_t> out;
    for (const auto& x : v.items) {
      if (x->kind != Kind::kInt || x->i < 0)
        fail(str_cat(fn, ": the ", what, " holds a ", x->kind == Kind::kInt ? "negative int" : kind_name(x->kind),
                     ", expected non-negative ints"));
      out.push_back(x->i);
    }
    return out;
  };
  std::vector<int64_t> size = int_list(*a[2], "size");
  std::vector<int64_t> stride = int_list(*a[3], "stride");
  if (size.size() != stride.size())
    fail(str_cat(fn, ": the size has ", size.size(), " dimensions but the stride ", stride.size()));
  const torch::Tensor& base = a[0]->tensor;
  int64_t offset = a[1]->i;
  int64_t n = base.numel();
  bool empty = false;
  int64_t numel = 1, extent = 0;
  for (size_t d = 0; d < size.size(); ++d) {
    if (size[d] == 0) empty = true;
    int64_t step = 0;
    if (numel <= kMaxNumel && __builtin_mul_overflow(numel, size[d], &numel)) numel = kMaxNumel + 1;
    if (size[d] > 0 && (__builtin_mul_overflow(size[d] - 1, stride[d], &step) ||
                        __builtin_add_overflow(extent, step, &extent)))
      extent = INT64_MAX;
  }
  if (offset < 0 || offset > n)
    fail(str_cat(fn, ": storage offset ", offset, " lies outside the storage of ", n, " elements"));
  if (!empty) {
    if (numel > kMaxNumel) fail(str_cat(fn, ": the tensor has more than ", kMaxNumel, " elements"));
    if (extent >= n - offset)
      fail(str_cat(fn, ": a view at offset ", offset, " reaching ", extent,
                   " elements further lies outside its storage of ", n, " elements"));
  }
  ValuePtr t = make(Kind::kTensor);
  t->tensor = base.as_strided(size, stride, base.storage_offset() + offset);
  return t;
}

}  // namespace graft::pickle
