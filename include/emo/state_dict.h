// Weight files: safetensors, torch.save zip checkpoints, legacy torch.save files.
// Every reader validates before it touches tensor data; hostile files raise ModelError, never crash.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace emo::io {

// Ordered name -> tensor map, as PyTorch's state_dict(). Tensors may be zero-copy views of a mapped file
// (read-only; they keep the mapping alive) — copy before writing into them.
using StateDict = std::map<std::string, at::Tensor>;

enum class WeightFormat { kSafetensors, kTorchZip, kTorchLegacy, kUnknown };
const char* to_string(WeightFormat f);

// Sniffs the format from the first bytes (not the extension).
WeightFormat detect_format(const std::string& path);
WeightFormat detect_format(const uint8_t* data, size_t size);

// Loads any supported weight file into a flat state dict. For checkpoints that nest the state dict
// (Lightning `{"state_dict": ...}`, `{"module": ...}`) the nested dict is returned; non-tensor
// entries (epoch, global_step) are dropped. Throws ModelError with the file name on any problem.
StateDict load_state_dict(const std::string& path);

// ---- safetensors -------------------------------------------------------------------------------

struct TensorEntry {
  std::string name;
  std::string dtype;           // "F32", "F16", ... as in the file
  std::vector<int64_t> shape;
  uint64_t begin = 0;          // relative to the data buffer
  uint64_t end = 0;
};

class MappedFile;

class SafetensorsFile {
 public:
  // Maps and fully validates the file (header bound, JSON, dtypes, shapes vs byte sizes,
  // contiguous non-overlapping offsets covering the whole buffer, file size).
  static SafetensorsFile open(const std::string& path);
  // Same, from a file already mapped (or held in memory: MappedFile::from_bytes).
  static SafetensorsFile open(std::shared_ptr<const MappedFile> file);

  const std::string& path() const;
  const std::vector<TensorEntry>& entries() const { return entries_; }  // in offset order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const;
  const TensorEntry& entry(const std::string& name) const;
  // Zero-copy, read-only view of the tensor's bytes (keeps the mapping alive).
  at::Tensor tensor(const std::string& name) const;
  StateDict all() const;

 private:
  std::shared_ptr<const MappedFile> file_;
  uint64_t data_start_ = 0;
  std::vector<TensorEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (made contiguous, little-endian) with the standard layout: 8-byte aligned header,
// data sorted by name. Written to a temporary file and renamed on success.
void write_safetensors(const std::string& path, const StateDict& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Bytes per element for a safetensors dtype string, 0 if unknown/unsupported.
size_t safetensors_dtype_size(const std::string& dtype);

// ---- torch.save checkpoints --------------------------------------------------------------------

// Reads a torch.save file (zip or legacy) through the safe pickle subset and returns its state dict
// (see load_state_dict for nesting rules). Refuses any pickle global outside the allow-list.
StateDict load_torch_checkpoint(const std::string& path);
StateDict load_torch_checkpoint(const std::shared_ptr<const MappedFile>& file);  // in-memory entry point

}  // namespace emo::io
