// Public entry points for the image-side networks (VAE, ReferenceNet / UNet2D). Light header: the network
// classes themselves live in src/models/ (AutoencoderKL, UNet2DConditionModel).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "emo/state_dict.h"

namespace emo {

namespace models {
class AutoencoderKLImpl;
class UNet2DConditionModelImpl;
}  // namespace models

// diffusers AutoencoderKL (sd-vae-ft-mse). Images are [N, 3, H, W] in [-1, 1]; latents [N, 4, H/8, W/8].
class Vae {
 public:
  explicit Vae(std::shared_ptr<models::AutoencoderKLImpl> impl);
  double scaling_factor() const;
  // Image pixels per latent pixel: 2^(len(block_out_channels) - 1) (diffusers vae_scale_factor; 8 for SD's VAE).
  int64_t downscale() const;
  // Posterior mean (latent_dist.mean), unscaled.
  at::Tensor encode_mean(const at::Tensor& images) const;
  // latent_dist.mean * scaling_factor (what hallo feeds the ReferenceNet).
  at::Tensor encode_latents(const at::Tensor& images) const;
  // latents: [N, 4, h, w], or video latents [B, 4, F, h, w] (frames in (b f) order).
  // decode(latents / scaling_factor) `chunk` frames at a time; each decoded chunk [n, 3, H, W] (range about
  // [-1, 1], not clamped) goes to `sink` with the index of its first frame. Peak memory depends on `chunk` only.
  void decode_latents(const at::Tensor& latents, int64_t chunk,
                      const std::function<void(int64_t first, const at::Tensor& images)>& sink) const;
  // Same, collecting every frame into one tensor [N, 3, H, W] (kept on the latents' device).
  at::Tensor decode_latents(const at::Tensor& latents, int64_t chunk = 8) const;
  void to(c10::Device device, c10::ScalarType dtype);
  // Channels-last (NHWC) convolutions: the 4-D weights are converted once here, and encode / decode run their
  // activations in NHWC (inputs converted on the way in, results made contiguous NCHW on the way out). Chosen at
  // load time (--vae-layout; off by default: no faster for this VAE on the CPU, docs/performance.md).
  void use_channels_last(bool on);
  bool channels_last() const { return channels_last_; }
  models::AutoencoderKLImpl& module() const { return *impl_; }

 private:
  std::shared_ptr<models::AutoencoderKLImpl> impl_;
  bool channels_last_ = false;
};

// `dir` holds config.json and diffusion_pytorch_model.safetensors (or .bin). Legacy mid-block attention names
// (query/key/value/proj_attn) are accepted. Throws ModelError naming the file on any problem.
Vae load_vae(const std::string& dir);

// hallo's ReferenceNet: SD UNet2DConditionModel without conv_norm_out/conv_out, run in
// ReferenceAttentionControl "write" mode.
class ReferenceNet {
 public:
  explicit ReferenceNet(std::shared_ptr<models::UNet2DConditionModelImpl> impl);
  // sample [B, 4, h, w] (ref latents, hallo repeats them x2 for CFG), timestep scalar or [B] (hallo: 0),
  // ehs [Be, L, cross_dim] with B % Be == 0 (row j pairs with ehs[j % Be]).
  // Returns the norm1 output [B, h_i*w_i, C_i] of every BasicTransformerBlock in hallo's bank order
  // (DFS with up_blocks before mid_block, stably sorted by decreasing C).
  std::vector<at::Tensor> write_banks(const at::Tensor& sample, const at::Tensor& timestep,
                                      const at::Tensor& ehs) const;
  void to(c10::Device device, c10::ScalarType dtype);
  models::UNet2DConditionModelImpl& module() const { return *impl_; }

 private:
  std::shared_ptr<models::UNet2DConditionModelImpl> impl_;
};

// config_json: path of a diffusers unet config.json (stable-diffusion-v1-5/unet/config.json); weights: a state dict
// holding the ReferenceNet under `prefix` (hallo's net.pth: "reference_unet."). Strict load.
ReferenceNet load_reference_unet(const std::string& config_json, const io::StateDict& weights,
                                 const std::string& prefix = "reference_unet.");

// The plain diffusers UNet2DConditionModel from a diffusers `unet/` folder (config.json +
// diffusion_pytorch_model.safetensors|.bin).
std::shared_ptr<models::UNet2DConditionModelImpl> load_unet2d(const std::string& dir);

// One-line description of the config detected in a diffusers `unet/` or `vae/` folder (for `emo inspect`);
// empty when the folder's config.json is neither.
std::string describe_diffusers_config(const std::string& config_json);

}  // namespace emo
