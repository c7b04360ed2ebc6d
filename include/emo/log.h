// Library logging goes through one callback so embedders (and the CLI) decide where it ends up.
#pragma once
#include <functional>
#include <string>

namespace emo {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

using LogCallback = std::function<void(LogLevel, const std::string&)>;

// Replaces the sink (nullptr restores the default: spdlog's default logger on stderr).
void set_log_callback(LogCallback cb);
void log(LogLevel level, const std::string& message);
inline void log_debug(const std::string& m) { log(LogLevel::kDebug, m); }
inline void log_info(const std::string& m) { log(LogLevel::kInfo, m); }
inline void log_warn(const std::string& m) { log(LogLevel::kWarn, m); }

// Progress of a long operation: stage name, current and total units (e.g. step 3 of 40).
struct Progress {
  std::string stage;
  int current = 0;
  int total = 0;
  int clip = 0;        // 1-based clip index when denoising, else 0
  int clips = 0;
  double elapsed_s = 0;
};
using ProgressCallback = std::function<void(const Progress&)>;

}  // namespace emo
