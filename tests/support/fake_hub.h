// An in-process HTTP server on 127.0.0.1 (ephemeral port, plain POSIX sockets, one thread) that serves fake
// Hugging Face Hub repositories in the Hub's URL layout, for the `emo download` tests:
//   GET {prefix}/api/models/{repo}/revision/{rev}              {"id", "sha", "siblings": [{"rfilename"}]}
//   GET {prefix}/api/models/{repo}/tree/{rev}?recursive=true   [{"type", "path", "size", "oid", "lfs": {...}}],
//                                                              paginated with Link: <...>; rel="next"
//   GET {prefix}/{repo}/resolve/{rev}/{path}                   small files: 200 + ETag (git blob sha1);
//                                                              LFS files: 302 to /cdn-lfs/{sha256} with
//                                                              X-Linked-Etag, X-Linked-Size, X-Repo-Commit
//   GET /cdn-lfs/{sha256}                                      the bytes, with Range support (206)
// Private repositories answer 401 without "Authorization: Bearer <token>"; unknown repositories, revisions and
// files answer 404 with the Hub's X-Error-Code. Faults can be injected: cut a transfer short, corrupt bytes,
// ignore Range, lie about sizes in the listing.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace emo::test {

struct FakeHubFile {
  std::string path;
  std::string content;
  bool lfs = false;  // served as an LFS object (302 to the CDN path, SHA-256 in the listing and headers)
};

struct FakeHubRepo {
  std::string id;                                 // "org/name"
  std::vector<std::string> revisions = {"main"};  // names that resolve to `commit`
  std::string commit = "0123456789abcdef0123456789abcdef01234567";
  std::string token;                              // non-empty: private, needs this bearer token
  std::vector<FakeHubFile> files;
};

struct FakeHubRequest {
  std::string method, target, range, authorization;
};

class FakeHubServer {
 public:
  explicit FakeHubServer(std::string prefix = "");  // prefix: a mirror living under a path, e.g. "/hf-mirror"
  ~FakeHubServer();
  FakeHubServer(const FakeHubServer&) = delete;
  FakeHubServer& operator=(const FakeHubServer&) = delete;

  void add_repo(FakeHubRepo repo);
  std::string endpoint() const;  // "http://127.0.0.1:<port><prefix>"
  int port() const { return port_; }

  // Faults. The next `times` transfers of `path` send `bytes` bytes of the body (counted from the start of the
  // file) and then drop the connection.
  void cut_after(const std::string& path, size_t bytes, int times = 1);
  void corrupt(const std::string& path, bool on = true);  // one byte flipped in what is served
  void ignore_range(bool on);                               // answer Range requests with 200 + everything
  void set_page_size(size_t n);                             // entries per tree page (default 1000)
  void set_listed_size(const std::string& path, uint64_t size);  // the listing claims this size
  void replace_content(const std::string& path, const std::string& content);  // upstream pushes a new version
  void set_cdn_host(const std::string& host);  // the host the LFS redirects name (default 127.0.0.1; "localhost" is
                                               // the same server under another name, like a real CDN host)

  std::vector<FakeHubRequest> requests() const;
  size_t count(const std::string& target_part) const;  // requests whose target contains target_part
  size_t count_ranged(const std::string& target_part) const;  // ... and that carried a Range header
  void clear_requests();

 private:
  void serve();
  void handle(int fd);

  std::string prefix_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<FakeHubRepo> repos_;
  std::vector<FakeHubRequest> requests_;
  std::map<std::string, std::pair<size_t, int>> cuts_;
  std::map<std::string, bool> corrupt_;
  std::map<std::string, uint64_t> listed_size_;
  bool ignore_range_ = false;
  size_t page_size_ = 1000;
  std::string cdn_host_ = "127.0.0.1";
};

// An http://127.0.0.1:<port> URL where nothing listens (connection refused): "no network".
std::string unreachable_endpoint();

}  // namespace emo::test
