// emo: one binary, subcommands (generate, batch, inspect, bench, download, ...). A thin layer over include/emo/.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "emo/compat.h"
#include "emo/error.h"
#include "pipeline/device_errors.h"

int main(int argc, char** argv) {
  using namespace emo::cli;
  auto logger = spdlog::stderr_color_mt("emo");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^[%l]%$ %v");

  CLI::App app{"emo: talking/singing portrait video from one image and one voice clip (EMO / Hallo architecture)"};
  // --version: emo, torch, the CUDA/cuDNN libtorch was built against, and the CUDA devices visible now.
  app.set_version_flag("--version", [] {
                         auto r = emo::compat::version_report(EMO_VERSION);
                         if (!r.empty() && r.back() == '\n') r.pop_back();
                         return r;
                       },
                       "Print emo's, torch's, CUDA's and cuDNN's versions and the CUDA devices, then exit");
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  GlobalOptions g;
  if (const char* env = std::getenv("EMO_THREADS"); env && *env) g.threads = std::atoi(env);
  app.add_option("-t,--threads", g.threads, "CPU threads for libtorch (0 = all cores; env EMO_THREADS)")->capture_default_str();
  app.add_flag("-v,--verbose", g.verbose, "Debug logging");
  app.add_flag("-q,--quiet", g.quiet, "Only warnings and errors (no progress)");
  app.add_option("--log-level", g.log_level, "debug, info, warn or error (overrides -v/-q)")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.fallthrough();

  std::map<CLI::App*, Run> runs;
  auto reg = [&](Run (*add)(CLI::App&, GlobalOptions&)) {
    size_t before = app.get_subcommands({}).size();
    Run r = add(app, g);
    auto subs = app.get_subcommands({});
    if (subs.size() > before) runs[subs.back()] = std::move(r);
  };
  reg(add_generate);
  reg(add_batch);
  reg(add_inspect);
  reg(add_bench);
  reg(add_face);
  reg(add_eval);
  reg(add_cut);
  reg(add_make_test_model);
  reg(add_probe);
  reg(add_download);
  reg(add_separate);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : static_cast<int>(emo::ExitCode::kUsage);
  }
  spdlog::set_level(g.verbose ? spdlog::level::debug : g.quiet ? spdlog::level::warn : spdlog::level::info);
  if (!g.log_level.empty()) {
    spdlog::set_level(spdlog::level::from_str(g.log_level == "warn" ? "warning" : g.log_level));
    if (g.log_level == "warn" || g.log_level == "error") g.quiet = true;
  }
  emo::compat::set_num_threads(g.threads);

  try {
    for (auto* sub : app.get_subcommands()) {
      auto it = runs.find(sub);
      if (it != runs.end()) return it->second();
    }
    return static_cast<int>(emo::ExitCode::kUsage);
  } catch (const emo::Error& e) {
    spdlog::error("{}", e.what());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    // A device failure outside a job (e.g. out of memory while loading the model): its own code, one line.
    if (emo::pipeline::device_error_code(e) != emo::ExitCode::kOk) {
      auto err = emo::pipeline::device_error(e, "outside a job (loading the model?)", "the device");
      spdlog::error("{}", err.what());
      return static_cast<int>(err.code());
    }
    spdlog::error("internal error: {}", e.what());
    return static_cast<int>(emo::ExitCode::kFailure);
  }
}

namespace emo::cli {
int not_implemented(const char* what) {
  spdlog::error("{}: not implemented yet", what);
  return static_cast<int>(emo::ExitCode::kUsage);
}
}  // namespace emo::cli
