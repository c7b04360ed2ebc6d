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
