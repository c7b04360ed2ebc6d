// emo batch: render every job of a manifest with one model load (docs/batch.md).
#include <atomic>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/signals.h"
#include "emo/batch.h"
#include "emo/generate.h"
#include "emo/model_spec.h"

namespace emo::cli {

namespace {

struct BatchArgs {
  std::string manifest;
  std::string format = "auto";
  std::string model;
  std::string report;
  std::string shard = "0/1";
  bool resume = false;
  bool dry_run = false;
  RuntimeOptions runtime;
  GenerateParams params;
};

batch::ManifestFormat to_format(const std::string& f) {
  if (f == "jsonl") return batch::ManifestFormat::kJsonLines;
  if (f == "csv") return batch::ManifestFormat::kCsv;
  return batch::ManifestFormat::kAuto;
}

int run(const BatchArgs& a, const GlobalOptions& g) {
  batch::Shard shard = batch::parse_shard(a.shard);
  batch::validate_params(a.params);
  // 1. The whole manifest is validated before anything else (exit 3 with every bad line).
  batch::Manifest manifest = batch::parse_manifest(a.manifest, a.params, to_format(a.format));
  // 2. The model folder is resolved (exit 4 naming every missing part); a dry run without one skips this.
  ModelSpec spec;
  bool have_model = !a.model.empty() || !a.dry_run;
  if (have_model) spec = resolve_model(default_model_dir(a.model));

  RuntimeOptions rt = a.runtime;
  rt.threads = g.threads;
  std::atomic<bool>& cancel = install_cancel_handlers();

  batch::BatchOptions opt;
  opt.resume = a.resume;
  opt.dry_run = a.dry_run;
  opt.report_path = a.report;
  opt.shard = shard;
  opt.cancel = &cancel;
  if (have_model) opt.preset = &spec.preset;
  // A bar per job on a terminal; otherwise a line at the end of each clip and every 10 s (Slurm logs).
  auto printer = std::make_shared<ProgressPrinter>(g.quiet);
  ProgressLogGuard log_guard(*printer);
  opt.progress = [printer](const Progress& p) { (*printer)(p); };
  auto factory = [&]() -> std::unique_ptr<Pipeline> {
    log_info("loading model " + spec.paths.root + " on " + rt.device + " (" + rt.dtype + ")");
    return Pipeline::load(spec, rt);
  };
  batch::BatchSummary sum = batch::run_batch(manifest, factory, opt);
  if (sum.interrupted)
    log_warn("interrupted: no partial output was left; rerun with --resume to complete the rest");
  return static_cast<int>(sum.exit_code());
}

}  // namespace

Run add_batch(CLI::App& app, GlobalOptions& g) {
  auto a = std::make_shared<BatchArgs>();
  auto* cmd = app.add_subcommand(
      "batch",
      "Render many jobs from a manifest (JSON Lines or CSV) with one model load.\n"
      "Exit codes: 0 all jobs ok (or skipped as complete), 3 malformed manifest (nothing rendered),\n"
      "4 model error, 6 some jobs failed (see --report; a job's error_code: 2 parameters, 3 input,\n"
      "5 output, 12 device out of memory, 13 device error), 130 interrupted (rerun with --resume)");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("-m,--manifest", a->manifest,
                  "Jobs, one per line: JSON Lines {\"image\",\"audio\",\"output\", overrides...} or CSV with a header row")
      ->required();
  cmd->add_option("--format", a->format, "Manifest format (auto: .csv is CSV, otherwise by content)")
      ->check(CLI::IsMember({"auto", "jsonl", "csv"}))
      ->capture_default_str();
  cmd->add_option("--model", a->model, "Model folder (default: $EMO_MODEL_DIR)");
  cmd->add_option("--report", a->report, "Write a JSON Lines report here: one line per job (status, error, seconds, frames, output)");
  cmd->add_flag("--resume", a->resume, "Skip jobs whose output is already complete (sidecar frame count checked against the video)");
  cmd->add_option("--shard", a->shard, "Render shard K of N (0 <= K < N): jobs whose manifest index mod N is K")
      ->capture_default_str();
  cmd->add_flag("--dry-run", a->dry_run, "Validate the manifest and list what would be rendered; loads no model");
  add_runtime_flags(cmd, a->runtime);
  // Defaults for every job (the same flags as `emo generate`); a manifest key of the same name (snake_case)
  // overrides them per job.
  add_generate_param_flags(cmd, a->params);
  return [a, &g] { return run(*a, g); };
}

}  // namespace emo::cli
