// emo bench: per-stage timings (mean ± stddev) and peak memory; --tiny benchmarks a generated tiny model.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "emo/bench.h"
#include "emo/error.h"
#include "emo/tiny_model.h"

namespace fs = std::filesystem;

namespace emo::cli {

namespace {
struct BenchCli {
  std::string model;
  bool tiny = false;
  RuntimeOptions rt;
  BenchOptions opts;
  std::string format = "md";
  std::string output;
};
}  // namespace

Run add_bench(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<BenchCli>();
  auto* sub = app.add_subcommand("bench", "Measure speed and memory of each stage (mean ± stddev over repeats)");
  sub->add_option("-m,--model", o->model, "Model folder (default $EMO_MODEL_DIR)");
  sub->add_flag("--tiny", o->tiny, "Benchmark a generated tiny random model (no weights needed)");
  sub->add_option("-r,--repeat", o->opts.repeat, "Timed runs per stage")->check(CLI::PositiveNumber);
  sub->add_option("-w,--warmup", o->opts.warmup, "Untimed runs per stage first")->check(CLI::NonNegativeNumber);
  sub->add_option("--frames", o->opts.frames, "Frames per clip (0 = preset)");
  sub->add_option("--size", o->opts.size, "Frame size (0 = preset)");
  sub->add_option("--audio-seconds", o->opts.audio_seconds, "Synthetic audio length for the wav2vec2 stage");
  sub->add_option("-f,--format", o->format, "md or json")->check(CLI::IsMember({"md", "json"}));
  sub->add_option("-o,--output", o->output, "Write the report to this file instead of stdout");
  add_runtime_flags(sub, o->rt);
  return [o, &g] {
    o->rt.threads = g.threads;
    std::string dir;
    if (o->tiny) {
      dir = (fs::temp_directory_path() / ("emo_bench_model_" + std::to_string(::getpid()))).string();
      write_tiny_model(dir);
    } else {
      dir = default_model_dir(o->model);
    }
    auto spec = resolve_model(dir);
    auto report = run_bench(spec, o->rt, o->opts, [&](const Progress& p) {
      if (!g.quiet) spdlog::info("bench: {} done ({}/{})", p.stage, p.current, p.total);
    });
    if (o->tiny) fs::remove_all(dir);
    std::string text = o->format == "json" ? bench_json(report) : bench_markdown(report);
    if (o->output.empty()) {
      std::fputs(text.c_str(), stdout);
    } else {
      std::ofstream out(o->output);
      out << text;
      if (!out) throw OutputError(o->output + ": cannot write the report");
    }
    return 0;
  };
}

}  // namespace emo::cli
