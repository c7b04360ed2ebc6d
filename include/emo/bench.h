// `emo bench`: per-stage speed and memory of a model folder (mean ± stddev over repeats).
#pragma once
#include <string>
#include <vector>

#include "emo/generate.h"
#include "emo/model_spec.h"

namespace emo {

struct BenchOptions {
  int repeat = 3;
  int warmup = 1;
  int frames = 0;            // frames per clip (0 = the preset's clip_frames)
  int size = 0;              // frame size (0 = the preset's width)
  double audio_seconds = 4;  // length of the synthetic audio for the wav2vec2 stage
};

struct StageTiming {
  std::string stage;
  std::string unit;          // what one run is, e.g. "1 UNet3D step (CFG batch of 2 x 16 frames)"
  std::vector<double> seconds;
  double mean() const;
  double stddev() const;     // sample standard deviation (0 for one run)
};

struct BenchReport {
  std::string model_dir, device, dtype, torch_version, attention;  // attention: "sdpa" or "math"
  int threads = 0, frames = 0, size = 0, steps = 0;
  double load_seconds = 0;
  std::vector<StageTiming> stages;
  double peak_rss_mib = 0;
  // Estimated seconds per generated second of video = clips per video-second x (steps x unet + ref + decode).
  double seconds_per_video_second = 0;
};

BenchReport run_bench(const ModelSpec& spec, const RuntimeOptions& runtime, const BenchOptions& options,
                      const ProgressCallback& progress = {});

std::string bench_markdown(const BenchReport& r);
std::string bench_json(const BenchReport& r);

}  // namespace emo
