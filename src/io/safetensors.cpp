// safetensors reader/writer (format: huggingface/safetensors README; rules of its validate()).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "emo/error.h"
#include "emo/mapped_file.h"
#include "emo/state_dict.h"
#include "util/atomic_file.h"

namespace emo::io {

namespace {

constexpr uint64_t kMaxHeader = 100ull * 1024 * 1024;  // as the reference implementation
constexpr size_t kMaxRank = 16;

struct DtypeInfo {
  const char* name;
  size_t size;
  c10::ScalarType type;
};

const DtypeInfo kDtypes[] = {
    {"F64", 8, c10::kDouble}, {"F32", 4, c10::kFloat}, {"F16", 2, c10::kHalf},
    {"BF16", 2, c10::kBFloat16}, {"I64", 8, c10::kLong}, {"I32", 4, c10::kInt},
    {"I16", 2, c10::kShort}, {"I8", 1, c10::kChar}, {"U8", 1, c10::kByte},
    {"BOOL", 1, c10::kBool},
};

const DtypeInfo* find_dtype(const std::string& s) {
  for (const auto& d : kDtypes)
    if (s == d.name) return &d;
  return nullptr;
}

const DtypeInfo* find_dtype(c10::ScalarType t) {
  for (const auto& d : kDtypes)
    if (t == d.type) return &d;
  return nullptr;
}

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw ModelError(path + ": invalid safetensors file: " + what);
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  const auto* d = find_dtype(dtype);
  return d ? d->size : 0;
}

const std::string& SafetensorsFile::path() const { return file_->path(); }

SafetensorsFile SafetensorsFile::open(const std::string& path) { return open(MappedFile::open(path)); }

SafetensorsFile SafetensorsFile::open(std::shared_ptr<const MappedFile> file) {
  SafetensorsFile st;
  st.file_ = std::move(file);
  const std::string& path = st.file_->path();
  const size_t fsize = st.file_->size();
  if (fsize < 8) bad(path, "file is " + std::to_string(fsize) + " bytes, shorter than the 8-byte header length");
  uint64_t hlen = 0;
  std::memcpy(&hlen, st.file_->data(), 8);  // little-endian hosts only (x86_64, aarch64)
  if (hlen > kMaxHeader) bad(path, "header length " + std::to_string(hlen) + " exceeds the 100 MB limit");
  if (hlen > fsize - 8) bad(path, "header length " + std::to_string(hlen) + " runs past the end of the file (" + std::to_string(fsize) + " bytes)");
  st.data_start_ = 8 + hlen;
  const uint64_t data_size = fsize - st.data_start_;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(st.file_->data()) + 8,
                                   reinterpret_cast<const char*>(st.file_->data()) + 8 + hlen);
  } catch (const std::exception& e) {
    bad(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) bad(path, "header is not a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) bad(path, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) bad(path, "__metadata__ value '" + m.key() + "' is not a string");
        st.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      bad(path, "tensor '" + name + "' lacks dtype/shape/data_offsets");
    TensorEntry e;
    e.name = name;
    if (!v["dtype"].is_string()) bad(path, "tensor '" + name + "': dtype is not a string");
    e.dtype = v["dtype"].get<std::string>();
    const auto* dt = find_dtype(e.dtype);
    if (!dt) bad(path, "tensor '" + name + "': unsupported dtype '" + e.dtype + "'");
    const auto& shape = v["shape"];
    if (!shape.is_array() || shape.size() > kMaxRank) bad(path, "tensor '" + name + "': shape is not an array of rank <= 16");
    // numel * size with overflow checks: a hostile shape must not wrap around.
    uint64_t numel = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) bad(path, "tensor '" + name + "': shape has a non-integer or negative dimension");
      uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        bad(path, "tensor '" + name + "': dimension too large");
      if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim)
        bad(path, "tensor '" + name + "': shape overflows");
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    if (numel > std::numeric_limits<uint64_t>::max() / dt->size) bad(path, "tensor '" + name + "': byte size overflows");
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      bad(path, "tensor '" + name + "': data_offsets must be two non-negative integers");
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.end < e.begin) bad(path, "tensor '" + name + "': data_offsets end before they begin");
    if (e.end - e.begin != numel * dt->size)
      bad(path, "tensor '" + name + "': " + std::to_string(e.end - e.begin) + " bytes for dtype " + e.dtype +
                    " and shape of " + std::to_string(numel) + " elements (expected " +
                    std::to_string(numel * dt->size) + ")");
    if (e.end > data_size)
      bad(path, "tensor '" + name + "': data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                    ") run past the end of the file (data buffer is " + std::to_string(data_size) + " bytes)");
    st.entries_.push_back(std::move(e));
  }
  std::sort(st.entries_.begin(), st.entries_.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  for (const auto& e : st.entries_) {
    if (e.begin != expect)
      bad(path, "tensor '" + e.name + "' starts at " + std::to_string(e.begin) + " but the previous one ends at " +
                    std::to_string(expect) + (e.begin < expect ? " (overlapping offsets)" : " (gap in the buffer)"));
    expect = e.end;
  }
  if (expect != data_size)
    bad(path, "tensors cover " + std::to_string(expect) + " bytes but the data buffer has " + std::to_string(data_size));
  for (size_t i = 0; i < st.entries_.size(); ++i) st.index_[st.entries_[i].name] = i;
  return st;
}

bool SafetensorsFile::contains(const std::string& name) const { return index_.count(name) != 0; }

const TensorEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw ModelError(path() + ": no tensor named '" + name + "'");
  return entries_[it->second];
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const auto& e = entry(name);
  const auto* dt = find_dtype(e.dtype);
  auto keep = file_;
  void* ptr = const_cast<uint8_t*>(file_->data() + data_start_ + e.begin);
  if (e.end == e.begin) return torch::empty(e.shape, torch::TensorOptions().dtype(dt->type));
  if (reinterpret_cast<uintptr_t>(ptr) % dt->size != 0) {
    // Unaligned data (legal but unusual): copy instead of viewing.
    auto t = torch::empty(e.shape, torch::TensorOptions().dtype(dt->type));
    std::memcpy(t.data_ptr(), ptr, e.end - e.begin);
    return t;
  }
  return torch::from_blob(ptr, e.shape, [keep](void*) mutable { keep.reset(); },
                          torch::TensorOptions().dtype(dt->type));
}

StateDict SafetensorsFile::all() const {
  StateDict sd;
  for (const auto& e : entries_) sd[e.name] = tensor(e.name);
  return sd;
}

void write_safetensors(const std::string& path, const StateDict& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const auto* dt = find_dtype(t.scalar_type());
    if (!dt) throw Error(ExitCode::kFailure, path + ": cannot write tensor '" + name + "' of dtype " + std::string(c10::toString(t.scalar_type())));
    auto c = t.detach().to(torch::kCPU).contiguous();
    uint64_t nbytes = static_cast<uint64_t>(c.numel()) * dt->size;
    header[name] = {{"dtype", dt->name}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(c);
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');
  util::AtomicFile out(path);
  uint64_t hlen = h.size();
  out.write(&hlen, 8);
  out.write(h.data(), h.size());
  for (const auto& c : data) out.write(c.data_ptr(), c.numel() * c.element_size());
  out.commit();
}

}  // namespace emo::io
