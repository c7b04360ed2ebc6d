// Bulk rendering: a manifest of jobs (JSON Lines or CSV) rendered with one model load, with per-job
// failure isolation, a JSON Lines report, --resume (completed outputs are checked, then skipped),
// deterministic sharding (--shard K/N) and clean cancellation (SIGINT/SIGTERM). `emo batch` is a thin
// layer over this header; docs/batch.md describes the manifest formats and the report.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "emo/generate.h"

namespace emo::batch {

// ---- Manifest -------------------------------------------------------------------------------------

enum class ManifestFormat { kAuto, kJsonLines, kCsv };

struct Job {
  size_t index = 0;        // 0-based position among the manifest's jobs (the shard key)
  int line = 0;            // 1-based line in the manifest file
  GenerateRequest request; // paths resolved against the manifest's folder; params = defaults + overrides
};

struct Manifest {
  std::string path;
  ManifestFormat format = ManifestFormat::kJsonLines;
  std::vector<Job> jobs;
};

// Manifest keys / CSV columns that override a GenerateParams field ("cfg-scale" is accepted for "cfg_scale").
const std::vector<std::string>& override_keys();

// Sets one GenerateParams field from a manifest value given as text (CSV cell, CLI). Throws UsageError with
// a message naming the key and the expected type/range; unknown keys are rejected.
void apply_override(GenerateParams& params, const std::string& key, const std::string& text);
// emo::validate(params): the model-independent ranges (docs/limits.md). Throws UsageError listing every bad value.
void validate_params(const GenerateParams& params);

// Parses a whole manifest and validates every line before returning: each job needs image, audio and output
// (.mp4 or .mkv); overrides must name GenerateParams fields with values of the right type and range; two jobs
// may not share an output (also not through different spellings of one path). Blank lines and lines starting
// with '#' are ignored. Every malformed line is reported, with its line number, in one InputError.
// Relative paths are resolved against the manifest's folder. Format kAuto: .csv -> CSV, .jsonl/.ndjson/.json
// -> JSON Lines, otherwise by the first non-blank character ('{' -> JSON Lines).
Manifest parse_manifest(const std::string& path, const GenerateParams& defaults,
                        ManifestFormat format = ManifestFormat::kAuto);
// Same, from text; `name` is used in messages and `base_dir` resolves relative paths.
Manifest parse_manifest_text(const std::string& text, const std::string& name, const std::string& base_dir,
                             const GenerateParams& defaults, ManifestFormat format = ManifestFormat::kAuto);

// ---- Sharding -------------------------------------------------------------------------------------

// --shard K/N: shard K (0-based, 0 <= K < N) of N. The default {0, 1} is the whole manifest.
struct Shard {
  int index = 0;
  int count = 1;
  std::string str() const { return std::to_string(index) + "/" + std::to_string(count); }
};
Shard parse_shard(const std::string& text);  // "K/N"; throws UsageError
// Job i (manifest order) belongs to shard i mod N: N shards are pairwise disjoint, cover the manifest, and
// differ in size by at most one. Returns the shard's jobs in manifest order.
std::vector<Job> select_shard(const std::vector<Job>& jobs, const Shard& shard);

// ---- Output completeness (--resume) ---------------------------------------------------------------

// The sidecar `generate` writes next to an output: "clip.mp4" -> "clip.json" (src/pipeline/sidecar.h).
std::string sidecar_path(const std::string& output);

// Counts the frames of a finished video file (nullopt: readable but uncountable, accepted on the sidecar's word);
// throws (any std::exception) when the file is unreadable or truncated. Swappable for tests with fake outputs.
using FrameProbe = std::function<std::optional<int64_t>(const std::string& path)>;
// The default probe: emo::video::probe's exact packet count of the video stream (throws if it has none).
std::optional<int64_t> default_frame_probe(const std::string& path);

struct OutputCheck {
  bool complete = false;
  int64_t frames = -1;   // from the sidecar when complete
  std::string reason;    // why it is not complete ("" when complete)
};
// An output is complete when it is a non-empty regular file, its sidecar parses and records "frames" > 0,
// and the probe (default_frame_probe when empty) counts exactly that many frames. With `expected`, a sidecar
// that records another image, audio or seed than the job's marks the output stale (not complete).
OutputCheck check_output(const std::string& output, const FrameProbe& probe = {},
                         const GenerateRequest* expected = nullptr);

// ---- Running --------------------------------------------------------------------------------------

enum class JobStatus { kOk, kFailed, kSkipped, kCancelled, kPending };
const char* to_string(JobStatus s);  // "ok", "failed", "skipped", "cancelled", "pending"

struct JobResult {
  size_t index = 0;
  int line = 0;
  std::string image, audio, output;
  JobStatus status = JobStatus::kPending;
  std::string error;       // "" unless failed/cancelled
  int error_code = 0;      // the emo::ExitCode the error maps to (0 unless failed/cancelled)
  double seconds = 0;      // wall time spent on the job by this run
  int64_t frames = 0;      // rendered (ok) or recorded in the sidecar (skipped)
};

struct BatchOptions {
  bool resume = false;            // skip jobs whose output check_output() finds complete
  bool dry_run = false;           // plan only: no model load, nothing rendered
  std::string report_path;        // JSON Lines report, one line per job; "" = none
  Shard shard;
  const std::atomic<bool>* cancel = nullptr;  // set by the signal handler; checked between and inside jobs
  FrameProbe probe;               // for check_output; empty = default_frame_probe
  ProgressCallback progress;      // forwarded to Pipeline::generate
  // The model's preset (from resolve_model): each job's parameters are checked against it with emo::validate
  // before the model is loaded and before the job renders; a job that fails is reported failed (error_code 2)
  // and the others run. nullptr (e.g. a dry run without a model) = the model-independent checks only.
  const ModelPreset* preset = nullptr;
};

struct BatchSummary {
  std::vector<JobResult> results;  // the shard's jobs, in manifest order
  size_t ok = 0, failed = 0, skipped = 0, cancelled = 0, pending = 0;
  bool interrupted = false;
  bool model_loaded = false;
  ExitCode exit_code() const;      // kInterrupted if interrupted, else kPartial if any failed, else kOk
};

using PipelineFactory = std::function<std::unique_ptr<Pipeline>()>;

// Runs the shard's jobs. The pipeline is created (once) just before the first job that needs rendering, so a
// fully resumed batch or a dry run never loads the model; a model that fails to load is fatal (the remaining
// jobs are reported failed and the ModelError is rethrown). A job whose parameters the preset rejects, whose inputs
// are missing, or whose generate throws, is reported failed and the batch goes on. On cancellation the running job's pipeline removes its
// temporary file, the remaining jobs are reported "cancelled", and the summary says interrupted.
// The report (if any) is truncated at the start and gets one flushed line per finished job.
// Throws OutputError when the report cannot be written.
BatchSummary run_batch(const Manifest& manifest, const PipelineFactory& make_pipeline, const BatchOptions& options);

// One report line (JSON object, no newline).
std::string report_line(const JobResult& r, const Shard& shard);

}  // namespace emo::batch
