// Listing a Hub repository: GET /api/models/{repo}/revision/{rev} resolves the revision to a commit, then
// GET /api/models/{repo}/tree/{commit}?recursive=true lists every file with its size, git oid and LFS oid
// (SHA-256), page by page (Link: <...>; rel="next").
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "emo/download.h"
#include "emo/log.h"
#include "hub/hub_errors.h"
#include "hub/hub_internal.h"

namespace emo {

std::string hub_endpoint(const std::string& flag) {
  std::string e = flag;
  if (e.empty())
    if (const char* env = std::getenv("HF_ENDPOINT"); env && *env) e = env;
  if (e.empty()) e = kDefaultHubEndpoint;
  while (!e.empty() && e.back() == '/') e.pop_back();
  if (e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0)
    throw UsageError("hub endpoint '" + e + "' must start with http:// or https://");
  return e;
}

namespace hub {

std::string hub_token(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("HF_TOKEN"); env && *env) return env;
  return "";
}

bool is_hex(const std::string& s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void check_relative_path(const std::string& repo, const std::string& p) {
  auto bad = [&](const char* why) { throw ModelError(repo + ": the listing names an unsafe path '" + p + "' (" + why + ")"); };
  if (p.empty()) bad("empty");
  if (p.front() == '/') bad("absolute");
  if (p.find('\\') != std::string::npos || p.find('\0') != std::string::npos) bad("backslash or NUL");
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    const std::string seg = p.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") bad("empty, '.' or '..' component");
    start = end + 1;
  }
  if (p == kDownloadRecordName) bad("clashes with emo's download record");
}

HttpResult get_with_retries(const HttpClient& client, const std::string& url, const RequestContext& ctx,
                            const DownloadOptions& opt) {
  int delay = opt.retry_delay_ms;
  for (int attempt = 0;; ++attempt) {
    HttpResult r = client.get(url);
    if (ok(r)) return r;
    if (!is_retryable(r) || attempt >= opt.retries) raise_for(r, url, ctx);
    log_warn(ctx.repo + ": " + (r.curl != CURLE_OK ? r.curl_error : "HTTP " + std::to_string(r.status)) +
             "; retrying in " + std::to_string(delay) + " ms (attempt " + std::to_string(attempt + 2) + " of " +
             std::to_string(opt.retries + 1) + ")");
    sleep_unless_cancelled(delay, opt.cancel);
    delay *= 2;
  }
}

void sleep_unless_cancelled(int ms, const std::atomic<bool>* cancel) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    if (cancel && cancel->load()) throw Error(ExitCode::kInterrupted, "interrupted");
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(50), end - std::chrono::steady_clock::now()));
  }
}

namespace {

nlohmann::json parse_json(const HttpResult& r, const std::string& url, const std::string& repo) {
  try {
    return nlohmann::json::parse(r.body);
  } catch (const std::exception& e) {
    throw NetworkError(repo + ": " + url + ": the answer is not JSON (" + e.what() + "); is the endpoint a Hub?");
  }
}

// `<URL>; rel="next"` from a Link header; relative URLs are resolved against the endpoint's origin.
std::string next_link(const std::string& link, const std::string& endpoint) {
  size_t pos = 0;
  while ((pos = link.find('<', pos)) != std::string::npos) {
    size_t close = link.find('>', pos);
    if (close == std::string::npos) return "";
    size_t next_entry = link.find(',', close);
    std::string params = link.substr(close + 1, next_entry == std::string::npos ? std::string::npos : next_entry - close - 1);
    std::string url = link.substr(pos + 1, close - pos - 1);
    if (params.find("rel=\"next\"") != std::string::npos || params.find("rel=next") != std::string::npos) {
      if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0) return url;
      size_t scheme_end = endpoint.find("://");
      size_t host_end = endpoint.find('/', scheme_end + 3);
      return endpoint.substr(0, host_end) + (url.empty() || url[0] != '/' ? "/" : "") + url;
    }
    pos = close;
  }
  return "";
}

}  // namespace

std::string api_base(const std::string& endpoint, const std::string& repo) {
  return endpoint + "/api/models/" + url_escape(repo, /*keep_slash=*/true);
}

HubListing list_repo(const DownloadOptions& opt) {
  if (opt.repo.empty() || opt.repo.find("..") != std::string::npos || opt.repo.front() == '/')
    throw UsageError("invalid repository id '" + opt.repo + "' (expected owner/name)");
  const std::string endpoint = hub_endpoint(opt.endpoint);
  HttpSettings hs;
  hs.token = hub_token(opt.token);
  hs.connect_timeout_s = opt.connect_timeout_s;
  hs.stall_timeout_s = opt.stall_timeout_s;
  hs.cancel = opt.cancel;
  HttpClient client(hs);
  RequestContext ctx{opt.repo, opt.revision, "", !hs.token.empty()};

  HubListing out;
  out.repo = opt.repo;
  out.revision = opt.revision;
  const std::string rev_url = api_base(endpoint, opt.repo) + "/revision/" + url_escape(opt.revision, false);
  log_debug("GET " + rev_url);
  auto info = parse_json(get_with_retries(client, rev_url, ctx, opt), rev_url, opt.repo);
  if (info.is_object() && info.contains("sha") && info["sha"].is_string()) out.commit = info["sha"].get<std::string>();
  if (!out.commit.empty() && !is_hex(out.commit, 40))
    throw NetworkError(opt.repo + ": " + rev_url + ": unexpected commit id '" + out.commit + "'");

  std::string url = api_base(endpoint, opt.repo) + "/tree/" + url_escape(out.commit.empty() ? opt.revision : out.commit, false) +
                    "?recursive=true";
  for (int page = 0; !url.empty(); ++page) {
    if (page > 10000) throw NetworkError(opt.repo + ": the tree listing does not end");
    log_debug("GET " + url);
    HttpResult r = get_with_retries(client, url, ctx, opt);
    auto arr = parse_json(r, url, opt.repo);
    if (!arr.is_array()) throw NetworkError(opt.repo + ": " + url + ": expected a JSON array of tree entries");
    for (const auto& e : arr) {
      if (!e.is_object() || e.value("type", std::string()) != "file") continue;
      HubFile f;
      try {
        f.path = e.at("path").get<std::string>();
        f.size = e.value("size", uint64_t{0});
        f.git_oid = lower(e.value("oid", std::string()));
        if (e.contains("lfs") && e["lfs"].is_object()) {
          const auto& lfs = e["lfs"];
          f.sha256 = lower(lfs.value("oid", lfs.value("sha256", std::string())));
          if (lfs.contains("size")) f.size = lfs["size"].get<uint64_t>();
          if (!is_hex(f.sha256, 64)) throw NetworkError("bad LFS oid '" + f.sha256 + "'");
        }
      } catch (const NetworkError& ex) {
        throw NetworkError(opt.repo + ": " + url + ": " + ex.what());
      } catch (const std::exception& ex) {
        throw NetworkError(opt.repo + ": " + url + ": malformed tree entry (" + ex.what() + ")");
      }
      if (!f.git_oid.empty() && !is_hex(f.git_oid, 40)) f.git_oid.clear();
      check_relative_path(opt.repo, f.path);
      out.files.push_back(std::move(f));
    }
    url = next_link(r.header("link"), endpoint);
  }
  std::sort(out.files.begin(), out.files.end(), [](const HubFile& a, const HubFile& b) { return a.path < b.path; });
  return out;
}

}  // namespace hub

HubListing list_hub_repo(const DownloadOptions& opt) { return hub::list_repo(opt); }

}  // namespace emo
