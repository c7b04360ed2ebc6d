// Per-stage wall time of the generate path (the code `emo generate` runs), for `emo bench` and `--profile`.
// A clock synchronises the device at stage boundaries, so the times are the device's; without a clock (every normal
// run) the scopes below cost one null check and synchronise nothing. Nested scopes: a stage's time excludes the
// time of the stages opened inside it (vae_decode excludes frames_out). With count_flops, each outermost scope is
// also run under libtorch's profiler (matmul and convolution FLOPs by shape) plus emo's attention counter.
#pragma once
#include <c10/core/Device.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace emo::pipeline {

class StageClock {
 public:
  struct Op {
    int64_t calls = 0;
    double self_s = 0, total_s = 0;
  };
  struct Stage {
    std::vector<double> seconds;     // one entry per call
    double flops = 0;                // summed over the counted calls
    int counted_calls = 0;
    std::vector<double> call_flops;  // one entry per counted call
    std::map<std::string, Op> ops;   // with record_ops: by operator name, of the stage's last call
  };

  // count_flops: each outermost scope runs under libtorch's profiler and counts its FLOPs; record_ops: the same
  // profile also keeps each operator's self and total CPU time in the stage's last call (implies the profiler).
  explicit StageClock(c10::Device device, bool count_flops = false, bool record_ops = false);
  ~StageClock();

  // Starts counting FLOPs for the outermost scopes from now on (bench: one warm-up run) or stops.
  void set_count_flops(bool on) { count_flops_ = on; }
  void reset() { stages_.clear(); }
  const std::map<std::string, Stage>& stages() const { return stages_; }

  class Scope {
   public:
    Scope(StageClock* clock, const char* name);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    StageClock* clock_;
    const char* name_;
    std::chrono::steady_clock::time_point t0_;
    bool profiling_ = false;
  };

 private:
  friend class Scope;
  void sync() const;
  c10::Device device_;
  bool count_flops_ = false;
  bool record_ops_ = false;
  std::map<std::string, Stage> stages_;
  std::vector<double> child_s_;  // per open scope: time spent in the scopes nested inside it
};

}  // namespace emo::pipeline
