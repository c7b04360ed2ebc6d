// A safe subset of the Python pickle virtual machine: enough for torch.save'd state dicts, nothing more.
// Only allow-listed globals are resolved (OrderedDict, torch tensor rebuild helpers, storage types);
// any other global, or any opcode outside the subset, is refused with ModelError and nothing is executed.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace emo::io::pickle {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kBytes, kTuple, kList, kDict, kGlobal, kTensor, kStorage };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                                   // string, bytes, or "module.name" for globals
  std::vector<ValuePtr> items;                     // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> dict; // dict (insertion order)
  at::Tensor tensor;                               // tensor, or a 1-D storage tensor

  Value() = default;
  Value(const Value&) = default;
  Value(Value&&) = default;
  Value& operator=(const Value&) = default;
  Value& operator=(Value&&) = default;
  ~Value();  // iterative: releasing deeply nested values does not recurse per level

  bool is(Kind k) const { return kind == k; }
  std::string describe() const;
};

// Resolves a persistent id ('storage', type, key, location, numel[, view_metadata]) to a flat 1-D
// tensor of `numel` elements of `dtype`.
using StorageResolver =
    std::function<at::Tensor(c10::ScalarType dtype, const std::string& key, int64_t numel, const ValuePtr& pid)>;

// Runs the pickle program in [data, data + size). Throws ModelError naming `context` on any problem.
// `consumed` receives the number of bytes read (the legacy format has several pickles back to back).
ValuePtr load(const uint8_t* data, size_t size, const StorageResolver& storages, const std::string& context,
              size_t* consumed = nullptr);

}  // namespace emo::io::pickle
