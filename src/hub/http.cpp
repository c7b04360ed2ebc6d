#include "hub/http.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "emo/download.h"
#include "emo/error.h"

namespace emo::hub {

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

std::string HttpResult::header(const std::string& lower_name) const {
  for (const auto& r : responses) {
    auto it = r.find(lower_name);
    if (it != r.end()) return it->second;
  }
  return "";
}

std::string url_escape(const std::string& s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string strip_etag(const std::string& v) {
  std::string s = v;
  if (s.rfind("W/", 0) == 0) s = s.substr(2);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw NetworkError("libcurl: global initialisation failed");
  });
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// State shared by the libcurl callbacks of one request.
struct Ctx {
  HttpResult* res = nullptr;
  long current_status = 0;
  // transfers
  int fd = -1;
  uint64_t offset = 0;  // bytes in the file before this attempt
  bool body_started = false;
  bool to_file = false;
  size_t max_body = 64u << 20;
  bool too_big = false;
  const TransferProgress* progress = nullptr;
  const std::atomic<bool>* cancel = nullptr;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* c = static_cast<Ctx*>(user);
  const size_t len = size * n;
  std::string line(data, len);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (the first, or the next after a redirect)
    c->res->responses.emplace_back();
    auto sp = line.find(' ');
    c->current_status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
    return len;
  }
  auto colon = line.find(':');
  if (colon != std::string::npos && !c->res->responses.empty()) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
    c->res->responses.back()[name] = trim(line.substr(colon + 1));
  }
  return len;
}

bool write_all(int fd, const char* p, size_t n, int& err) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      err = errno;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* c = static_cast<Ctx*>(user);
  const size_t len = size * n;
  if (c->fd < 0 || !(c->current_status == 200 || c->current_status == 206)) {
    // API bodies, and error bodies of transfers (kept out of the file).
    if (c->res->body.size() + len > c->max_body) {
      c->too_big = true;
      return 0;
    }
    c->res->body.append(data, len);
    return len;
  }
  if (!c->body_started) {
    c->body_started = true;
    if (c->current_status == 200 && c->offset > 0) {
      // The server ignored the Range request: start the file again.
      if (::ftruncate(c->fd, 0) != 0 || ::lseek(c->fd, 0, SEEK_SET) != 0) {
        c->res->write_errno = errno;
        return 0;
      }
      c->offset = 0;
      c->res->restarted = true;
    } else if (c->current_status == 206) {
      // "bytes START-END/TOTAL" must start where the file ends, or the bytes would land in the wrong place.
      const auto& hdrs = c->res->responses.back();
      auto it = hdrs.find("content-range");
      unsigned long long start = 0;
      if (it == hdrs.end() || std::sscanf(it->second.c_str(), "bytes %llu-", &start) != 1 || start != c->offset) {
        c->res->bad_range = true;
        return 0;
      }
    }
  }
  if (!write_all(c->fd, data, len, c->res->write_errno)) return 0;
  c->res->written += len;
  return len;
}

int on_xfer(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* c = static_cast<Ctx*>(user);
  if (c->cancel && c->cancel->load()) {
    c->res->cancelled = true;
    return 1;
  }
  if (c->progress && *c->progress && c->fd >= 0) (*c->progress)(c->offset + c->res->written);
  return 0;
}

}  // namespace

HttpClient::HttpClient(HttpSettings s) : s_(std::move(s)) {
  global_init();
  curl_slist* l = nullptr;
  if (!s_.token.empty()) l = curl_slist_append(l, ("Authorization: Bearer " + s_.token).c_str());
  headers_.reset(l);
}

CurlEasy HttpClient::make_handle(const std::string& url, curl_slist* headers, char* errbuf) const {
  CurlEasy h(curl_easy_init());
  if (!h) throw NetworkError("libcurl: cannot create a handle");
  CURL* e = h.get();
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85: protocol lists as strings
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, long(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, long(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(e, CURLOPT_USERAGENT, "emo/" EMO_VERSION " (libcurl)");
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, s_.connect_timeout_s);
  // A transfer that moves less than 1 byte/s for stall_timeout_s is aborted (and retried by the caller).
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, s_.stall_timeout_s);
  if (headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_xfer);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  // No CURLOPT_PROXY: libcurl reads http_proxy / https_proxy / no_proxy itself.
  return h;
}

namespace {
void perform(CURL* e, Ctx& ctx, HttpResult& res, const char* errbuf) {
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &ctx);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, &ctx);
  res.curl = curl_easy_perform(e);
  if (res.curl != CURLE_OK) res.curl_error = errbuf[0] ? errbuf : curl_easy_strerror(res.curl);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &res.status);
  char* eff = nullptr;
  if (curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff) res.url = eff;
}
}  // namespace

HttpResult HttpClient::get(const std::string& url, size_t max_bytes) const {
  char errbuf[CURL_ERROR_SIZE] = {0};
  CurlSlist headers;
  curl_slist* l = nullptr;
  for (auto* it = headers_.get(); it; it = it->next) l = curl_slist_append(l, it->data);
  l = curl_slist_append(l, "Accept: application/json");
  headers.reset(l);
  CurlEasy h = make_handle(url, headers.get(), errbuf);
  curl_easy_setopt(h.get(), CURLOPT_ACCEPT_ENCODING, "");  // gzip for JSON listings
  HttpResult res;
  Ctx ctx;
  ctx.res = &res;
  ctx.max_body = max_bytes;
  ctx.cancel = s_.cancel;
  perform(h.get(), ctx, res, errbuf);
  if (ctx.too_big) throw NetworkError(url + ": answer larger than " + std::to_string(max_bytes) + " bytes");
  return res;
}

HttpResult HttpClient::transfer(const std::string& url, int fd, uint64_t offset, const TransferProgress& progress) const {
  char errbuf[CURL_ERROR_SIZE] = {0};
  CurlEasy h = make_handle(url, headers_.get(), errbuf);
  std::string range;
  if (offset > 0) {
    range = std::to_string(offset) + "-";
    curl_easy_setopt(h.get(), CURLOPT_RANGE, range.c_str());
  }
  HttpResult res;
  Ctx ctx;
  ctx.res = &res;
  ctx.fd = fd;
  ctx.offset = offset;
  ctx.max_body = 1u << 20;  // error bodies
  ctx.progress = &progress;
  ctx.cancel = s_.cancel;
  perform(h.get(), ctx, res, errbuf);
  return res;
}

}  // namespace emo::hub
