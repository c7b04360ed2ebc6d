// The networks of one model folder, loaded once, and the generation of one clip from tensors
// (hallo.animate.face_animate.FaceAnimatePipeline.__call__ for one clip of scripts/inference.py).
#pragma once
#include <torch/torch.h>

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "emo/model_spec.h"
#include "emo/models.h"
#include "emo/scheduler.h"
#include "emo/state_dict.h"
#include "models/audio_proj.h"
#include "models/face_locator.h"
#include "models/image_proj.h"
#include "models/unet3d/unet_3d.h"

namespace emo::pipeline {

class StageClock;

// Configs of hallo's plain modules, read from the tensor shapes in net.pth (hallo builds them with fixed
// constructor arguments; reading shapes makes tiny test models and other widths work too).
models::FaceLocatorConfig detect_face_locator(const io::StateDict& sd, const std::string& prefix);
models::ImageProjModelConfig detect_image_proj(const io::StateDict& sd, const std::string& prefix);
models::AudioProjConfig detect_audio_proj(const io::StateDict& sd, const std::string& prefix, int64_t window);

struct Networks {
  std::optional<ReferenceNet> reference;
  models::UNet3DConditionModel unet{nullptr};
  models::FaceLocator face_locator{nullptr};
  models::ImageProjModel image_proj{nullptr};
  models::AudioProjModel audio_proj{nullptr};
  std::optional<Vae> vae;
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat;

  // The one crossing from the host to the networks: a per-job input moved to the networks' device, floating-point
  // tensors cast to their dtype (integer tensors keep theirs). Everything handed to the functions below goes
  // through here (or was computed by the networks); check_placement() enforces it at the boundary.
  torch::Tensor place(const torch::Tensor& t) const;

  // Loads reference_unet./denoising_unet./face_locator./imageproj./audioproj. from `net` (state dict of net.pth),
  // the VAE from vae_dir; strict. `vae_override` (tests) replaces the VAE folder with a state dict + config.
  static std::unique_ptr<Networks> load(const ModelSpec& spec, const io::StateDict& net, torch::Device device,
                                        torch::ScalarType dtype);

  // The same from explicit parts (tests, other layouts): `unet_config_path` is the SD unet config.json both
  // UNets are built from, `net` holds the five prefixed modules, `vae` is already loaded.
  static std::unique_ptr<Networks> build(const std::string& unet_config_path, const nlohmann::json& unet_config,
                                         const nlohmann::json& unet_kwargs, const io::StateDict& net,
                                         const std::string& net_source, Vae vae, int64_t audio_hidden,
                                         torch::Device device, torch::ScalarType dtype);
};

// AutoencoderKL from a diffusers config and a state dict (legacy attention names accepted).
Vae vae_from_parts(const nlohmann::json& config, const io::StateDict& weights, const std::string& source);

// What is the same in every clip of one job (run_clips keeps one per job): the source image's VAE latent and its
// ReferenceNet bank rows. Every row of the VAE encoder and of the ReferenceNet's write pass is a function of its
// own image (and, in the ReferenceNet, of its own token row) only, so hallo's per-clip recomputation of the
// source image's rows gives what this cache holds. Keyed by the source pixels, the preprocessing flag and the
// tokens it was computed from; anything else recomputes and replaces it.
struct ReferenceCache {
  torch::Tensor source;                  // [3, H, W] the source pixels as handed in (before preprocessing)
  bool mapped = false;                   // preprocessing applied x -> 2x - 1 (the whole batch was >= 0)
  torch::Tensor latent;                  // [1, 4, h, w] the source image's latent
  torch::Tensor tokens;                  // [halves, T, D] the tokens of source_rows
  // source_rows[t]: per bank [1, L, C], the source image with token row t; empty until a clip computed it.
  std::vector<std::vector<torch::Tensor>> source_rows;
};

// Everything one clip needs (CFG batch layouts are built inside, [uncond, cond] as hallo does).
// Every tensor must already be on the networks' device and dtype (Networks::place); denoise_clip checks.
struct ClipInputs {
  torch::Tensor ref_pixels;      // [1 + M, 3, H, W] in [-1, 1]: source image, then the M motion frames
  torch::Tensor face_tokens;     // [2, T, D] = cat([image_proj(0), image_proj(face_emb)])
  torch::Tensor face_locator;    // [1, C0, F, h, w] = face_locator(face region) (cond half)
  std::array<torch::Tensor, 4> full_mask, face_mask, lip_mask;  // per level [1, h_l * w_l]
  torch::Tensor audio_windows;   // [F, window, layers, hidden] for this clip's frames
  torch::Tensor initial_latents; // [1, 4, F, h, w]
  std::array<double, 3> motion_scale{1.0, 1.0, 1.0};
  double guidance_scale = 3.5;
  int64_t steps = 40;
  sampling::SamplerKind sampler = sampling::SamplerKind::kDDIM;  // from the same scheduler kwargs
  bool zero_motion_banks = false;  // EMO's first clip: motion frames are zero maps
  torch::Tensor head_speed;        // [1, M + F] degrees/frame (EMO speed layers) or undefined
  StageClock* clock = nullptr;     // benchmarks: per-stage device time (pipeline/stage_clock.h); none: no sync
  ReferenceCache* reference_cache = nullptr;  // per job (run_clips); none: only the clip's own duplicates are shared
};

struct ClipTrace {  // optional intermediates (golden tests)
  torch::Tensor ref_latents, audio_tokens;
  std::vector<int64_t> timesteps;
  std::vector<torch::Tensor> unet_out, latents;
};

using StepCallback = std::function<void(int step, int steps)>;  // may throw to cancel

// Device guard at the networks' boundary: throws emo::Error naming the first tensor of `in` that is not on
// nets.device or (floating point) not in nets.dtype. Metadata only (no synchronisation); denoise_clip calls it.
void check_placement(const Networks& nets, const ClipInputs& in);
// The same for one tensor; `what` names it in the message.
void check_placed(const Networks& nets, const torch::Tensor& t, const char* what);

// The clip's reference latents and ReferenceNet banks, as hallo computes them: VAE-encode [source, motion frames]
// (ref_image_processor.preprocess maps x -> 2x - 1 again when the whole batch is >= 0, a bright image), then the
// ReferenceNet write pass (timestep 0) on those latents repeated per CFG half, batch row j = image j % (1+M) with
// token row j % halves (`tokens` [halves, T, D] tiled with `repeat`). Each row of both networks depends on its own
// image and token row only, so each distinct (image, token row) pair is computed once: the motion frames of
// hallo's first clip are copies of the source (hallo encodes and runs every copy), and the source image's latent
// and rows are the same in every clip of a job (taken from and stored in in.reference_cache when there is one).
// Equal to hallo's batch up to the float rounding of a smaller batch (tests/e2e/test_reference_pass.cpp).
struct ReferencePass {
  torch::Tensor ref_latents;        // [1+M, 4, h, w]
  std::vector<torch::Tensor> banks;  // per writer, bank order: [halves (1+M), L, C]
};
ReferencePass reference_pass(Networks& nets, const ClipInputs& in, const torch::Tensor& tokens);

// Runs ReferenceNet once, the DDIM/CFG loop, and returns the final latents [1, 4, F, h, w].
torch::Tensor denoise_clip(Networks& nets, const nlohmann::json& scheduler_kwargs, const ClipInputs& in,
                           const StepCallback& on_step = {}, ClipTrace* trace = nullptr);

// face tokens [2, T, D] from a raw face embedding [E] (zeros -> unconditional half, as hallo). Input placed.
torch::Tensor face_tokens(Networks& nets, const torch::Tensor& face_emb);
// face_locator(face region [1, 3, H, W] repeated over F frames) -> [1, C0, F, h, w]. Input placed.
torch::Tensor face_locator_features(Networks& nets, const torch::Tensor& face_region, int64_t frames);

}  // namespace emo::pipeline

namespace emo::pipeline {
// hallo decode_latents: latents [1, 4, F, h, w] -> videos [1, 3, F, H, W] = (vae.decode(z / s) / 2 + 0.5).clamp(0, 1)
torch::Tensor decode_video(Networks& nets, const torch::Tensor& latents, int64_t chunk = 4);
}  // namespace emo::pipeline
