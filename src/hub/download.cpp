// download_hub_repo(): plan (skip what is verified), check disk space, then fetch each file to FILE.part-<hash>,
// resume it with Range after a dropped connection, verify size + hash, rename, record (docs/models.md).
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "emo/download.h"
#include "emo/log.h"
#include "hub/hub_internal.h"
#include "util/atomic_file.h"

namespace fs = std::filesystem;

namespace emo {

bool hub_glob_match(const std::string& pattern, const std::string& path) {
  std::string p = pattern;
  if (!p.empty() && p.back() == '/') p += '*';
  return ::fnmatch(p.c_str(), path.c_str(), 0) == 0;
}

std::string hub_part_path(const std::string& final_path, const HubFile& f) {
  const std::string& h = !f.sha256.empty() ? f.sha256 : f.git_oid;
  return final_path + ".part-" + (h.empty() ? std::string("unverified") : h.substr(0, 16));
}

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000.0 && u < 5) {
    v /= 1000.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

namespace hub {
namespace {

using Clock = std::chrono::steady_clock;

// What a present file must match: the listing's hash ("sha256:<hex>", "git-sha1:<hex>", or "size" when the
// Hub gave none). The record stores this id, so a new upstream version never matches an old record.
std::string listing_id(const HubFile& f) {
  if (!f.sha256.empty()) return "sha256:" + f.sha256;
  if (!f.git_oid.empty()) return "git-sha1:" + f.git_oid;
  return "size";
}

int64_t mtime_ns(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

// DIR/.emo-download.json: {"version": 1, "files": {"<path>": {"id": ..., "size": N, "mtime_ns": N}}}
class Record {
 public:
  explicit Record(std::string dir) : path_((fs::path(dir) / kDownloadRecordName).string()) {
    std::ifstream in(path_);
    if (!in) return;
    try {
      auto j = nlohmann::json::parse(in);
      if (j.is_object() && j.contains("files") && j["files"].is_object()) files_ = j["files"];
    } catch (const std::exception& e) {
      log_warn(path_ + ": unreadable (" + e.what() + "); present files will be hashed again");
    }
  }

  bool matches(const HubFile& f, const struct stat& st) const {
    auto it = files_.find(f.path);
    if (it == files_.end() || !it->is_object()) return false;
    return it->value("id", std::string()) == listing_id(f) && it->value("size", uint64_t{0}) == f.size &&
           static_cast<uint64_t>(st.st_size) == f.size && it->value("mtime_ns", int64_t{-1}) == mtime_ns(st);
  }

  void set(const HubFile& f, const std::string& final_path) {
    struct stat st {};
    if (::stat(final_path.c_str(), &st) != 0) return;
    files_[f.path] = {{"id", listing_id(f)}, {"size", f.size}, {"mtime_ns", mtime_ns(st)}};
  }

  void save() const {
    nlohmann::json j = {{"version", 1}, {"files", files_}};
    const std::string text = j.dump(1) + "\n";
    util::AtomicFile out(path_);
    out.write(text.data(), text.size());
    out.commit();
  }

 private:
  std::string path_;
  nlohmann::json files_ = nlohmann::json::object();
};

struct Verdict {
  bool ok = false;
  std::string what;  // "sha256 e3b0... != 1a2b..." when not ok
};

// Checks a file against the size and hash the Hub published. `r` (the transfer's answer, may be null) supplies
// X-Linked-Etag / ETag when the listing had no hash.
Verdict verify(const std::string& path, const HubFile& f, const HttpResult* r) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return {false, "cannot read it (" + ec.message() + ")"};
  if (size != f.size) return {false, "size " + std::to_string(size) + " bytes, the Hub lists " + std::to_string(f.size)};
  std::string algo, want;
  if (!f.sha256.empty()) {
    algo = "sha256", want = f.sha256;
  } else if (r && is_hex(lower(strip_etag(r->header("x-linked-etag"))), 64)) {
    algo = "sha256", want = lower(strip_etag(r->header("x-linked-etag")));
  } else if (!f.git_oid.empty()) {
    algo = "git blob sha1", want = f.git_oid;
  } else if (r && !r->responses.empty() && is_hex(lower(strip_etag(r->header("etag"))), 40)) {
    algo = "git blob sha1", want = lower(strip_etag(r->header("etag")));
  } else {
    log_debug(f.path + ": the Hub gives no hash for it; checked its size only");
    return {true, ""};
  }
  const std::string got = algo == "sha256" ? sha256_file(path) : git_blob_sha1_file(path);
  if (got == want) return {true, ""};
  return {false, algo + " " + got + ", the Hub publishes " + want};
}

uint64_t fd_size(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

struct Plan {
  HubFile file;
  std::string final_path, part_path;
  uint64_t part_bytes = 0;  // already on disk in the .part file
  bool refetch = false;     // a local copy exists but failed verification
};

class Fetcher {
 public:
  Fetcher(const DownloadOptions& opt, const HttpClient& client, std::string endpoint, std::string commit)
      : opt_(opt), client_(client), endpoint_(std::move(endpoint)), commit_(std::move(commit)) {}

  void set_totals(size_t files, uint64_t total) {
    progress_.files = files;
    progress_.total = total;
  }

  // Downloads, verifies and renames one file. Throws ChecksumError on a mismatch (after one fresh attempt when
  // the mismatch may come from an old partial file).
  void fetch(const Plan& p, size_t index) {
    progress_.file = p.file.path;
    progress_.file_index = index;
    progress_.file_total = p.file.size;
    for (bool fresh = false;; fresh = true) {
      HttpResult last;
      bool transferred = false;
      uint64_t start = 0;
      {
        Fd fd(::open(p.part_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        if (!fd) throw OutputError(p.part_path + ": cannot create: " + std::strerror(errno));
        if (fresh && ::ftruncate(fd.get(), 0) != 0) throw OutputError(p.part_path + ": cannot truncate: " + std::strerror(errno));
        start = fd_size(fd.get());
        if (start > p.file.size) {
          if (::ftruncate(fd.get(), 0) != 0) throw OutputError(p.part_path + ": cannot truncate: " + std::strerror(errno));
          start = 0;
        }
        if (::lseek(fd.get(), 0, SEEK_END) < 0) throw OutputError(p.part_path + ": cannot seek: " + std::strerror(errno));
        if (start > 0) log_info(p.file.path + ": resuming at " + human_bytes(start) + " of " + human_bytes(p.file.size));
        progress_.file_done = start;
        progress_.done = done_files_bytes_ + start;
        emit(true);  // a new file starts
        if (start < p.file.size || p.file.size == 0) {
          last = transfer(p, fd.get(), start);
          transferred = true;
        }
        if (::fsync(fd.get()) != 0) throw OutputError(p.part_path + ": cannot sync: " + std::strerror(errno));
      }
      Verdict v = verify(p.part_path, p.file, transferred ? &last : nullptr);
      if (v.ok) {
        if (std::rename(p.part_path.c_str(), p.final_path.c_str()) != 0)
          throw OutputError(p.final_path + ": cannot rename " + p.part_path + " onto it: " + std::strerror(errno));
        return;
      }
      std::remove(p.part_path.c_str());
      if (start > 0 && !fresh) {
        log_warn(p.file.path + ": the resumed download does not verify (" + v.what + "); fetching it again from the start");
        continue;
      }
      throw ChecksumError(p.file.path + ": checksum mismatch: " + v.what + " (download removed" +
                          (fs::exists(p.final_path) ? std::string("; the local file was kept as it was)") : std::string(")")));
    }
  }

  void emit(bool force) {
    if (!opt_.progress) return;
    const auto now = Clock::now();
    if (!force && now - last_emit_ < std::chrono::milliseconds(100)) return;
    last_emit_ = now;
    progress_.elapsed_s = started_ ? std::chrono::duration<double>(now - t0_).count() : 0.0;
    progress_.bytes_per_s = progress_.elapsed_s > 0 ? static_cast<double>(transferred_ + live_) / progress_.elapsed_s : 0.0;
    opt_.progress(progress_);
  }

  void file_done(uint64_t size) {
    done_files_bytes_ += size;
    progress_.done = done_files_bytes_;
    progress_.file_done = size;
    emit(true);
  }

  void finish() {
    progress_.file.clear();
    emit(true);
  }

  uint64_t transferred() const { return transferred_; }

 private:
  HttpResult transfer(const Plan& p, int fd, uint64_t offset) {
    const std::string url = endpoint_ + "/" + url_escape(opt_.repo, true) + "/resolve/" +
                            url_escape(commit_.empty() ? opt_.revision : commit_, false) + "/" + url_escape(p.file.path, true);
    RequestContext ctx{opt_.repo, opt_.revision, p.file.path, false};
    ctx.have_token = !hub_token(opt_.token).empty();
    if (!started_) {
      started_ = true;
      t0_ = Clock::now();
    }
    int delay = opt_.retry_delay_ms;
    for (int attempt = 0;;) {
      const uint64_t before = offset;
      TransferProgress cb = [&](uint64_t on_disk) {
        progress_.file_done = on_disk;
        progress_.done = done_files_bytes_ + on_disk;
        live_ = on_disk >= before ? on_disk - before : on_disk;  // a restart at 0 counts from 0
        emit(false);
      };
      log_debug("GET " + url + (offset ? " (Range: bytes=" + std::to_string(offset) + "-)" : std::string()));
      HttpResult r = client_.transfer(url, fd, offset, cb);
      transferred_ += r.written;
      live_ = 0;
      offset = fd_size(fd);
      if (r.cancelled)
        throw Error(ExitCode::kInterrupted, p.file.path + ": interrupted; " + p.part_path +
                                                " is kept and the same command resumes it");
      if (ok(r) && !r.bad_range) return r;
      if (r.bad_range || r.status == 416) {
        log_warn(p.file.path + ": the server did not resume at byte " + std::to_string(before) + "; starting again");
        if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0)
          throw OutputError(p.part_path + ": cannot truncate: " + std::strerror(errno));
        offset = 0;
        if (attempt++ < opt_.retries) continue;
        raise_for(r, url, ctx);
      }
      if (!is_retryable(r) || attempt >= opt_.retries) raise_for(r, url, ctx);
      if (r.written > 0) {  // progress was made: the connection is flaky, not dead
        attempt = 0;
        delay = opt_.retry_delay_ms;
      }
      ++attempt;
      log_warn(p.file.path + ": " + (r.curl != CURLE_OK ? r.curl_error : "HTTP " + std::to_string(r.status)) +
               "; resuming at byte " + std::to_string(offset) + " in " + std::to_string(delay) + " ms (retry " +
               std::to_string(attempt) + " of " + std::to_string(opt_.retries) + ")");
      sleep_unless_cancelled(delay, opt_.cancel);
      delay *= 2;
    }
  }

  const DownloadOptions& opt_;
  const HttpClient& client_;
  std::string endpoint_, commit_;
  DownloadProgress progress_;
  Clock::time_point t0_, last_emit_{};
  bool started_ = false;
  uint64_t transferred_ = 0;      // bytes received by finished transfers of this run
  uint64_t live_ = 0;             // ... and by the one in flight
  uint64_t done_files_bytes_ = 0;
};

// Holds an exclusive flock on the target folder: two downloads into one folder would fight over .part files.
class DirLock {
 public:
  explicit DirLock(const std::string& dir) : fd_(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (!fd_) throw OutputError(dir + ": cannot open: " + std::strerror(errno));
    if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) throw OutputError(dir + ": another `emo download` is writing to this folder");
      log_debug(dir + ": cannot lock the folder (" + std::strerror(errno) + "); going on without a lock");
    }
  }

 private:
  Fd fd_;
};

}  // namespace

DownloadReport download_repo(const DownloadOptions& opt) {
  if (opt.dir.empty()) throw UsageError("download: no target folder given");
  DownloadReport report;
  report.listing = list_repo(opt);
  const size_t listed = report.listing.files.size();
  if (!opt.include.empty()) {
    auto& files = report.listing.files;
    files.erase(std::remove_if(files.begin(), files.end(),
                               [&](const HubFile& f) {
                                 for (const auto& g : opt.include)
                                   if (hub_glob_match(g, f.path)) return false;
                                 return true;
                               }),
                files.end());
    if (files.empty())
      throw UsageError("--include matched none of the " + std::to_string(listed) + " files of " + opt.repo);
  }
  std::error_code ec;
  fs::create_directories(opt.dir, ec);
  if (ec) throw OutputError(opt.dir + ": cannot create the folder: " + ec.message());
  DirLock lock(opt.dir);
  Record record(opt.dir);

  // Plan: skip verified files; everything else is fetched.
  std::vector<Plan> plan;
  bool record_dirty = false;
  for (const auto& f : report.listing.files) {
    if (opt.cancel && opt.cancel->load()) throw Error(ExitCode::kInterrupted, opt.dir + ": interrupted");
    Plan p;
    p.file = f;
    p.final_path = (fs::path(opt.dir) / f.path).string();
    p.part_path = hub_part_path(p.final_path, f);
    struct stat st {};
    if (::stat(p.final_path.c_str(), &st) == 0) {  // follows symlinks (e.g. into a Hub cache)
      if (!S_ISREG(st.st_mode)) throw OutputError(p.final_path + ": exists and is not a regular file");
      if (!opt.verify_existing && record.matches(f, st)) {
        report.skipped.push_back(f.path);
        continue;
      }
      log_info(f.path + ": checking the local copy");
      Verdict v = verify(p.final_path, f, nullptr);
      if (v.ok) {
        record.set(f, p.final_path);
        record_dirty = true;
        report.skipped.push_back(f.path);
        continue;
      }
      log_warn(f.path + ": the local copy does not verify (" + v.what + "); fetching it again (the local file stays until the new one verifies)");
      p.refetch = true;
    }
    fs::create_directories(fs::path(p.final_path).parent_path(), ec);
    if (ec) throw OutputError(fs::path(p.final_path).parent_path().string() + ": cannot create the folder: " + ec.message());
    struct stat pst {};
    if (::stat(p.part_path.c_str(), &pst) == 0 && static_cast<uint64_t>(pst.st_size) <= f.size)
      p.part_bytes = static_cast<uint64_t>(pst.st_size);
    plan.push_back(std::move(p));
  }
  if (record_dirty) record.save();

  // Disk space, before the first byte.
  uint64_t need = 0, total = 0;
  for (const auto& p : plan) {
    need += p.file.size - p.part_bytes;
    total += p.file.size;
  }
  struct statvfs vfs {};
  if (!plan.empty() && ::statvfs(opt.dir.c_str(), &vfs) == 0) {
    const uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (need > avail)
      throw OutputError(opt.dir + ": not enough disk space: " + human_bytes(need) + " to fetch (" + std::to_string(plan.size()) +
                        " files), " + human_bytes(avail) + " free");
  }
  if (plan.empty()) {
    log_info(opt.dir + ": all " + std::to_string(report.skipped.size()) + " files present and verified");
    return report;
  }
  log_info(opt.repo + "@" + (report.listing.commit.empty() ? opt.revision : report.listing.commit.substr(0, 12)) + ": " +
           std::to_string(plan.size()) + " files to fetch (" + human_bytes(need) + "), " +
           std::to_string(report.skipped.size()) + " already verified");

  HttpSettings hs;
  hs.token = hub_token(opt.token);
  hs.connect_timeout_s = opt.connect_timeout_s;
  hs.stall_timeout_s = opt.stall_timeout_s;
  hs.cancel = opt.cancel;
  HttpClient client(hs);
  Fetcher fetcher(opt, client, hub_endpoint(opt.endpoint), report.listing.commit);
  fetcher.set_totals(plan.size(), total);
  std::vector<std::string> mismatched, messages;
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto& p = plan[i];
    if (opt.cancel && opt.cancel->load()) throw Error(ExitCode::kInterrupted, opt.dir + ": interrupted before " + p.file.path);
    try {
      fetcher.fetch(p, i + 1);
    } catch (const ChecksumError& e) {
      log_warn(p.file.path + ": failed verification; going on with the other files");
      mismatched.push_back(p.file.path);
      messages.push_back(e.what());
      fetcher.file_done(p.file.size);
      continue;
    }
    record.set(p.file, p.final_path);
    record.save();
    fetcher.file_done(p.file.size);
    report.fetched.push_back(p.file.path);
    if (p.refetch) report.refetched.push_back(p.file.path);
  }
  fetcher.finish();
  report.bytes_transferred = fetcher.transferred();
  if (mismatched.size() == 1) throw ChecksumError(messages.front());
  if (!mismatched.empty()) {
    for (const auto& m : messages) log(LogLevel::kError, m);
    std::string names;
    for (const auto& m : mismatched) names += (names.empty() ? "" : ", ") + m;
    throw ChecksumError(std::to_string(mismatched.size()) + " files failed verification: " + names + " (details above)");
  }
  return report;
}

}  // namespace hub

DownloadReport download_hub_repo(const DownloadOptions& opt) { return hub::download_repo(opt); }

}  // namespace emo
