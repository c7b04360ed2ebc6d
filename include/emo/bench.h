// `emo bench`: the speed and memory of exactly what `emo generate` runs (Pipeline::generate on a synthetic portrait
// and a synthetic voice), per stage, as mean ± stddev over repeated runs, with FLOP counts and peak memory.
#pragma once
#include <string>
#include <vector>

#include "emo/generate.h"
#include "emo/model_spec.h"

namespace emo {

struct BenchOptions {
  int repeat = 3;            // timed generate runs
  int warmup = 1;            // untimed generate runs first
  int frames = 0;            // frames per clip (0 = the preset's clip_frames)
  int size = 0;              // frame size (0 = the preset's width)
  int steps = 0;             // denoising steps (0 = the preset's)
  std::string sampler = "ddim";  // one of kSamplerNames (GenerateParams::sampler)
  double cfg_scale = 0;      // guidance scale (0 = the preset's)
  int clips = 1;             // clips per run: the synthetic voice lasts clips x frames / fps seconds
  bool count_flops = true;   // count FLOPs by shape in the first run (a warm-up run if any, else the first timed one)
  int ops = 0;               // --ops N: per stage, the N operators with the most self time in the stage's last call
                             // (0 = off), profiled in the last warm-up run (the first timed run without warm-up)
};

struct StageTiming {
  std::string stage;
  std::vector<double> seconds;  // every call of the timed runs
  int calls_per_run = 0;
  double flops_per_call = 0;    // 0 when not counted
  // Stages called once per clip, with more than one clip per run: the first clip apart from the later ones (emo's
  // first clip VAE-encodes and runs the ReferenceNet on the source alone; later clips add the motion frames).
  bool split_by_clip = false;
  std::vector<double> first_clip_seconds, later_clip_seconds;
  double first_clip_flops = 0, later_clip_flops = 0;  // per call; 0 when not counted
  std::vector<OpStat> ops;      // --ops: the top operators of this stage's last call in the profiled run
  double mean() const;
  double stddev() const;        // sample standard deviation (0 for one call)
  double tflops() const;        // achieved: flops_per_call / mean seconds (0 when not counted)
};

struct BenchReport {
  std::string model_dir, device, device_name, dtype, torch_version, attention, host_memory;  // attention: "sdpa" or "math"
  std::string cpu_linear;  // "onednn" or "aten": what the CPU's fp32 linear layers run
  std::string sampler;
  std::string vae_layout;  // "nhwc" or "nchw", as --vae-layout resolved
  int threads = 0, frames = 0, size = 0, steps = 0, clips = 0, runs = 0;
  double cfg_scale = 0;
  double load_seconds = 0;
  std::vector<StageTiming> stages;
  std::vector<double> run_seconds;         // whole generate call per timed run
  int frames_per_run = 0;                  // output frames
  double peak_rss_after_load_mib = 0;
  double peak_rss_mib = 0;
  double peak_device_mib = -1;             // CUDA: peak allocated bytes during the timed runs (-1: not a CUDA run)
  double flops_per_run = 0;
  struct AttentionShape {                   // one row per attention shape of the counted run
    std::string q, k, dtype, kernel;        // "[B, H, L, D]"; kernel: libtorch's SDPA choice or "emo_math"
    int64_t calls = 0;                      // in the counted run
  };
  std::vector<AttentionShape> attention_shapes;
  int ops_top = 0;                          // --ops N (0: no operator tables)
  std::string ops_run;                      // which run was profiled: "warm-up run 1" or "timed run 1"
  double seconds_per_frame() const;        // mean run seconds / frames_per_run
  double seconds_per_frame_stddev() const;
};

BenchReport run_bench(const ModelSpec& spec, const RuntimeOptions& runtime, const BenchOptions& options,
                      const ProgressCallback& progress = {});

std::string bench_markdown(const BenchReport& r);
std::string bench_json(const BenchReport& r);

}  // namespace emo
