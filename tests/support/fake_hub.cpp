#include "support/fake_hub.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "emo/download.h"  // sha256_hex / sha1_hex (checked against known vectors in tests/unit/test_download.cpp)

namespace emo::test {

namespace fakehub {  // named, and used qualified: unity builds share one translation unit

std::string url_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

std::string git_blob_sha1(const std::string& content) {
  return emo::sha1_hex("blob " + std::to_string(content.size()) + std::string(1, '\0') + content);
}

std::string lfs_pointer(const std::string& content) {
  return "version https://git-lfs.github.com/spec/v1\noid sha256:" + emo::sha256_hex(content) + "\nsize " +
         std::to_string(content.size()) + "\n";
}

void send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  size_t send_body_bytes = std::string::npos;  // fewer than body.size(): cut the connection after them
};

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 302: return "Found";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 416: return "Range Not Satisfiable";
    default: return "Status";
  }
}

void send_response(int fd, const Response& r, bool head) {
  std::ostringstream h;
  h << "HTTP/1.1 " << r.status << " " << reason(r.status) << "\r\n";
  for (const auto& [k, v] : r.headers) h << k << ": " << v << "\r\n";
  h << "Content-Length: " << r.body.size() << "\r\nConnection: close\r\n\r\n";
  send_all(fd, h.str());
  if (head) return;
  send_all(fd, r.body.substr(0, std::min(r.send_body_bytes, r.body.size())));
}

Response error(int status, const std::string& code, const std::string& message) {
  Response r;
  r.status = status;
  r.headers = {{"Content-Type", "application/json"}, {"X-Error-Code", code}, {"X-Error-Message", message}};
  r.body = "{\"error\":\"" + json_escape(message) + "\"}";
  return r;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t e = s.find(sep, start);
    out.push_back(s.substr(start, e == std::string::npos ? std::string::npos : e - start));
    if (e == std::string::npos) break;
    start = e + 1;
  }
  return out;
}

}  // namespace fakehub

FakeHubServer::FakeHubServer(std::string prefix) : prefix_(std::move(prefix)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("fake hub: socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 16) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error(std::string("fake hub: bind/listen failed: ") + std::strerror(errno));
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

FakeHubServer::~FakeHubServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
}

std::string FakeHubServer::endpoint() const { return "http://127.0.0.1:" + std::to_string(port_) + prefix_; }

void FakeHubServer::add_repo(FakeHubRepo repo) {
  std::lock_guard<std::mutex> l(mu_);
  repos_.push_back(std::move(repo));
}
void FakeHubServer::cut_after(const std::string& path, size_t bytes, int times) {
  std::lock_guard<std::mutex> l(mu_);
  cuts_[path] = {bytes, times};
}
void FakeHubServer::corrupt(const std::string& path, bool on) {
  std::lock_guard<std::mutex> l(mu_);
  corrupt_[path] = on;
}
void FakeHubServer::ignore_range(bool on) {
  std::lock_guard<std::mutex> l(mu_);
  ignore_range_ = on;
}
void FakeHubServer::set_page_size(size_t n) {
  std::lock_guard<std::mutex> l(mu_);
  page_size_ = n;
}
void FakeHubServer::set_listed_size(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> l(mu_);
  listed_size_[path] = size;
}
void FakeHubServer::replace_content(const std::string& path, const std::string& content) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& r : repos_)
    for (auto& f : r.files)
      if (f.path == path) f.content = content;
}
void FakeHubServer::set_cdn_host(const std::string& host) {
  std::lock_guard<std::mutex> l(mu_);
  cdn_host_ = host;
}
std::vector<FakeHubRequest> FakeHubServer::requests() const {
  std::lock_guard<std::mutex> l(mu_);
  return requests_;
}
size_t FakeHubServer::count(const std::string& part) const {
  std::lock_guard<std::mutex> l(mu_);
  return std::count_if(requests_.begin(), requests_.end(), [&](const FakeHubRequest& r) { return r.target.find(part) != std::string::npos; });
}
size_t FakeHubServer::count_ranged(const std::string& part) const {
  std::lock_guard<std::mutex> l(mu_);
  return std::count_if(requests_.begin(), requests_.end(),
                       [&](const FakeHubRequest& r) { return r.target.find(part) != std::string::npos && !r.range.empty(); });
}
void FakeHubServer::clear_requests() {
  std::lock_guard<std::mutex> l(mu_);
  requests_.clear();
}

void FakeHubServer::serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    handle(fd);
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
  }
}

void FakeHubServer::handle(int fd) {
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < (1 << 16)) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    req.append(buf, static_cast<size_t>(n));
  }
  std::istringstream in(req);
  std::string line;
  std::getline(in, line);
  FakeHubRequest rq;
  {
    std::istringstream rl(line);
    rl >> rq.method >> rq.target;
  }
  while (std::getline(in, line) && line != "\r") {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    if (name == "range") rq.range = value;
    if (name == "authorization") rq.authorization = value;
  }

  std::lock_guard<std::mutex> lock(mu_);
  requests_.push_back(rq);
  const bool head = rq.method == "HEAD";
  std::string path = rq.target, query;
  if (auto q = path.find('?'); q != std::string::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  const std::string origin = "http://127.0.0.1:" + std::to_string(port_);

  // The bytes of a file with Range support and the injected faults.
  auto serve_bytes = [&](const FakeHubFile& f, std::vector<std::pair<std::string, std::string>> extra) {
    fakehub::Response r;
    std::string content = f.content;
    if (corrupt_[f.path] && !content.empty()) content[content.size() / 2] ^= 0x5a;
    size_t start = 0;
    if (!rq.range.empty() && !ignore_range_) {
      unsigned long long a = 0;
      if (std::sscanf(rq.range.c_str(), "bytes=%llu-", &a) == 1) {
        if (a >= content.size()) {
          r.status = 416;
          r.headers = {{"Content-Range", "bytes */" + std::to_string(content.size())}};
          return fakehub::send_response(fd, r, head);
        }
        start = static_cast<size_t>(a);
        r.status = 206;
        r.headers.push_back({"Content-Range", "bytes " + std::to_string(start) + "-" + std::to_string(content.size() - 1) +
                                                  "/" + std::to_string(content.size())});
      }
    }
    r.headers.push_back({"Accept-Ranges", "bytes"});
    r.headers.push_back({"Content-Type", "application/octet-stream"});
    for (auto& h : extra) r.headers.push_back(h);
    r.body = content.substr(start);
    auto cut = cuts_.find(f.path);
    if (cut != cuts_.end() && cut->second.second > 0 && cut->second.first > start) {
      r.send_body_bytes = cut->second.first - start;
      --cut->second.second;
    }
    fakehub::send_response(fd, r, head);
  };

  // A mirror under a path prefix serves the Hub's routes below it (the CDN path stays at the root).
  if (!prefix_.empty() && path.rfind("/cdn-lfs/", 0) != 0) {
    if (path.rfind(prefix_ + "/", 0) != 0) return fakehub::send_response(fd, fakehub::error(404, "NotFound", "not under the mirror prefix"), head);
    path = path.substr(prefix_.size());
  }

  // CDN: /cdn-lfs/<sha256>
  if (path.rfind("/cdn-lfs/", 0) == 0) {
    const std::string sha = path.substr(9);
    for (const auto& repo : repos_)
      for (const auto& f : repo.files)
        if (f.lfs && emo::sha256_hex(f.content) == sha) return serve_bytes(f, {{"ETag", "\"cdn-" + sha.substr(0, 8) + "\""}});
    return fakehub::send_response(fd, fakehub::error(404, "NotFound", "no such object"), head);
  }

  std::vector<std::string> parts = fakehub::split(path.substr(1), '/');
  for (auto& p : parts) p = fakehub::url_decode(p);
  const bool api = parts.size() >= 5 && parts[0] == "api" && parts[1] == "models";
  const size_t repo_at = api ? 2 : 0;
  if (parts.size() < repo_at + 4) return fakehub::send_response(fd, fakehub::error(404, "NotFound", "no route"), head);
  const std::string repo_id = parts[repo_at] + "/" + parts[repo_at + 1];
  const std::string kind = parts[repo_at + 2];
  const std::string rev = parts[repo_at + 3];
  auto it = std::find_if(repos_.begin(), repos_.end(), [&](const FakeHubRepo& r) { return r.id == repo_id; });
  if (it == repos_.end()) return fakehub::send_response(fd, fakehub::error(404, "RepoNotFound", "Repository not found"), head);
  const FakeHubRepo& repo = *it;
  if (!repo.token.empty() && rq.authorization != "Bearer " + repo.token)
    return fakehub::send_response(fd, fakehub::error(401, "RepoNotFound", "Invalid credentials in Authorization header"), head);
  const bool rev_ok = rev == repo.commit || std::find(repo.revisions.begin(), repo.revisions.end(), rev) != repo.revisions.end();
  if (!rev_ok) return fakehub::send_response(fd, fakehub::error(404, "RevisionNotFound", "Invalid rev id: " + rev), head);

  auto listed_size = [&](const FakeHubFile& f) -> uint64_t {
    auto ls = listed_size_.find(f.path);
    return ls != listed_size_.end() ? ls->second : f.content.size();
  };

  if (api && kind == "revision" && parts.size() == repo_at + 4) {
    fakehub::Response r;
    r.headers = {{"Content-Type", "application/json"}};
    r.body = "{\"id\":\"" + fakehub::json_escape(repo.id) + "\",\"sha\":\"" + repo.commit + "\",\"private\":" +
             (repo.token.empty() ? "false" : "true") + ",\"siblings\":[";
    for (size_t i = 0; i < repo.files.size(); ++i) r.body += (i ? "," : "") + std::string("{\"rfilename\":\"") + fakehub::json_escape(repo.files[i].path) + "\"}";
    r.body += "]}";
    return fakehub::send_response(fd, r, head);
  }
  if (api && kind == "tree") {
    // Entries sorted as the Hub does (folders appear as their own entries), paginated by `cursor=<index>`.
    std::vector<std::string> entries;
    std::vector<std::string> dirs_seen;
    for (const auto& f : repo.files) {
      auto slash = f.path.rfind('/');
      if (slash != std::string::npos) {
        std::string d = f.path.substr(0, slash);
        if (std::find(dirs_seen.begin(), dirs_seen.end(), d) == dirs_seen.end()) {
          dirs_seen.push_back(d);
          entries.push_back("{\"type\":\"directory\",\"oid\":\"" + emo::sha1_hex(d) + "\",\"size\":0,\"path\":\"" + fakehub::json_escape(d) + "\"}");
        }
      }
      std::string e = "{\"type\":\"file\",\"path\":\"" + fakehub::json_escape(f.path) + "\",";
      if (f.lfs) {
        const std::string ptr = fakehub::lfs_pointer(f.content);
        e += "\"oid\":\"" + fakehub::git_blob_sha1(ptr) + "\",\"size\":" + std::to_string(listed_size(f)) +
             ",\"lfs\":{\"oid\":\"" + emo::sha256_hex(f.content) + "\",\"size\":" + std::to_string(listed_size(f)) +
             ",\"pointerSize\":" + std::to_string(ptr.size()) + "}}";
      } else {
        e += "\"oid\":\"" + fakehub::git_blob_sha1(f.content) + "\",\"size\":" + std::to_string(listed_size(f)) + "}";
      }
      entries.push_back(e);
    }
    size_t cursor = 0;
    for (const auto& kv : fakehub::split(query, '&'))
      if (kv.rfind("cursor=", 0) == 0) cursor = std::stoul(kv.substr(7));
    fakehub::Response r;
    r.headers = {{"Content-Type", "application/json"}};
    r.body = "[";
    size_t end = std::min(entries.size(), cursor + page_size_);
    for (size_t i = cursor; i < end; ++i) r.body += (i > cursor ? "," : "") + entries[i];
    r.body += "]";
    if (end < entries.size())
      r.headers.push_back({"Link", "<" + origin + prefix_ + path + "?recursive=true&cursor=" + std::to_string(end) + ">; rel=\"next\""});
    return fakehub::send_response(fd, r, head);
  }
  if (!api && kind == "resolve") {
    std::string file_path;
    for (size_t i = repo_at + 4; i < parts.size(); ++i) file_path += (file_path.empty() ? "" : "/") + parts[i];
    for (const auto& f : repo.files) {
      if (f.path != file_path) continue;
      if (f.lfs) {
        const std::string sha = emo::sha256_hex(f.content);
        fakehub::Response r;
        r.status = 302;
        r.headers = {{"Location", "http://" + cdn_host_ + ":" + std::to_string(port_) + "/cdn-lfs/" + sha + "?X-Amz-Signature=fake"},
                     {"X-Repo-Commit", repo.commit},
                     {"X-Linked-Etag", "\"" + sha + "\""},
                     {"X-Linked-Size", std::to_string(f.content.size())},
                     {"ETag", "\"" + sha + "\""}};
        return fakehub::send_response(fd, r, head);
      }
      return serve_bytes(f, {{"X-Repo-Commit", repo.commit}, {"ETag", "\"" + fakehub::git_blob_sha1(f.content) + "\""}});
    }
    return fakehub::send_response(fd, fakehub::error(404, "EntryNotFound", file_path + " does not exist on \"" + rev + "\""), head);
  }
  fakehub::send_response(fd, fakehub::error(404, "NotFound", "no route"), head);
}

std::string unreachable_endpoint() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);  // nothing listens there now
  return "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

}  // namespace emo::test
