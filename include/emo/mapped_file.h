// Read-only memory mapping of a whole file (RAII). Shared so zero-copy tensor views can keep it alive.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace emo::io {

class MappedFile {
 public:
  // Throws ModelError naming the file when it cannot be opened or mapped.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  // A copy of [data, data + size) held in memory under the name `name` (used in messages): the readers'
  // in-memory entry point (fuzz targets, tests). The readers see it exactly as a mapped file.
  static std::shared_ptr<const MappedFile> from_bytes(const std::string& name, const uint8_t* data, size_t size);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;          // data_ is an mmap (else it points into owned_)
  std::unique_ptr<uint8_t[]> owned_;
  std::string path_;
};

// Loading: drops the resident pages of [p, p + n) when (and only when) the range lies inside a live MappedFile
// (a read-only private file mapping: the data stays valid and is read again from the file if touched). Called
// after a tensor has been copied into a module, so a checkpoint is never resident beside the weights built from
// it. Any other memory is left alone. Returns the bytes advised.
size_t release_mapped_pages(const void* p, size_t n);

}  // namespace emo::io
