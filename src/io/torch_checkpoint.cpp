// torch.save readers: the zip layout (torch >= 1.6: <root>/data.pkl + <root>/data/<key>) and the legacy
// layout (magic number, protocol, sys_info, main pickle, storage key list, raw storages), both through
// the safe pickle subset in io/pickle.cpp.
#include <torch/torch.h>

#include <cstring>

#include "emo/error.h"
#include "emo/mapped_file.h"
#include "emo/state_dict.h"
#include "io/pickle.h"
#include "io/zip_reader.h"

namespace emo::io {

namespace {

using pickle::Value;
using pickle::ValuePtr;

size_t elem_size(c10::ScalarType t) { return c10::elementSize(t); }

// A state dict is a dict whose values are tensors; collect them under "prefix.key" names.
void flatten(const ValuePtr& v, const std::string& prefix, StateDict& out) {
  if (v->is(Value::Kind::kTensor)) {
    out[prefix] = v->tensor;
    return;
  }
  if (!v->is(Value::Kind::kDict)) return;
  for (const auto& [k, val] : v->dict) {
    if (!k->is(Value::Kind::kString)) continue;
    flatten(val, prefix.empty() ? k->s : prefix + "." + k->s, out);
  }
}

StateDict to_state_dict(const ValuePtr& root, const std::string& path) {
  if (!root->is(Value::Kind::kDict)) throw ModelError(path + ": checkpoint holds a " + root->describe() + ", not a state dict");
  // Lightning / AnimateDiff / DeepSpeed style nesting.
  for (const char* key : {"state_dict", "module", "model"}) {
    for (const auto& [k, v] : root->dict) {
      if (k->is(Value::Kind::kString) && k->s == key && v->is(Value::Kind::kDict)) {
        StateDict sd;
        flatten(v, "", sd);
        if (!sd.empty()) return sd;
      }
    }
  }
  StateDict sd;
  flatten(root, "", sd);
  if (sd.empty()) throw ModelError(path + ": checkpoint contains no tensors");
  return sd;
}

at::Tensor view_or_copy(const std::shared_ptr<const MappedFile>& file, const uint8_t* p, c10::ScalarType dtype, int64_t numel) {
  const size_t es = elem_size(dtype);
  if (numel == 0) return torch::empty({0}, torch::TensorOptions().dtype(dtype));
  if (reinterpret_cast<uintptr_t>(p) % es == 0) {
    auto keep = file;
    return torch::from_blob(const_cast<uint8_t*>(p), {numel}, [keep](void*) mutable { keep.reset(); },
                            torch::TensorOptions().dtype(dtype));
  }
  auto t = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
  std::memcpy(t.data_ptr(), p, static_cast<size_t>(numel) * es);
  return t;
}

StateDict load_zip(const std::shared_ptr<const MappedFile>& file) {
  const std::string& path = file->path();
  ZipReader zip(file);
  std::string root;
  const ZipEntry* pkl = nullptr;
  for (const auto& [name, e] : zip.entries()) {
    const std::string suffix = "data.pkl";
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        (name.size() == suffix.size() || name[name.size() - suffix.size() - 1] == '/')) {
      pkl = &e;
      root = name.substr(0, name.size() - suffix.size());
      break;
    }
  }
  if (!pkl) throw ModelError(path + ": zip archive has no data.pkl: not a torch.save checkpoint");
  auto resolve = [&](c10::ScalarType dtype, const std::string& key, int64_t numel, const ValuePtr&) {
    const ZipEntry* e = zip.find(root + "data/" + key);
    if (!e) throw ModelError(path + ": storage '" + key + "' is missing from the archive");
    if (static_cast<uint64_t>(numel) > e->size / elem_size(dtype))
      throw ModelError(path + ": storage '" + key + "' claims " + std::to_string(numel) + " elements but holds " +
                       std::to_string(e->size) + " bytes");
    return view_or_copy(file, zip.data(*e), dtype, numel);
  };
  auto obj = pickle::load(zip.data(*pkl), pkl->size, resolve, path);
  return to_state_dict(obj, path);
}

StateDict load_legacy(const std::shared_ptr<const MappedFile>& file) {
  const std::string& path = file->path();
  const uint8_t* d = file->data();
  const size_t n = file->size();
  size_t pos = 0, used = 0;
  auto no_storage = [&](c10::ScalarType, const std::string&, int64_t, const ValuePtr&) -> at::Tensor {
    throw ModelError(path + ": unexpected storage reference in the legacy header");
  };
  auto magic = pickle::load(d, n, no_storage, path, &used);
  pos += used;
  static const uint8_t kMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (!magic->is(Value::Kind::kBytes) || magic->s.size() != sizeof kMagic ||
      std::memcmp(magic->s.data(), kMagic, sizeof kMagic) != 0)
    throw ModelError(path + ": not a torch.save file (legacy magic number missing)");
  auto proto = pickle::load(d + pos, n - pos, no_storage, path, &used);
  pos += used;
  if (!proto->is(Value::Kind::kInt) || proto->i != 1001)
    throw ModelError(path + ": unsupported legacy torch.save protocol " + proto->describe());
  pickle::load(d + pos, n - pos, no_storage, path, &used);  // sys_info (endianness, type sizes)
  pos += used;
  // Main object: storages are allocated now and filled once their bytes are read after the key list.
  std::map<std::string, at::Tensor> storages;
  auto resolve = [&](c10::ScalarType dtype, const std::string& key, int64_t numel, const ValuePtr& pid) {
    if (pid->items.size() >= 6 && !pid->items[5]->is(Value::Kind::kNone))
      throw ModelError(path + ": legacy storage views are not supported");
    if (static_cast<uint64_t>(numel) > (n - pos) / elem_size(dtype))
      throw ModelError(path + ": storage '" + key + "' is larger than the file (truncated?)");
    auto t = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    storages[key] = t;
    return t;
  };
  auto obj = pickle::load(d + pos, n - pos, resolve, path, &used);
  pos += used;
  auto keys = pickle::load(d + pos, n - pos, no_storage, path, &used);
  pos += used;
  if (!keys->is(Value::Kind::kList)) throw ModelError(path + ": legacy storage key list is missing");
  for (const auto& k : keys->items) {
    if (!k->is(Value::Kind::kString)) throw ModelError(path + ": legacy storage key is not a string");
    auto it = storages.find(k->s);
    if (it == storages.end()) throw ModelError(path + ": legacy storage '" + k->s + "' is not referenced");
    if (n - pos < 8) throw ModelError(path + ": truncated before storage '" + k->s + "'");
    int64_t numel = 0;
    std::memcpy(&numel, d + pos, 8);
    pos += 8;
    auto& t = it->second;
    if (numel != t.numel()) throw ModelError(path + ": storage '" + k->s + "' size disagrees with its record");
    const size_t bytes = static_cast<size_t>(numel) * t.element_size();
    if (bytes > n - pos) throw ModelError(path + ": storage '" + k->s + "' runs past the end of the file (truncated?)");
    if (bytes) std::memcpy(t.data_ptr(), d + pos, bytes);
    pos += bytes;
  }
  if (storages.size() != keys->items.size()) throw ModelError(path + ": some legacy storages have no data");
  return to_state_dict(obj, path);
}

}  // namespace

const char* to_string(WeightFormat f) {
  switch (f) {
    case WeightFormat::kSafetensors: return "safetensors";
    case WeightFormat::kTorchZip: return "torch.save (zip)";
    case WeightFormat::kTorchLegacy: return "torch.save (legacy)";
    case WeightFormat::kUnknown: return "unknown";
  }
  return "unknown";
}

WeightFormat detect_format(const std::string& path) {
  auto f = MappedFile::open(path);
  return detect_format(f->data(), f->size());
}

WeightFormat detect_format(const uint8_t* d, size_t n) {
  if (n >= 4 && d[0] == 'P' && d[1] == 'K' && d[2] == 3 && d[3] == 4) return WeightFormat::kTorchZip;
  if (n >= 4 && d[0] == 0x80 && d[1] <= 5 && d[2] == 0x8a) return WeightFormat::kTorchLegacy;
  if (n >= 10) {
    size_t k = 8;
    while (k < n && k < 64 && d[k] == ' ') ++k;
    if (k < n && d[k] == '{') return WeightFormat::kSafetensors;
  }
  return WeightFormat::kUnknown;
}

StateDict load_torch_checkpoint(const std::string& path) { return load_torch_checkpoint(MappedFile::open(path)); }

StateDict load_torch_checkpoint(const std::shared_ptr<const MappedFile>& file) {
  const uint8_t* d = file->data();
  if (file->size() >= 4 && d[0] == 'P' && d[1] == 'K') return load_zip(file);
  return load_legacy(file);
}

StateDict load_state_dict(const std::string& path) {
  switch (detect_format(path)) {
    case WeightFormat::kSafetensors: return SafetensorsFile::open(path).all();
    case WeightFormat::kTorchZip:
    case WeightFormat::kTorchLegacy: return load_torch_checkpoint(path);
    case WeightFormat::kUnknown: break;
  }
  throw ModelError(path + ": unrecognised weight file format (expected safetensors or a torch.save checkpoint)");
}

}  // namespace emo::io
