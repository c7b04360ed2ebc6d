#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>
#include <spdlog/spdlog.h>

namespace emo::cli {

ProgressPrinter::ProgressPrinter(bool quiet) : quiet_(quiet), tty_(::isatty(2) != 0) {}
ProgressPrinter::~ProgressPrinter() { finish(); }

void ProgressPrinter::finish() {
  if (open_line_) std::fputc('\n', stderr);
  open_line_ = false;
}

void ProgressPrinter::operator()(const Progress& p) {
  if (quiet_) return;
  if (p.elapsed_s < last_elapsed_) {  // the next job of a batch
    finish();
    denoise_start_ = -1;
    steps_done_ = 0;
    last_print_ = -1;
  }
  last_elapsed_ = p.elapsed_s;
  if (p.stage != "denoise") {
    if (p.stage == "portrait" || p.stage == "audio") {
      finish();
      std::fprintf(stderr, "[%7.1fs] %s...\n", p.elapsed_s, p.stage == "portrait" ? "analysing portrait" : "encoding audio");
    } else if (p.stage == "vocals") {
      finish();
      std::fprintf(stderr, "[%7.1fs] separating vocals: chunk %d/%d\n", p.elapsed_s, p.current + 1, p.total);
    }
    return;
  }
  if (denoise_start_ < 0) denoise_start_ = p.elapsed_s;
  ++steps_done_;
  const int total_steps = p.total * p.clips;
  const double spent = p.elapsed_s - denoise_start_;
  const double rate = spent > 0 ? steps_done_ / spent : 0;  // it/s
  const double eta = rate > 0 ? (total_steps - steps_done_) / rate : 0;
  if (tty_) {
    const int width = 30;
    int filled = total_steps ? width * steps_done_ / total_steps : 0;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r[%s] clip %d/%d step %d/%d  %.2f it/s  ETA %.0fs   ", bar.c_str(), p.clip, p.clips,
                 p.current, p.total, rate, eta);
    open_line_ = true;
  } else if (p.current == p.total || p.elapsed_s - last_print_ >= 10) {
    std::fprintf(stderr, "[%7.1fs] clip %d/%d step %d/%d %.2f it/s ETA %.0fs\n", p.elapsed_s, p.clip, p.clips,
                 p.current, p.total, rate, eta);
    last_print_ = p.elapsed_s;
  }
  std::fflush(stderr);
}

ProgressLogGuard::ProgressLogGuard(ProgressPrinter& printer) {
  set_log_callback([&printer](LogLevel level, const std::string& message) {
    printer.finish();
    switch (level) {
      case LogLevel::kDebug: spdlog::debug(message); break;
      case LogLevel::kInfo: spdlog::info(message); break;
      case LogLevel::kWarn: spdlog::warn(message); break;
      case LogLevel::kError: spdlog::error(message); break;
    }
  });
}

ProgressLogGuard::~ProgressLogGuard() { set_log_callback(nullptr); }

}  // namespace emo::cli
