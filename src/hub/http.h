// A small libcurl client for the Hub: JSON GETs and resumable file transfers. RAII for every curl handle.
// Proxies: nothing is set, so libcurl honours http_proxy / https_proxy / no_proxy from the environment.
#pragma once
#include <curl/curl.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace emo::hub {

struct CurlEasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;

struct CurlSlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;

// An open file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

struct HttpSettings {
  std::string token;              // Authorization: Bearer (libcurl keeps it off hosts other than the first one)
  long connect_timeout_s = 30;
  long stall_timeout_s = 60;
  const std::atomic<bool>* cancel = nullptr;
};

// What came back. `responses` holds the headers of every response of a redirect chain in order (names
// lower-case): the first is the Hub's own answer (X-Linked-Etag, X-Repo-Commit, X-Error-Code), the last is the
// one the body came from.
struct HttpResult {
  CURLcode curl = CURLE_OK;
  std::string curl_error;          // libcurl's message when curl != CURLE_OK
  long status = 0;                 // the final HTTP status
  std::string url;                 // the final URL (after redirects)
  std::vector<std::map<std::string, std::string>> responses;
  std::string body;                // API calls: the body; transfers: an error body (capped)
  uint64_t written = 0;            // transfers: bytes appended to the file in this attempt
  bool restarted = false;          // transfers: a Range request was answered 200, so the file restarted at 0
  bool bad_range = false;          // transfers: a 206 answer did not start where the file ends
  int write_errno = 0;             // transfers: errno of a failed write (ENOSPC: disk full)
  bool cancelled = false;

  // A header from the first response of the chain that has it, "" when absent.
  std::string header(const std::string& lower_name) const;
};

// (bytes_on_disk_of_this_file) -> called often during a transfer.
using TransferProgress = std::function<void(uint64_t)>;

class HttpClient {
 public:
  explicit HttpClient(HttpSettings s);
  // GET into memory (at most `max_bytes`, else a NetworkError).
  HttpResult get(const std::string& url, size_t max_bytes = 64u << 20) const;
  // GET appended to `fd`, which already holds `offset` bytes (a Range request is made when offset > 0; a 200
  // answer truncates the file and restarts). Only 200/206 bodies reach the file.
  HttpResult transfer(const std::string& url, int fd, uint64_t offset, const TransferProgress& progress) const;

 private:
  CurlEasy make_handle(const std::string& url, curl_slist* headers, char* errbuf) const;
  HttpSettings s_;
  CurlSlist headers_;
};

// Percent-encodes everything but unreserved characters; `keep_slash` keeps '/' (for file paths).
std::string url_escape(const std::string& s, bool keep_slash);

// A Hub hash header value without quotes and the weak-validator prefix: W/"abc" -> abc.
std::string strip_etag(const std::string& v);

}  // namespace emo::hub
