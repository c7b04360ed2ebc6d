// ZIP format: PKWARE APPNOTE 6.3 (EOCD, ZIP64 EOCD locator/record, central directory, local headers).
#include "io/zip_reader.h"

#include <cstring>

#include "emo/error.h"

namespace emo::io {

namespace {

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) { return static_cast<uint32_t>(rd16(p)) | (static_cast<uint32_t>(rd16(p + 2)) << 16); }
uint64_t rd64(const uint8_t* p) { return static_cast<uint64_t>(rd32(p)) | (static_cast<uint64_t>(rd32(p + 4)) << 32); }

[[noreturn]] void zip_bad(const std::string& path, const std::string& what) {
  throw ModelError(path + ": invalid checkpoint archive: " + what);
}

}  // namespace

ZipReader::ZipReader(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {
  const std::string& path = file_->path();
  const uint8_t* d = file_->data();
  const uint64_t n = file_->size();
  if (n < 22) zip_bad(path, "too short to be a zip file (truncated?)");
  // End of central directory: scan back over at most 64 KiB of comment.
  int64_t eocd = -1;
  uint64_t lo = n > 22 + 65535 ? n - 22 - 65535 : 0;
  for (uint64_t i = n - 22 + 1; i-- > lo;) {
    if (rd32(d + i) == 0x06054b50) { eocd = static_cast<int64_t>(i); break; }
  }
  if (eocd < 0) zip_bad(path, "no end-of-central-directory record (file truncated?)");
  uint64_t count = rd16(d + eocd + 10);
  uint64_t cd_size = rd32(d + eocd + 12);
  uint64_t cd_off = rd32(d + eocd + 16);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
    if (eocd < 20 || rd32(d + eocd - 20) != 0x07064b50) zip_bad(path, "ZIP64 locator missing");
    uint64_t z64 = rd64(d + eocd - 20 + 8);
    // n >= 56 first: in a shorter file n - 56 wrapped around and any offset passed (found by fuzz_pth).
    if (n < 56 || z64 > n - 56 || rd32(d + z64) != 0x06064b50) zip_bad(path, "ZIP64 end record out of range");
    count = rd64(d + z64 + 32);
    cd_size = rd64(d + z64 + 40);
    cd_off = rd64(d + z64 + 48);
  }
  if (cd_off > n || cd_size > n - cd_off) zip_bad(path, "central directory lies outside the file (truncated?)");
  uint64_t p = cd_off;
  const uint64_t cd_end = cd_off + cd_size;
  for (uint64_t k = 0; k < count; ++k) {
    if (p + 46 > cd_end || rd32(d + p) != 0x02014b50) zip_bad(path, "corrupt central directory entry " + std::to_string(k));
    uint16_t method = rd16(d + p + 10);
    uint64_t csize = rd32(d + p + 20);
    uint64_t usize = rd32(d + p + 24);
    uint16_t name_len = rd16(d + p + 28), extra_len = rd16(d + p + 30), comment_len = rd16(d + p + 32);
    uint64_t local = rd32(d + p + 42);
    if (p + 46 + name_len + extra_len + comment_len > cd_end) zip_bad(path, "central directory entry runs past its end");
    std::string name(reinterpret_cast<const char*>(d + p + 46), name_len);
    // ZIP64 extended information extra field.
    const uint8_t* x = d + p + 46 + name_len;
    const uint8_t* xend = x + extra_len;
    while (x + 4 <= xend) {
      uint16_t id = rd16(x), len = rd16(x + 2);
      if (x + 4 + len > xend) break;
      if (id == 0x0001) {
        const uint8_t* q = x + 4;
        const uint8_t* qend = q + len;
        if (usize == 0xFFFFFFFFu && q + 8 <= qend) { usize = rd64(q); q += 8; }
        if (csize == 0xFFFFFFFFu && q + 8 <= qend) { csize = rd64(q); q += 8; }
        if (local == 0xFFFFFFFFu && q + 8 <= qend) { local = rd64(q); q += 8; }
      }
      x += 4 + len;
    }
    p += 46 + name_len + extra_len + comment_len;
    if (method != 0) zip_bad(path, "entry '" + name + "' is compressed (method " + std::to_string(method) + "); torch.save archives store entries uncompressed");
    if (csize != usize) zip_bad(path, "entry '" + name + "' has inconsistent sizes");
    if (local > n || n - local < 30 || rd32(d + local) != 0x04034b50) zip_bad(path, "entry '" + name + "' has no local header (truncated?)");
    uint64_t data_off = local + 30 + rd16(d + local + 26) + rd16(d + local + 28);
    if (data_off > n || usize > n - data_off) zip_bad(path, "entry '" + name + "' runs past the end of the file (truncated?)");
    entries_[name] = ZipEntry{name, data_off, usize};
  }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace emo::io
