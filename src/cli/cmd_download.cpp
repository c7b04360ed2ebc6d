// emo download [--dir DIR] [--repo ID] [--revision REV] [--include GLOB ...]: Hallo's weights from the Hugging Face
// Hub, verified and resumable (include/emo/download.h, docs/models.md), then the `emo inspect DIR` check.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/commands.h"
#include "cli/signals.h"
#include "emo/download.h"
#include "emo/error.h"
#include "emo/inspect.h"
#include "emo/log.h"
#include "emo/model_spec.h"

namespace emo::cli {

namespace {

struct DownloadCli {
  DownloadOptions opt;
  std::string dir;
  bool no_check = false;
};

std::string clock_str(double s) {
  if (!(s >= 0) || s > 359999) return "--:--";
  const long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

// A bar with bytes, speed and ETA on a terminal; a plain line per file and every 10 s otherwise (logs, CI).
class DownloadPrinter {
 public:
  explicit DownloadPrinter(bool quiet) : quiet_(quiet), tty_(::isatty(2) != 0) {}
  ~DownloadPrinter() { end_line(); }

  void end_line() {
    if (open_line_) std::fputc('\n', stderr);
    open_line_ = false;
  }

  void operator()(const DownloadProgress& p) {
    if (quiet_ || p.file.empty()) return;
    const double eta = p.bytes_per_s > 0 ? static_cast<double>(p.total - p.done) / p.bytes_per_s : -1;
    const int pct = p.total ? static_cast<int>(100.0 * static_cast<double>(p.done) / static_cast<double>(p.total)) : 100;
    if (tty_) {
      const int width = 24;
      const int filled = p.total ? static_cast<int>(width * static_cast<double>(p.done) / static_cast<double>(p.total)) : width;
      std::string bar(static_cast<size_t>(filled), '#');
      bar.resize(width, '.');
      std::fprintf(stderr, "\r[%s] %3d%% %s/%s %s/s ETA %s  %zu/%zu %s\033[K", bar.c_str(), pct, human_bytes(p.done).c_str(),
                   human_bytes(p.total).c_str(), human_bytes(static_cast<uint64_t>(p.bytes_per_s)).c_str(),
                   clock_str(eta).c_str(), p.file_index, p.files, p.file.c_str());
      open_line_ = true;
    } else if (p.file != last_file_ || p.elapsed_s - last_print_ >= 10) {
      std::fprintf(stderr, "[%7.1fs] %zu/%zu %s: %s of %s; total %d%% of %s, %s/s, ETA %s\n", p.elapsed_s, p.file_index,
                   p.files, p.file.c_str(), human_bytes(p.file_done).c_str(), human_bytes(p.file_total).c_str(), pct,
                   human_bytes(p.total).c_str(), human_bytes(static_cast<uint64_t>(p.bytes_per_s)).c_str(),
                   clock_str(eta).c_str());
      last_print_ = p.elapsed_s;
      last_file_ = p.file;
    }
    std::fflush(stderr);
  }

 private:
  bool quiet_, tty_;
  bool open_line_ = false;
  double last_print_ = -1;
  std::string last_file_;
};

// Library log lines end the open bar line first; restores the default sink when destroyed.
class DownloadLogGuard {
 public:
  explicit DownloadLogGuard(DownloadPrinter& printer) {
    set_log_callback([&printer](LogLevel level, const std::string& message) {
      printer.end_line();
      switch (level) {
        case LogLevel::kDebug: spdlog::debug(message); break;
        case LogLevel::kInfo: spdlog::info(message); break;
        case LogLevel::kWarn: spdlog::warn(message); break;
        case LogLevel::kError: spdlog::error(message); break;
      }
    });
  }
  ~DownloadLogGuard() { set_log_callback(nullptr); }
  DownloadLogGuard(const DownloadLogGuard&) = delete;
  DownloadLogGuard& operator=(const DownloadLogGuard&) = delete;
};

int run_download(DownloadCli& o, const GlobalOptions& g) {
  if (o.dir.empty()) {
    const char* env = std::getenv("EMO_MODEL_DIR");
    o.dir = env && *env ? env : "pretrained_models";
  }
  o.opt.dir = o.dir;
  o.opt.cancel = &install_cancel_handlers();
  DownloadPrinter printer(g.quiet);
  DownloadReport report;
  {
    DownloadLogGuard guard(printer);
    o.opt.progress = [&printer](const DownloadProgress& p) { printer(p); };
    report = download_hub_repo(o.opt);
    printer.end_line();
  }
  spdlog::info("{}: {} fetched ({}), {} already present and verified{}", o.dir, report.fetched.size(),
               human_bytes(report.bytes_transferred), report.skipped.size(),
               report.refetched.empty() ? "" : ", " + std::to_string(report.refetched.size()) + " replaced after failing verification");
  if (o.no_check) return 0;

  // The same check as `emo inspect DIR`, then what `emo generate` will require of the folder.
  print_model_folder(o.dir, scan_model_folder(o.dir));
  std::fflush(stdout);  // the list before any error line on stderr
  try {
    resolve_model(o.dir);
  } catch (const ModelError& e) {
    if (!o.opt.include.empty()) {
      spdlog::warn("{} is not a complete model folder yet (--include fetched part of {})", o.dir, o.opt.repo);
      return 0;
    }
    throw;
  }
  std::printf("ready: emo generate -m %s -i face.png -a voice.wav -o out.mp4\n", o.dir.c_str());
  return 0;
}

}  // namespace

Run add_download(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<DownloadCli>();
  auto* sub = app.add_subcommand(
      "download",
      "Fetch a Hugging Face Hub model repository (default: Hallo's weights) into a model folder: resumable, every "
      "file verified against the hash the Hub publishes, then checked like `emo inspect DIR` (docs/models.md)");
  sub->add_option("-d,--dir", o->dir, "Target folder (default: $EMO_MODEL_DIR, else pretrained_models)");
  sub->add_option("--repo", o->opt.repo, "Hub model repository (owner/name)")->capture_default_str();
  sub->add_option("--revision", o->opt.revision, "Branch, tag or commit")->capture_default_str();
  sub->add_option("--include", o->opt.include,
                  "Only files matching these globs ('*' crosses '/', 'dir/' = everything under dir; repeatable; "
                  "default: every file)");
  sub->add_option("--endpoint", o->opt.endpoint, "Hub or mirror URL (default: $HF_ENDPOINT, else https://huggingface.co)");
  sub->add_flag("--verify", o->opt.verify_existing,
                "Hash every present file again, even those the record (DIR/.emo-download.json) lists as verified");
  sub->add_option("--retries", o->opt.retries, "Retries per file after a dropped connection, timeout or 5xx/429 (backoff from 1 s)")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  sub->add_flag("--no-check", o->no_check, "Skip the final model-folder check (for repositories that are not a Hallo layout)");
  sub->footer(
      "Environment: HF_TOKEN (private/gated repositories; sent as a bearer token to the endpoint only), HF_ENDPOINT "
      "(mirror), https_proxy/http_proxy/no_proxy (read by libcurl).\n"
      "Exit codes: 0 ok, 4 the folder is incomplete after a full download, 5 not enough disk space / cannot write, "
      "8 network, 9 401/403 token, 10 404 repository/revision/file, 11 checksum mismatch, 130 interrupted "
      "(partial files are kept and resumed by the next run). docs/exit-codes.md");
  return [o, &g] { return run_download(*o, g); };
}

}  // namespace emo::cli
