// hallo scripts/inference.py inference_process(), section 5: the clip loop. Clips of F frames chained by M motion
// frames (the last M decoded frames of the previous clip), one CPU noise generator seeded once for all clips, the
// video trimmed to the audio's length. HalloPipeline::generate, `emo bench` and the golden tests all run this.
#pragma once
#include <torch/torch.h>

#include <array>
#include <functional>
#include <optional>
#include <vector>

#include "pipeline/networks.h"

namespace emo::pipeline {

// Per-job conditioning. Every tensor is placed on the networks' device and dtype once per job (Networks::place),
// except audio_emb, which may stay on the host: the loop builds and places one clip's windows at a time.
struct JobInputs {
  torch::Tensor source_pixels;    // [1, 3, S, S] in [-1, 1]
  torch::Tensor face_tokens;      // [2, T, D] = face_tokens(nets, face_emb)
  torch::Tensor face_locator;     // [1, C0, F, h, w] = face_locator_features(nets, face_region, F)
  std::array<torch::Tensor, 4> full_mask, face_mask, lip_mask;  // per level [1, h_l * w_l]
  torch::Tensor audio_emb;        // [clips * F, L, H] wav2vec2 features of the padded sequence (host or device);
                                  // the loop builds and places one clip's windows at a time
  int64_t audio_length = 0;       // frames of real audio: the video is trimmed to this
};

struct LoopSettings {
  int64_t clip_frames = 16;       // F
  int64_t motion_frames = 2;      // M
  int64_t steps = 40;
  sampling::SamplerKind sampler = sampling::SamplerKind::kDDIM;
  double guidance_scale = 3.5;
  std::array<double, 3> motion_scale{1.0, 1.0, 1.0};
  std::optional<double> speed;    // EMO speed layers: head speed (degrees/frame) for every frame; none: no speed input
  bool zero_first_motion_frames = false;  // EMO: clip 0's motion banks are zero maps
  int64_t seed = 42;              // one CPU generator, seeded once, one randn per clip (in the run's dtype)
  int64_t decode_chunk = 4;       // frames per VAE decode call
  // Tests: given noise per clip ([1, 4, F, h, w], any device/dtype; placed) instead of drawing it from the seed.
  std::vector<torch::Tensor> initial_latents;
  StageClock* clock = nullptr;    // benchmarks: per-stage device time; the sink's time is its own stage "frames_out"
};

// Decoded frames of one clip in video order: frames01 [n, 3, S, S] float32 in [0, 1] on the networks' device;
// `first` is the index in the whole video of frames01[0]. Only frames inside the audio (index < audio_length) come.
using FrameSink = std::function<void(int64_t first, const torch::Tensor& frames01)>;
// stage "denoise" (cur = step) or "decode" (cur = frames decoded of this clip); clip counts from 1. May throw to cancel.
using LoopProgress = std::function<void(const char* stage, int cur, int total, int clip, int clips)>;

struct LoopTrace {  // optional intermediates (golden tests)
  std::vector<ClipTrace> clips;
  std::vector<torch::Tensor> motion_frames;    // per clip [M, 3, S, S] in [-1, 1] (what follows the source image)
  std::vector<torch::Tensor> initial_latents;  // per clip [1, 4, F, h, w]
  std::vector<torch::Tensor> videos;           // per clip [F, 3, S, S] in [0, 1], untrimmed
};

struct LoopStats {
  int64_t clips = 0;
  int64_t frames = 0;        // frames handed to the sink
  double denoise_s = 0;      // ReferenceNet + UNet steps
  double decode_s = 0;       // VAE decode, including the sink's time (subtract what the sink measures itself)
};

// Number of clips for a padded audio feature sequence of `frames` frames.
inline int64_t clip_count(int64_t frames, int64_t clip_frames) { return frames / clip_frames; }

LoopStats run_clips(Networks& nets, const nlohmann::json& scheduler_kwargs, const JobInputs& job,
                    const LoopSettings& s, const FrameSink& sink, const LoopProgress& progress = {},
                    LoopTrace* trace = nullptr);

}  // namespace emo::pipeline
