// `emo download`: fetch the files of a Hugging Face Hub model repository (by default Hallo's weights) into a
// local folder, verified and resumable (docs/models.md). No torch here: libcurl + the standard library.
//
// Every file goes to `FILE.part-<hash prefix>` first, is checked (size, and the SHA-256 the Hub publishes for LFS
// files or the git blob SHA-1 for small files) and only then renamed onto `FILE`. An interrupted transfer leaves
// the .part file behind and the next run resumes it with an HTTP Range request. Verified files are recorded in
// `DIR/.emo-download.json` (path, hash, size, mtime) so a re-run skips them without hashing them again.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "emo/error.h"

namespace emo {

// Hallo's weights (github.com/fudan-generative-vision/hallo, "pretrained_models/").
inline constexpr const char* kDefaultHubRepo = "fudan-generative-vision/hallo";
inline constexpr const char* kDefaultHubEndpoint = "https://huggingface.co";

// One file of a repository as the Hub lists it.
struct HubFile {
  std::string path;     // relative, '/'-separated ("hallo/net.pth")
  uint64_t size = 0;    // bytes of the real file (for LFS files: the LFS object, not the pointer)
  std::string sha256;   // LFS files: the LFS oid (lower-case hex); "" for files stored in git itself
  std::string git_oid;  // the git blob SHA-1 (for a non-LFS file: the SHA-1 of "blob <size>\0" + content)
};

struct HubListing {
  std::string repo;
  std::string revision;  // as asked ("main")
  std::string commit;    // the commit the revision resolved to ("" if the Hub did not say)
  std::vector<HubFile> files;
};

struct DownloadProgress {
  std::string file;          // the file being transferred ("" once everything is done)
  size_t file_index = 0;     // 1-based among the files to fetch
  size_t files = 0;          // files to fetch (skipped ones excluded)
  uint64_t file_done = 0;    // bytes of this file on disk (a resumed part counts)
  uint64_t file_total = 0;
  uint64_t done = 0;         // bytes of all files to fetch on disk
  uint64_t total = 0;
  double elapsed_s = 0;      // since the first transfer started
  double bytes_per_s = 0;    // transfer rate of this run (resumed bytes excluded)
};
using DownloadProgressCallback = std::function<void(const DownloadProgress&)>;

struct DownloadOptions {
  std::string dir;                                // target folder (created when missing)
  std::string repo = kDefaultHubRepo;
  std::string revision = "main";
  std::string endpoint;                           // "" = $HF_ENDPOINT, else https://huggingface.co
  std::string token;                              // "" = $HF_TOKEN (sent as "Authorization: Bearer ...")
  std::vector<std::string> include;               // glob patterns (fnmatch, '*' crosses '/'; "dir/" = "dir/*")
  bool verify_existing = false;                   // re-hash present files even when the record says verified
  int retries = 4;                                // per file, for dropped connections and 5xx/429 answers
  int retry_delay_ms = 1000;                      // doubled after every retry
  long connect_timeout_s = 30;
  long stall_timeout_s = 60;                      // a transfer slower than 1 byte/s for this long is retried
  const std::atomic<bool>* cancel = nullptr;      // set by a signal handler: stop, keep the .part files
  DownloadProgressCallback progress;              // called often (throttle it); may be empty
};

struct DownloadReport {
  HubListing listing;                  // the selected files only
  std::vector<std::string> fetched;    // downloaded and verified in this run
  std::vector<std::string> skipped;    // already present and verified
  std::vector<std::string> refetched;  // present but failed verification, so fetched again (also in `fetched`)
  uint64_t bytes_transferred = 0;
};

// Errors with their exit codes (docs/exit-codes.md). Disk full / not writable is an OutputError (5).
struct NetworkError : Error {  // no connection, DNS, TLS, timeouts, 5xx after retries
  explicit NetworkError(const std::string& w) : Error(ExitCode::kNetwork, w) {}
};
struct AuthError : Error {  // 401/403: missing or rejected HF_TOKEN, gated repo
  explicit AuthError(const std::string& w) : Error(ExitCode::kAuth, w) {}
};
struct NotFoundError : Error {  // 404: repository, revision or file
  explicit NotFoundError(const std::string& w) : Error(ExitCode::kNotFound, w) {}
};
struct ChecksumError : Error {  // a downloaded file does not match the size/hash the Hub published
  explicit ChecksumError(const std::string& w) : Error(ExitCode::kChecksum, w) {}
};

// The endpoint to use: `flag` if set, else $HF_ENDPOINT, else https://huggingface.co (no trailing '/').
std::string hub_endpoint(const std::string& flag);

// Lists the files of `repo` at `revision` (GET {endpoint}/api/models/{repo}/revision/{revision}, then the
// recursive tree API at the resolved commit, following its pagination). Paths that could escape the target
// folder are refused (ModelError). Throws NetworkError / AuthError / NotFoundError.
HubListing list_hub_repo(const DownloadOptions& opt);

// Fetches every listed file that matches `include` (all when empty) into opt.dir. Files already present and
// verified are skipped; present files that fail verification are reported and fetched again; a final name is
// only ever replaced by a verified file. Checks free disk space before the first transfer. Checksum failures
// are collected (the other files are still fetched) and thrown together as one ChecksumError at the end.
DownloadReport download_hub_repo(const DownloadOptions& opt);

// fnmatch(3)-style match as huggingface_hub's allow_patterns: '*' also crosses '/', a pattern ending in '/'
// matches everything under that folder.
bool hub_glob_match(const std::string& pattern, const std::string& path);

// Lower-case hex SHA-256 of a file / of bytes; the git blob SHA-1 of a file (what the Hub lists as `oid` for
// files stored in git). Throws InputError when the file cannot be read.
std::string sha256_file(const std::string& path);
std::string sha256_hex(const std::string& bytes);
std::string git_blob_sha1_file(const std::string& path);
std::string sha1_hex(const std::string& bytes);

// The name a file is downloaded to before it is verified: "<path>.part-<first 16 hex of its hash>"
// (".part-unverified" when the Hub gave no hash), so a partial file is only resumed for the same content.
std::string hub_part_path(const std::string& final_path, const HubFile& f);

// "1.2 GB" (SI units), for messages and progress lines.
std::string human_bytes(uint64_t n);

// The record of verified files, DIR/.emo-download.json.
inline constexpr const char* kDownloadRecordName = ".emo-download.json";

}  // namespace emo
