#include "emo/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include "emo/error.h"

namespace emo::io {

namespace {
// Live mappings by start address (release_mapped_pages only touches memory found here).
std::mutex g_mu;
std::map<uintptr_t, size_t>& live() {
  static std::map<uintptr_t, size_t> m;
  return m;
}

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ModelError(path + ": cannot open: " + std::strerror(errno));
  FdCloser closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw ModelError(path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw ModelError(path + ": not a regular file");
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) throw ModelError(path + ": cannot mmap: " + std::strerror(errno));
    f->data_ = static_cast<const uint8_t*>(p);
    f->mapped_ = true;
    std::lock_guard<std::mutex> lock(g_mu);
    live()[reinterpret_cast<uintptr_t>(p)] = f->size_;
  }
  return f;
}

std::shared_ptr<const MappedFile> MappedFile::from_bytes(const std::string& name, const uint8_t* data, size_t size) {
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = name;
  f->size_ = size;
  if (size > 0) {
    // Exactly `size` bytes on the heap, so that AddressSanitizer sees a read one past the end.
    f->owned_.reset(new uint8_t[size]);
    std::memcpy(f->owned_.get(), data, size);
    f->data_ = f->owned_.get();
  }
  return f;
}

MappedFile::~MappedFile() {
  if (!data_ || !mapped_) return;  // from_bytes: owned_ frees the copy
  {
    std::lock_guard<std::mutex> lock(g_mu);
    live().erase(reinterpret_cast<uintptr_t>(data_));
  }
  ::munmap(const_cast<uint8_t*>(data_), size_);
}

size_t release_mapped_pages(const void* p, size_t n) {
  if (!p || n == 0) return 0;
  const auto a = reinterpret_cast<uintptr_t>(p);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = live().upper_bound(a);
    if (it == live().begin()) return 0;
    --it;
    if (a + n > it->first + it->second) return 0;  // not inside one mapping
  }
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (a + page - 1) & ~(page - 1);  // whole pages inside the range only: neighbours keep theirs
  const uintptr_t last = (a + n) & ~(page - 1);
  if (last <= first) return 0;
  if (::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0) return 0;
  return last - first;
}

}  // namespace emo::io
