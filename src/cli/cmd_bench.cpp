// emo bench: per-stage timings (mean ± stddev), FLOPs and peak memory of the generate path; --tiny benchmarks a
// generated tiny model.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "emo/bench.h"
#include "emo/error.h"
#include "emo/sampler_names.h"
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
  auto* sub = app.add_subcommand("bench", "Measure speed, FLOPs and memory of each stage of `generate` (mean ± stddev over repeats)");
  sub->add_option("-m,--model", o->model, "Model folder (default $EMO_MODEL_DIR)");
  sub->add_flag("--tiny", o->tiny, "Benchmark a generated tiny random model (no weights needed)");
  sub->add_option("-r,--repeat", o->opts.repeat, "Timed generate runs")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("-w,--warmup", o->opts.warmup, "Untimed generate runs first")->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--frames", o->opts.frames, "Frames per clip (0 = preset)")->capture_default_str();
  sub->add_option("--size", o->opts.size, "Frame size (0 = preset)")->capture_default_str();
  sub->add_option("--steps", o->opts.steps, "Denoising steps (0 = preset)")->capture_default_str();
  sub->add_option("--sampler", o->opts.sampler, sampler_choices())
      ->check(CLI::IsMember(std::vector<std::string>(kSamplerNames.begin(), kSamplerNames.end())))
      ->capture_default_str();
  sub->add_option("--cfg", o->opts.cfg_scale, "Guidance scale (0 = preset)")->capture_default_str();
  sub->add_option("--clips", o->opts.clips, "Clips per run (the synthetic voice lasts clips x frames / fps)")->capture_default_str();
  sub->add_flag("!--no-flops", o->opts.count_flops, "Do not count FLOPs (the first warm-up run counts them by shape)");
  sub->add_option("--ops", o->opts.ops,
                  "Per stage, list the N operators with the most CPU self time in its last call (libtorch's "
                  "profiler, in the last warm-up run; use --steps 2+ for a warm UNet step; 0 = off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
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
