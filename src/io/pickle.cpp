// Opcode semantics follow CPython's Lib/pickletools.py documentation (protocols 0-5).
#include "io/pickle.h"

#include <torch/torch.h>

#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "emo/error.h"

namespace emo::io::pickle {

Value::~Value() {
  // Free the values this one holds without one level of recursion per level of nesting: a pickle can chain
  // 100000 one-element tuples, and releasing that recursively overflows the stack. Children that other values
  // still share are only released (their count drops), not taken apart.
  if (items.empty() && dict.empty()) return;
  std::vector<ValuePtr> todo;
  auto take = [&todo](Value& v) {
    for (auto& x : v.items) todo.push_back(std::move(x));
    for (auto& [k, x] : v.dict) {
      todo.push_back(std::move(k));
      todo.push_back(std::move(x));
    }
    v.items.clear();
    v.dict.clear();
  };
  take(*this);
  while (!todo.empty()) {
    ValuePtr v = std::move(todo.back());
    todo.pop_back();
    if (v && v.use_count() == 1) take(*v);
  }  // v is released here with nothing left in it
}

std::string Value::describe() const {
  switch (kind) {
    case Kind::kNone: return "None";
    case Kind::kBool: return b ? "True" : "False";
    case Kind::kInt: return std::to_string(i);
    case Kind::kFloat: return std::to_string(f);
    case Kind::kString: return "'" + s + "'";
    case Kind::kBytes: return "bytes[" + std::to_string(s.size()) + "]";
    case Kind::kTuple: return "tuple[" + std::to_string(items.size()) + "]";
    case Kind::kList: return "list[" + std::to_string(items.size()) + "]";
    case Kind::kDict: return "dict[" + std::to_string(dict.size()) + "]";
    case Kind::kGlobal: return "global " + s;
    case Kind::kTensor: return "tensor";
    case Kind::kStorage: return "storage";
  }
  return "?";
}

namespace {

constexpr size_t kMaxStack = 1u << 20;
constexpr size_t kMaxMemo = 1u << 24;
constexpr size_t kMaxRank = 16;
// Containers nest at most this deep (a state dict nests 2-4 levels). Deeper data, and reference cycles (legal in
// Python pickles, never in a state dict), are refused: consumers walk the result recursively.
constexpr size_t kMaxDepth = 256;

struct StorageType {
  const char* name;
  c10::ScalarType type;
};
const StorageType kStorageTypes[] = {
    {"torch.FloatStorage", c10::kFloat},   {"torch.HalfStorage", c10::kHalf},
    {"torch.BFloat16Storage", c10::kBFloat16}, {"torch.DoubleStorage", c10::kDouble},
    {"torch.LongStorage", c10::kLong},     {"torch.IntStorage", c10::kInt},
    {"torch.ShortStorage", c10::kShort},   {"torch.CharStorage", c10::kChar},
    {"torch.ByteStorage", c10::kByte},     {"torch.BoolStorage", c10::kBool},
};

// Globals a state dict may reference. Everything else is refused.
const char* const kAllowedGlobals[] = {
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_parameter",
    "torch._tensor._rebuild_from_type_v2",
    "torch.Tensor",
    "torch.nn.parameter.Parameter",
    "torch.Size",
};

bool allowed_global(const std::string& g) {
  for (const auto* a : kAllowedGlobals)
    if (g == a) return true;
  for (const auto& st : kStorageTypes)
    if (g == st.name) return true;
  return false;
}

ValuePtr make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

class Machine {
 public:
  Machine(const uint8_t* d, size_t n, const StorageResolver& res, const std::string& ctx)
      : d_(d), n_(n), res_(res), ctx_(ctx) {}

  ValuePtr run(size_t* consumed);
  // Lists and dicts that APPEND(S)/SETITEM(S) changed and that are still alive. Only such a change can close a
  // reference cycle (every other value holds only values older than itself), so emptying these breaks them all.
  std::vector<ValuePtr> mutated() const {
    std::vector<ValuePtr> out;
    for (const auto& w : mutated_)
      if (auto v = w.lock()) out.push_back(std::move(v));
    return out;
  }
  void clear() {
    stack_.clear();
    memo_.clear();
    storages_.clear();
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw ModelError(ctx_ + ": refused pickle data at byte " + std::to_string(pos_) + ": " + what);
  }
  void need(size_t k) {
    if (k > n_ - pos_) fail("unexpected end of data (truncated file?)");
  }
  uint8_t u8() { need(1); return d_[pos_++]; }
  uint64_t uint_le(size_t k) {
    need(k);
    uint64_t v = 0;
    for (size_t j = 0; j < k; ++j) v |= static_cast<uint64_t>(d_[pos_ + j]) << (8 * j);
    pos_ += k;
    return v;
  }
  std::string bytes(uint64_t k) {
    if (k > n_ - pos_) fail("string of " + std::to_string(k) + " bytes runs past the end of data");
    std::string s(reinterpret_cast<const char*>(d_ + pos_), k);
    pos_ += k;
    return s;
  }
  std::string line() {
    size_t start = pos_;
    while (pos_ < n_ && d_[pos_] != '\n') ++pos_;
    if (pos_ >= n_) fail("unterminated text line");
    std::string s(reinterpret_cast<const char*>(d_ + start), pos_ - start);
    ++pos_;
    return s;
  }
  void push(ValuePtr v) {
    if (stack_.size() >= kMaxStack) fail("stack too deep");
    stack_.push_back(std::move(v));
  }
  ValuePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
    auto v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> out(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  void memo_put(uint64_t idx) {
    if (idx > kMaxMemo) fail("memo index too large");
    memo_[idx] = top();
  }
  ValuePtr memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail("memo index " + std::to_string(idx) + " not defined");
    return it->second;
  }
  void note_mutation(const ValuePtr& v) {
    if (mutated_.empty() || mutated_.back().lock() != v) mutated_.push_back(v);
  }
  void set_items(ValuePtr& dict, std::vector<ValuePtr>& kv) {
    if (!dict->is(Value::Kind::kDict)) fail("SETITEM(S) on a " + dict->describe());
    note_mutation(dict);
    if (kv.size() % 2) fail("odd number of items for SETITEMS");
    for (size_t j = 0; j < kv.size(); j += 2) {
      bool replaced = false;
      if (kv[j]->is(Value::Kind::kString))
        for (auto& e : dict->dict)
          if (e.first->is(Value::Kind::kString) && e.first->s == kv[j]->s) { e.second = kv[j + 1]; replaced = true; break; }
      if (!replaced) dict->dict.emplace_back(kv[j], kv[j + 1]);
    }
  }
  ValuePtr global(const std::string& module, const std::string& name) {
    std::string g = module + "." + name;
    if (!allowed_global(g))
      fail("global '" + g + "' is not allowed in a weight file (only state-dict types are loaded; nothing is executed)");
    auto v = make(Value::Kind::kGlobal);
    v->s = g;
    return v;
  }
  ValuePtr persistent_load(const ValuePtr& pid);
  ValuePtr call(const ValuePtr& fn, const ValuePtr& args);
  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& a);
  std::vector<int64_t> int_tuple(const ValuePtr& v, const char* what);

  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
  const StorageResolver& res_;
  std::string ctx_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  std::unordered_map<std::string, ValuePtr> storages_;
  std::vector<std::weak_ptr<Value>> mutated_;
};

std::vector<int64_t> Machine::int_tuple(const ValuePtr& v, const char* what) {
  if (!v->is(Value::Kind::kTuple) && !v->is(Value::Kind::kList)) fail(std::string(what) + " is not a tuple");
  if (v->items.size() > kMaxRank) fail(std::string(what) + " has too many dimensions");
  std::vector<int64_t> out;
  for (const auto& x : v->items) {
    if (!x->is(Value::Kind::kInt) || x->i < 0) fail(std::string(what) + " has a non-integer or negative entry");
    out.push_back(x->i);
  }
  return out;
}

ValuePtr Machine::persistent_load(const ValuePtr& pid) {
  if (!pid->is(Value::Kind::kTuple) || pid->items.size() < 5 || !pid->items[0]->is(Value::Kind::kString) ||
      pid->items[0]->s != "storage")
    fail("unsupported persistent id " + pid->describe());
  const auto& type = pid->items[1];
  const auto& key = pid->items[2];
  const auto& numel = pid->items[4];
  if (!type->is(Value::Kind::kGlobal)) fail("storage type is not a global");
  c10::ScalarType dtype = c10::kFloat;
  bool found = false;
  for (const auto& st : kStorageTypes)
    if (type->s == st.name) { dtype = st.type; found = true; }
  if (!found) fail("unsupported storage type " + type->s);
  std::string k = key->is(Value::Kind::kString) ? key->s : key->is(Value::Kind::kInt) ? std::to_string(key->i) : "";
  if (k.empty()) fail("storage key is not a string");
  if (!numel->is(Value::Kind::kInt) || numel->i < 0) fail("storage size is not a non-negative integer");
  auto it = storages_.find(k);
  if (it != storages_.end()) return it->second;
  auto v = make(Value::Kind::kStorage);
  v->tensor = res_(dtype, k, numel->i, pid);
  if (!v->tensor.defined() || v->tensor.numel() != numel->i || v->tensor.scalar_type() != dtype)
    fail("storage '" + k + "' could not be resolved");
  storages_[k] = v;
  return v;
}

ValuePtr Machine::rebuild_tensor(const std::vector<ValuePtr>& a) {
  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  if (a.size() < 4 || !a[0]->is(Value::Kind::kStorage) || !a[1]->is(Value::Kind::kInt))
    fail("malformed tensor record");
  const at::Tensor& storage = a[0]->tensor;
  int64_t offset = a[1]->i;
  auto size = int_tuple(a[2], "tensor size");
  auto stride = int_tuple(a[3], "tensor stride");
  if (size.size() != stride.size()) fail("tensor size and stride differ in rank");
  if (offset < 0) fail("negative storage offset");
  // Bounds: the highest element addressed must lie inside the storage (overflow-checked).
  bool empty = false;
  for (auto s : size) empty |= (s == 0);
  if (!empty) {
    __int128 last = offset;
    for (size_t j = 0; j < size.size(); ++j) last += static_cast<__int128>(size[j] - 1) * stride[j];
    if (last >= storage.numel()) fail("tensor view addresses element " + std::to_string(static_cast<int64_t>(last)) +
                                      " of a storage of " + std::to_string(storage.numel()));
  } else if (offset > storage.numel()) {
    fail("storage offset past the storage");
  }
  auto v = make(Value::Kind::kTensor);
  v->tensor = storage.as_strided(size, stride, offset);
  return v;
}

ValuePtr Machine::call(const ValuePtr& fn, const ValuePtr& args) {
  if (!fn->is(Value::Kind::kGlobal)) fail("call of a non-global " + fn->describe());
  if (!args->is(Value::Kind::kTuple)) fail("call arguments are not a tuple");
  const auto& a = args->items;
  const std::string& g = fn->s;
  if (g == "collections.OrderedDict") {
    auto d = make(Value::Kind::kDict);
    if (!a.empty()) fail("OrderedDict with constructor arguments");
    return d;
  }
  if (g == "torch._utils._rebuild_tensor_v2" || g == "torch._utils._rebuild_tensor") return rebuild_tensor(a);
  if (g == "torch._utils._rebuild_parameter") {
    if (a.empty() || !a[0]->is(Value::Kind::kTensor)) fail("malformed parameter record");
    return a[0];
  }
  if (g == "torch._tensor._rebuild_from_type_v2") {
    // (func, new_type, args, state): only plain tensors/parameters are accepted.
    if (a.size() < 3 || !a[0]->is(Value::Kind::kGlobal) || !a[1]->is(Value::Kind::kGlobal))
      fail("malformed _rebuild_from_type_v2 record");
    if (a[1]->s != "torch.Tensor" && a[1]->s != "torch.nn.parameter.Parameter")
      fail("tensor subclass " + a[1]->s + " is not supported");
    return call(a[0], a[2]);
  }
  if (g == "torch.Size") {
    if (a.size() != 1) fail("malformed torch.Size");
    auto t = make(Value::Kind::kTuple);
    t->items = a[0]->items;
    return t;
  }
  fail("global '" + g + "' cannot be called");
}

ValuePtr Machine::run(size_t* consumed) {
  for (;;) {
    uint8_t op = u8();
    switch (op) {
      case 0x80: {  // PROTO
        uint8_t proto = u8();
        if (proto > 5) fail("unsupported pickle protocol " + std::to_string(proto));
        break;
      }
      case 0x95: uint_le(8); break;  // FRAME (length is advisory)
      case '.': {                    // STOP
        if (stack_.size() != 1 || !marks_.empty()) fail("malformed pickle (stack not balanced at STOP)");
        if (consumed) *consumed = pos_;
        return stack_.back();
      }
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case 'N': push(make(Value::Kind::kNone)); break;
      case 0x88: case 0x89: { auto v = make(Value::Kind::kBool); v->b = (op == 0x88); push(v); break; }
      case 'J': { auto v = make(Value::Kind::kInt); v->i = static_cast<int32_t>(uint_le(4)); push(v); break; }
      case 'K': { auto v = make(Value::Kind::kInt); v->i = u8(); push(v); break; }
      case 'M': { auto v = make(Value::Kind::kInt); v->i = static_cast<int64_t>(uint_le(2)); push(v); break; }
      case 'I': {  // INT (protocol 0 text)
        std::string s = line();
        auto v = make(Value::Kind::kBool);
        if (s == "01" || s == "00") { v->b = (s == "01"); push(v); break; }
        v->kind = Value::Kind::kInt;
        try { v->i = std::stoll(s); } catch (...) { fail("bad INT literal"); }
        push(v);
        break;
      }
      case 0x8a: case 0x8b: {  // LONG1 / LONG4: little-endian two's complement
        uint64_t len = op == 0x8a ? u8() : uint_le(4);
        if (len > n_ - pos_) fail("long runs past end of data");
        auto v = make(Value::Kind::kInt);
        if (len <= 8) {
          uint64_t x = 0;
          for (uint64_t j = 0; j < len; ++j) x |= static_cast<uint64_t>(d_[pos_ + j]) << (8 * j);
          if (len > 0 && len < 8 && (d_[pos_ + len - 1] & 0x80)) x |= ~0ull << (8 * len);
          v->i = static_cast<int64_t>(x);
        } else {
          v->kind = Value::Kind::kBytes;  // huge integer (e.g. the legacy magic number): keep its bytes
          v->s.assign(reinterpret_cast<const char*>(d_ + pos_), len);
        }
        pos_ += len;
        push(v);
        break;
      }
      case 'G': {  // BINFLOAT, big-endian double
        uint64_t x = 0;
        need(8);
        for (int j = 0; j < 8; ++j) x = (x << 8) | d_[pos_ + j];
        pos_ += 8;
        auto v = make(Value::Kind::kFloat);
        std::memcpy(&v->f, &x, 8);
        push(v);
        break;
      }
      case 'X': case 0x8c: case 0x8d: {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
        uint64_t len = op == 'X' ? uint_le(4) : op == 0x8c ? u8() : uint_le(8);
        auto v = make(Value::Kind::kString);
        v->s = bytes(len);
        push(v);
        break;
      }
      case 'T': case 'U': case 'B': case 'C': case 0x8e: {  // BINSTRING, SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES, BINBYTES8
        uint64_t len = (op == 'T' || op == 'B') ? uint_le(4) : (op == 'U' || op == 'C') ? u8() : uint_le(8);
        auto v = make((op == 'T' || op == 'U') ? Value::Kind::kString : Value::Kind::kBytes);
        v->s = bytes(len);
        push(v);
        break;
      }
      case ')': push(make(Value::Kind::kTuple)); break;
      case ']': push(make(Value::Kind::kList)); break;
      case '}': push(make(Value::Kind::kDict)); break;
      case 't': { auto v = make(Value::Kind::kTuple); v->items = pop_mark(); push(v); break; }
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        size_t k = op - 0x84;
        std::vector<ValuePtr> xs(k);
        for (size_t j = k; j-- > 0;) xs[j] = pop();
        auto v = make(Value::Kind::kTuple);
        v->items = std::move(xs);
        push(v);
        break;
      }
      case 'l': { auto v = make(Value::Kind::kList); v->items = pop_mark(); push(v); break; }
      case 'd': {
        auto kv = pop_mark();
        auto v = make(Value::Kind::kDict);
        set_items(v, kv);
        push(v);
        break;
      }
      case 'a': {  // APPEND
        auto x = pop();
        auto& l = top();
        if (!l->is(Value::Kind::kList)) fail("APPEND to a " + l->describe());
        note_mutation(l);
        l->items.push_back(x);
        break;
      }
      case 'e': {  // APPENDS
        auto xs = pop_mark();
        auto& l = top();
        if (!l->is(Value::Kind::kList)) fail("APPENDS to a " + l->describe());
        note_mutation(l);
        for (auto& x : xs) l->items.push_back(x);
        break;
      }
      case 's': {  // SETITEM
        auto val = pop();
        auto key = pop();
        std::vector<ValuePtr> kv{key, val};
        set_items(top(), kv);
        break;
      }
      case 'u': {  // SETITEMS
        auto kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case 'q': memo_put(u8()); break;           // BINPUT
      case 'r': memo_put(uint_le(4)); break;     // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
      case 'p': {                                // PUT (text)
        std::string s = line();
        try { memo_put(std::stoull(s)); } catch (const ModelError&) { throw; } catch (...) { fail("bad PUT index"); }
        break;
      }
      case 'h': push(memo_get(u8())); break;
      case 'j': push(memo_get(uint_le(4))); break;
      case 'g': {
        std::string s = line();
        uint64_t idx = 0;
        try { idx = std::stoull(s); } catch (...) { fail("bad GET index"); }
        push(memo_get(idx));
        break;
      }
      case 'c': {  // GLOBAL "module\nname\n"
        std::string module = line();
        std::string name = line();
        push(global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop();
        auto module = pop();
        if (!name->is(Value::Kind::kString) || !module->is(Value::Kind::kString)) fail("STACK_GLOBAL of non-strings");
        push(global(module->s, name->s));
        break;
      }
      case 'R': {  // REDUCE
        auto args = pop();
        auto fn = pop();
        push(call(fn, args));
        break;
      }
      case 0x81: {  // NEWOBJ cls.__new__(cls, *args)
        auto args = pop();
        auto cls = pop();
        push(call(cls, args));
        break;
      }
      case 'b': {  // BUILD: only state on dicts (OrderedDict _metadata) and tensors is tolerated and ignored
        auto state = pop();
        auto& obj = top();
        if (!obj->is(Value::Kind::kDict) && !obj->is(Value::Kind::kTensor))
          fail("BUILD on a " + obj->describe());
        break;
      }
      case 'Q': {  // BINPERSID
        auto pid = pop();
        push(persistent_load(pid));
        break;
      }
      case '0': pop(); break;  // POP
      case '2': push(top()); break;  // DUP
      case '1': pop_mark(); break;   // POP_MARK
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", op);
        fail(std::string("opcode ") + buf + " is not supported in weight files");
      }
    }
  }
}

}  // namespace

namespace {

template <typename F>
void for_each_child(const Value& v, F&& f) {
  for (const auto& x : v.items) f(x);
  for (const auto& [k, x] : v.dict) {
    f(k);
    f(x);
  }
}

// Iterative depth-first walk from `root`: throws ModelError on a reference cycle or nesting deeper than kMaxDepth.
void check_graph(const ValuePtr& root, const std::string& context) {
  if (!root) return;
  enum : uint8_t { kOpen = 1, kDone = 2 };
  std::unordered_map<const Value*, uint8_t> state;
  struct Frame {
    const Value* v;
    size_t next;
  };
  std::vector<Frame> path{{root.get(), 0}};
  state[root.get()] = kOpen;
  while (!path.empty()) {
    Frame& f = path.back();
    const Value& v = *f.v;
    const size_t n = v.items.size() + 2 * v.dict.size();
    if (f.next == n) {
      state[f.v] = kDone;
      path.pop_back();
      continue;
    }
    const size_t i = f.next++;
    const Value* c = i < v.items.size() ? v.items[i].get()
                     : ((i - v.items.size()) % 2 == 0 ? v.dict[(i - v.items.size()) / 2].first.get()
                                                       : v.dict[(i - v.items.size()) / 2].second.get());
    if (!c) continue;
    auto [it, fresh] = state.emplace(c, kOpen);
    if (!fresh) {
      if (it->second == kOpen) throw ModelError(context + ": refused pickle data: a container holds itself (reference cycle)");
      continue;
    }
    if (path.size() >= kMaxDepth) throw ModelError(context + ": refused pickle data: containers nested deeper than " + std::to_string(kMaxDepth));
    path.push_back({c, 0});
  }
}

}  // namespace

ValuePtr load(const uint8_t* data, size_t size, const StorageResolver& storages, const std::string& context,
              size_t* consumed) {
  Machine m(data, size, storages, context);
  ValuePtr root;
  // Values the result does not hold may still form cycles (left in the memo, or popped and dropped): empty every
  // changed container outside the result so that they are freed (Value's destructor frees long chains without
  // recursing). On failure nothing is kept.
  auto release = [&m](const std::unordered_set<const Value*>* keep) {
    auto changed = m.mutated();
    m.clear();
    for (auto& v : changed) {
      if (keep && keep->count(v.get())) continue;
      v->items.clear();
      v->dict.clear();
    }
  };
  try {
    root = m.run(consumed);
    check_graph(root, context);
  } catch (...) {
    root.reset();
    release(nullptr);
    throw;
  }
  std::unordered_set<const Value*> keep;
  std::vector<const Value*> todo{root.get()};
  while (!todo.empty()) {  // the result is acyclic and at most kMaxDepth deep (check_graph)
    const Value* v = todo.back();
    todo.pop_back();
    if (!v || !keep.insert(v).second) continue;
    for_each_child(*v, [&](const ValuePtr& c) { todo.push_back(c.get()); });
  }
  release(&keep);
  return root;
}

}  // namespace emo::io::pickle
