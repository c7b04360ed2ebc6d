// Write-to-temp-then-rename: a final name never holds a half-written file.
#pragma once
#include <cstdio>
#include <string>

namespace emo::util {

// Temporary path beside `final_path` (same directory, so rename is atomic), unique per process/call.
std::string temp_path_for(const std::string& final_path);

class AtomicFile {
 public:
  explicit AtomicFile(std::string final_path);  // throws OutputError
  ~AtomicFile();                                // removes the temp file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);  // throws OutputError
  void close();                            // flush, fsync, close; the file stays under temp_path()
  void commit();                           // close() if needed, then rename onto the final name
  const std::string& temp_path() const { return temp_; }

 private:
  std::string final_, temp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

// Renames `temp` onto `final_path` (throws OutputError with both names).
void commit_rename(const std::string& temp, const std::string& final_path);

}  // namespace emo::util
