// libFuzzer target: the safe pickle subset (opcodes, memo, allow-listed globals, tensor rebuild) on its own, with a
// storage resolver that hands out zero-filled storages of the size the pickle asks for (bounded).
#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros.h>

#include <unordered_set>

#include "fuzz_common.h"
#include "io/pickle.h"

namespace pk = emo::io::pickle;

namespace {
// Visits every value once (the memo can make a value reachable many times, or from itself).
void walk(const pk::ValuePtr& v, int depth, std::unordered_set<const pk::Value*>& seen) {
  if (!v || depth > 256 || !seen.insert(v.get()).second) return;
  (void)v->describe();
  if (v->is(pk::Value::Kind::kTensor) && v->tensor.defined()) {
    at::Tensor c = v->tensor.contiguous();
    emo::fuzz::touch(c.data_ptr(), c.numel() * c.element_size());
  }
  for (const auto& i : v->items) walk(i, depth + 1, seen);
  for (const auto& [k, x] : v->dict) {
    walk(k, depth + 1, seen);
    walk(x, depth + 1, seen);
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto resolve = [](c10::ScalarType dtype, const std::string& key, int64_t numel, const pk::ValuePtr&) {
    if (numel < 0 || numel > (1 << 16)) throw emo::ModelError("fuzz: storage '" + key + "' too large");
    return at::zeros({numel}, at::TensorOptions().dtype(dtype));
  };
  try {
    size_t used = 0;
    auto v = pk::load(data, size, resolve, "fuzz.pkl", &used);
    if (used > size) __builtin_trap();
    std::unordered_set<const pk::Value*> seen;
    walk(v, 0, seen);
  } catch (const emo::Error&) {
  }
  return 0;
}
