#include "pipeline/sidecar.h"

#include <cstring>

#include "emo/error.h"
#include "emo/mapped_file.h"
#include "util/atomic_file.h"

namespace emo::pipeline {

std::string hash_file(const std::string& path) {
  auto f = io::MappedFile::open(path);
  uint64_t h = 1469598103934665603ull;
  const uint8_t* d = f->data();
  size_t n = f->size();
  size_t i = 0;
  // 8 bytes at a time (FNV-1a over 64-bit words: not the byte-wise FNV, but stable and ~8x faster).
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, d + i, 8);
    h ^= w;
    h *= 1099511628211ull;
  }
  for (; i < n; ++i) {
    h ^= d[i];
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string sidecar_path(const std::string& video_path) {
  auto slash = video_path.find_last_of('/');
  auto dot = video_path.find_last_of('.');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) return video_path.substr(0, dot) + ".json";
  return video_path + ".json";
}

std::unique_ptr<util::AtomicFile> write_json_pending(const std::string& path, const nlohmann::json& j) {
  auto f = std::make_unique<util::AtomicFile>(path);
  std::string s = j.dump(2) + "\n";
  f->write(s.data(), s.size());
  f->close();
  return f;
}

void write_json_atomic(const std::string& path, const nlohmann::json& j) {
  util::AtomicFile f(path);
  std::string s = j.dump(2) + "\n";
  f.write(s.data(), s.size());
  f.commit();
}

}  // namespace emo::pipeline
