// Batch job runner: one pipeline for all jobs, per-job failure isolation, JSON Lines report, --resume,
// cancellation, and the SIGINT/SIGTERM handler that drives it.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "emo/batch.h"

namespace fs = std::filesystem;

namespace emo::batch {

const char* to_string(JobStatus s) {
  switch (s) {
    case JobStatus::kOk: return "ok";
    case JobStatus::kFailed: return "failed";
    case JobStatus::kSkipped: return "skipped";
    case JobStatus::kCancelled: return "cancelled";
    case JobStatus::kPending: return "pending";
  }
  return "?";
}

ExitCode BatchSummary::exit_code() const {
  if (interrupted) return ExitCode::kInterrupted;
  if (failed > 0) return ExitCode::kPartial;
  return ExitCode::kOk;
}

std::string report_line(const JobResult& r, const Shard& shard) {
  nlohmann::json j;
  j["index"] = r.index;
  j["line"] = r.line;
  j["shard"] = shard.str();
  j["status"] = to_string(r.status);
  j["output"] = r.output;
  j["image"] = r.image;
  j["audio"] = r.audio;
  j["frames"] = r.frames;
  j["seconds"] = std::round(r.seconds * 1000.0) / 1000.0;
  j["error"] = r.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.error);
  if (r.error_code) j["error_code"] = r.error_code;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

class Report {
 public:
  Report(const std::string& path, Shard shard) : shard_(shard) {
    if (path.empty()) return;
    f_ = std::fopen(path.c_str(), "w");
    if (!f_) throw OutputError(path + ": cannot write the report: " + std::strerror(errno));
    path_ = path;
  }
  ~Report() {
    if (f_) std::fclose(f_);
  }
  void add(const JobResult& r) {
    if (!f_) return;
    std::string s = report_line(r, shard_) + "\n";
    if (std::fwrite(s.data(), 1, s.size(), f_) != s.size() || std::fflush(f_) != 0)
      log(LogLevel::kError, path_ + ": writing the report failed: " + std::strerror(errno));
  }

 private:
  Shard shard_;
  std::string path_;
  std::FILE* f_ = nullptr;
};

bool cancelled(const std::atomic<bool>* c) { return c && c->load(); }

void count(BatchSummary& s, JobStatus st) {
  switch (st) {
    case JobStatus::kOk: ++s.ok; break;
    case JobStatus::kFailed: ++s.failed; break;
    case JobStatus::kSkipped: ++s.skipped; break;
    case JobStatus::kCancelled: ++s.cancelled; break;
    case JobStatus::kPending: ++s.pending; break;
  }
}

// Quick input checks so a missing file fails its job without touching the pipeline.
std::string missing_input(const GenerateRequest& rq) {
  std::error_code ec;
  if (!fs::is_regular_file(rq.image, ec)) return rq.image + ": image not found";
  if (!fs::is_regular_file(rq.audio, ec)) return rq.audio + ": audio not found";
  return "";
}

}  // namespace

BatchSummary run_batch(const Manifest& manifest, const PipelineFactory& make_pipeline, const BatchOptions& opt) {
  using clock = std::chrono::steady_clock;
  std::vector<Job> jobs = select_shard(manifest.jobs, opt.shard);
  BatchSummary sum;
  Report report(opt.report_path, opt.shard);
  std::unique_ptr<Pipeline> pipeline;
  const size_t n = jobs.size();
  const std::string shard_note = opt.shard.count > 1 ? " (shard " + opt.shard.str() + " of " +
                                                           std::to_string(manifest.jobs.size()) + " jobs)" : "";
  log_info(manifest.path + ": " + std::to_string(n) + " job" + (n == 1 ? "" : "s") + shard_note +
           (opt.dry_run ? ", dry run" : ""));

  for (size_t i = 0; i < n; ++i) {
    const Job& job = jobs[i];
    const GenerateRequest& rq = job.request;
    JobResult r;
    r.index = job.index;
    r.line = job.line;
    r.image = rq.image;
    r.audio = rq.audio;
    r.output = rq.output;
    const std::string tag = "[" + std::to_string(i + 1) + "/" + std::to_string(n) + "] " + rq.output;
    auto finish = [&](JobResult& res) {
      count(sum, res.status);
      report.add(res);
      sum.results.push_back(res);
    };

    if (sum.interrupted || cancelled(opt.cancel)) {
      sum.interrupted = true;
      r.status = JobStatus::kCancelled;
      r.error = "interrupted before the job started";
      r.error_code = static_cast<int>(ExitCode::kInterrupted);
      finish(r);
      continue;
    }

    auto t0 = clock::now();
    if (opt.resume) {
      OutputCheck chk = check_output(rq.output, opt.probe, &rq);
      if (chk.complete) {
        r.status = JobStatus::kSkipped;
        r.frames = chk.frames;
        r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
        log_info(tag + ": complete (" + std::to_string(chk.frames) + " frames), skipped");
        finish(r);
        continue;
      }
      if (chk.reason != "no output yet") log_info(tag + ": incomplete (" + chk.reason + "), rendering again");
    }

    // Parameters against the model's preset, before the model is loaded and before any work on this job.
    try {
      if (opt.preset) emo::validate(rq.params, *opt.preset);
      else emo::validate(rq.params);
    } catch (const UsageError& e) {
      r.status = JobStatus::kFailed;
      r.error = e.what();
      r.error_code = static_cast<int>(ExitCode::kUsage);
      log(LogLevel::kError, tag + ": failed: " + r.error);
      finish(r);
      continue;
    }

    std::string missing = missing_input(rq);
    if (!missing.empty()) {
      r.status = JobStatus::kFailed;
      r.error = missing;
      r.error_code = static_cast<int>(ExitCode::kInput);
      log(LogLevel::kError, tag + ": failed: " + missing);
      finish(r);
      continue;
    }
    if (opt.dry_run) {
      r.status = JobStatus::kPending;
      log_info(tag + ": would render " + rq.image + " + " + rq.audio);
      finish(r);
      continue;
    }

    if (!pipeline) {
      try {
        pipeline = make_pipeline();
        if (!pipeline) throw ModelError("the pipeline factory returned nothing");
        sum.model_loaded = true;
      } catch (const std::exception& e) {
        const auto* err = dynamic_cast<const Error*>(&e);
        // Fatal for the whole batch: report every remaining job, then let the caller exit with the model's code.
        for (size_t k = i; k < n; ++k) {
          JobResult f;
          f.index = jobs[k].index;
          f.line = jobs[k].line;
          f.image = jobs[k].request.image;
          f.audio = jobs[k].request.audio;
          f.output = jobs[k].request.output;
          f.status = JobStatus::kFailed;
          f.error = std::string("model not loaded: ") + e.what();
          f.error_code = static_cast<int>(err ? err->code() : ExitCode::kModel);
          finish(f);
        }
        throw;
      }
    }

    log_info(tag + ": rendering " + rq.image + " + " + rq.audio);
    try {
      std::error_code ec;
      fs::path parent = fs::path(rq.output).parent_path();
      if (!parent.empty()) fs::create_directories(parent, ec);
      if (ec) throw OutputError(rq.output + ": cannot create folder " + parent.string() + ": " + ec.message());
      GenerateResult res = pipeline->generate(rq, opt.progress, opt.cancel);
      r.status = JobStatus::kOk;
      r.frames = res.frames;
      r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.1f", r.seconds);
      log_info(tag + ": ok, " + std::to_string(res.frames) + " frames in " + buf + " s");
    } catch (const CancelledError& e) {
      sum.interrupted = true;
      r.status = JobStatus::kCancelled;
      r.error = e.what();
      r.error_code = static_cast<int>(ExitCode::kInterrupted);
      log_warn(tag + ": cancelled");
    } catch (const Error& e) {
      r.status = JobStatus::kFailed;
      r.error = e.what();
      r.error_code = static_cast<int>(e.code());
      log(LogLevel::kError, tag + ": failed: " + e.what());
    } catch (const std::exception& e) {
      r.status = JobStatus::kFailed;
      r.error = std::string("internal error: ") + e.what();
      r.error_code = static_cast<int>(ExitCode::kFailure);
      log(LogLevel::kError, tag + ": failed: " + r.error);
    }
    if (r.status != JobStatus::kOk) r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    // A cancellation that arrived while the job was finishing still stops the batch after it.
    if (r.status != JobStatus::kCancelled && cancelled(opt.cancel)) sum.interrupted = true;
    finish(r);
  }

  std::string line = std::to_string(sum.ok) + " ok, " + std::to_string(sum.failed) + " failed, " +
                     std::to_string(sum.skipped) + " skipped";
  if (sum.cancelled) line += ", " + std::to_string(sum.cancelled) + " cancelled";
  if (sum.pending) line += ", " + std::to_string(sum.pending) + " to render";
  if (sum.interrupted) line += " (interrupted: rerun with --resume to complete the rest)";
  (sum.failed || sum.interrupted ? log_warn : log_info)(manifest.path + ": " + line);
  return sum;
}

}  // namespace emo::batch
