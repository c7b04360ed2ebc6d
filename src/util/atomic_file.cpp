#include "util/atomic_file.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "emo/error.h"

namespace emo::util {

std::string temp_path_for(const std::string& final_path) {
  static std::atomic<unsigned> counter{0};
  // Keep the extension last so muxers that guess the container from the name still work.
  std::string base = final_path, ext;
  auto slash = final_path.find_last_of('/');
  auto dot = final_path.find_last_of('.');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) {
    base = final_path.substr(0, dot);
    ext = final_path.substr(dot);
  }
  return base + ".part-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ext;
}

AtomicFile::AtomicFile(std::string final_path) : final_(std::move(final_path)), temp_(temp_path_for(final_)) {
  f_ = std::fopen(temp_.c_str(), "wb");
  if (!f_) throw OutputError(final_ + ": cannot create " + temp_ + ": " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (f_) std::fclose(f_);
  if (!committed_) std::remove(temp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  if (n && std::fwrite(data, 1, n, f_) != n) throw OutputError(final_ + ": write failed: " + std::strerror(errno));
}

void AtomicFile::close() {
  if (!f_) return;
  if (std::fflush(f_) != 0) throw OutputError(final_ + ": flush failed: " + std::strerror(errno));
  ::fsync(fileno(f_));
  const int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) throw OutputError(final_ + ": closing " + temp_ + " failed: " + std::strerror(errno));
}

void AtomicFile::commit() {
  close();
  commit_rename(temp_, final_);
  committed_ = true;
}

void commit_rename(const std::string& temp, const std::string& final_path) {
  if (std::rename(temp.c_str(), final_path.c_str()) != 0)
    throw OutputError(final_path + ": cannot rename " + temp + " into place: " + std::strerror(errno));
}

}  // namespace emo::util
