#include "emo/log.h"

#include <spdlog/spdlog.h>

#include <mutex>

namespace emo {

namespace {
std::mutex g_mu;
LogCallback g_cb;
}  // namespace

void set_log_callback(LogCallback cb) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_cb = std::move(cb);
}

void log(LogLevel level, const std::string& message) {
  LogCallback cb;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    cb = g_cb;
  }
  if (cb) return cb(level, message);
  switch (level) {
    case LogLevel::kDebug: spdlog::debug(message); break;
    case LogLevel::kInfo: spdlog::info(message); break;
    case LogLevel::kWarn: spdlog::warn(message); break;
    case LogLevel::kError: spdlog::error(message); break;
  }
}

}  // namespace emo
