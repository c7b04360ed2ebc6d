// Minimal read-only ZIP directory reader for torch.save archives (stored entries, ZIP64 aware).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "emo/mapped_file.h"

namespace emo::io {

struct ZipEntry {
  std::string name;
  uint64_t data_offset = 0;  // absolute offset of the entry's bytes in the file
  uint64_t size = 0;         // uncompressed == compressed size (stored entries only)
};

class ZipReader {
 public:
  // Validates the central directory against the file size; throws ModelError.
  explicit ZipReader(std::shared_ptr<const MappedFile> file);
  const std::map<std::string, ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;
  const uint8_t* data(const ZipEntry& e) const { return file_->data() + e.data_offset; }
  const std::shared_ptr<const MappedFile>& file() const { return file_; }

 private:
  std::shared_ptr<const MappedFile> file_;
  std::map<std::string, ZipEntry> entries_;
};

}  // namespace emo::io
