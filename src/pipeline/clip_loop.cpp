#include "pipeline/clip_loop.h"

#include <chrono>

#include "emo/audio.h"
#include "emo/compat.h"
#include "emo/error.h"
#include "pipeline/stage_clock.h"

namespace emo::pipeline {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

LoopStats run_clips(Networks& nets, const nlohmann::json& scheduler_kwargs, const JobInputs& job,
                    const LoopSettings& s, const FrameSink& sink, const LoopProgress& progress, LoopTrace* trace) {
  const int64_t F = s.clip_frames, M = s.motion_frames;
  if (F <= 0 || M < 0) throw UsageError("clip loop: clip_frames must be > 0 and motion_frames >= 0");
  check_placed(nets, job.source_pixels, "source_pixels");
  const int64_t latent_h = job.source_pixels.size(-2) / nets.vae->downscale();      // hallo: height // vae_scale_factor
  const int64_t latent_w = job.source_pixels.size(-1) / nets.vae->downscale();
  LoopStats st;
  st.clips = clip_count(job.audio_emb.size(0), F);
  // hallo: generator = torch.manual_seed(seed) once; diffusers' prepare_latents draws randn on the CPU generator in
  // the pipeline's dtype and moves it to the device.
  at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(s.seed));
  const auto noise_opts = torch::TensorOptions().dtype(nets.dtype);

  torch::Tensor motion = job.source_pixels.repeat({M, 1, 1, 1});                   // [M, 3, S, S] clip 0: the source
  ReferenceCache reference_cache;  // the source image's latent and ReferenceNet rows, for every clip of this job
  for (int64_t c = 0; c < st.clips; ++c) {
    ClipInputs in;
    in.reference_cache = &reference_cache;
    in.ref_pixels = torch::cat({job.source_pixels, motion}, 0);                     // [1+M, 3, S, S]
    in.zero_motion_banks = c == 0 && s.zero_first_motion_frames;
    in.face_tokens = job.face_tokens;
    in.face_locator = job.face_locator;
    in.full_mask = job.full_mask;
    in.face_mask = job.face_mask;
    in.lip_mask = job.lip_mask;
    in.audio_windows = nets.place(audio::audio_windows(job.audio_emb, 2, c * F, (c + 1) * F));  // [F, 5, L, H]
    in.initial_latents = nets.place(c < static_cast<int64_t>(s.initial_latents.size())
                                        ? s.initial_latents[c]
                                        : torch::randn({1, 4, F, latent_h, latent_w}, gen, noise_opts));  // [1, 4, F, h, w]
    in.motion_scale = s.motion_scale;
    in.clock = s.clock;
    in.guidance_scale = s.guidance_scale;
    in.steps = s.steps;
    in.sampler = s.sampler;
    if (s.speed) in.head_speed = nets.place(torch::full({1, M + F}, *s.speed, torch::kFloat));  // [1, M+F]
    if (trace) {
      trace->motion_frames.push_back(motion);
      trace->initial_latents.push_back(in.initial_latents);
      trace->clips.emplace_back();
    }

    auto td = Clock::now();
    auto latents = denoise_clip(nets, scheduler_kwargs, in, [&](int step, int steps) {
      if (progress) progress("denoise", step, steps, static_cast<int>(c + 1), static_cast<int>(st.clips));
    }, trace ? &trace->clips.back() : nullptr);                                     // [1, 4, F, h, w]
    st.denoise_s += since(td);

    // Decode in chunks; every frame in [0, 1] float32 (hallo decode_latents), the last M kept for the next clip.
    auto tdc = Clock::now();
    std::vector<torch::Tensor> tail, all;
    StageClock::Scope decode_scope(s.clock, "vae_decode");
    nets.vae->decode_latents(latents[0].permute({1, 0, 2, 3}), s.decode_chunk,     // [F, 4, h, w]
                             [&](int64_t first, const torch::Tensor& imgs) {
      auto frames01 = (imgs.to(torch::kFloat) / 2 + 0.5).clamp(0, 1);              // [n, 3, S, S]
      const int64_t n = frames01.size(0);
      if (first + n > F - M) tail.push_back(frames01.slice(0, std::max<int64_t>(0, F - M - first)));
      if (trace) all.push_back(frames01);
      const int64_t global = c * F + first;
      const int64_t keep = std::min<int64_t>(n, job.audio_length - global);       // trimmed past the audio
      if (keep > 0 && sink) {
        StageClock::Scope sc(s.clock, "frames_out");
        sink(global, keep == n ? frames01 : frames01.slice(0, 0, keep));
        st.frames += keep;
      }
      if (progress) progress("decode", static_cast<int>(first + n), static_cast<int>(F), static_cast<int>(c + 1),
                             static_cast<int>(st.clips));
    });
    st.decode_s += since(tdc);
    if (trace) trace->videos.push_back(torch::cat(all, 0));
    // hallo: motion = videos[-M:] * 2 - 1, back to the pipeline's dtype; stays on the device.
    if (M > 0) motion = nets.place(torch::cat(tail, 0) * 2 - 1);                    // [M, 3, S, S]
    compat::release_free_host_memory();  // once per clip: trims the heap only when RSS grew (HeapTrimRule)
  }
  return st;
}

}  // namespace emo::pipeline
