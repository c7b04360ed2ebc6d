// diffusers.models.autoencoders.autoencoder_kl.AutoencoderKL with its Encoder and Decoder
// (diffusers.models.autoencoders.vae.Encoder / Decoder). Children: encoder, decoder, quant_conv, post_quant_conv.
// scaling_factor is NOT applied inside encode/decode (as in diffusers); callers multiply / divide.
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "nn/vae_blocks.h"

namespace emo::models {

struct AutoencoderKLConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  std::vector<int64_t> block_out_channels{64};
  int64_t layers_per_block = 1;
  int64_t latent_channels = 4;
  int64_t norm_num_groups = 32;
  double scaling_factor = 0.18215;
  bool use_quant_conv = true;
  bool use_post_quant_conv = true;
  bool mid_block_add_attention = true;

  static AutoencoderKLConfig from_json(const nlohmann::json& j, const std::string& source = "config.json");
  std::string summary() const;
};

// diffusers.models.autoencoders.vae.Encoder (double_z=True).
class VaeEncoderImpl : public torch::nn::Module {
 public:
  explicit VaeEncoderImpl(const AutoencoderKLConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // [B, Cin, H, W] -> [B, 2*latent, H/2^(n-1), W/2^(n-1)]
  emo::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};
  nn::UNetMidBlock2D mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

 private:
  std::vector<nn::DownEncoderBlock2D> down_;
};
TORCH_MODULE(VaeEncoder);

// diffusers.models.autoencoders.vae.Decoder (norm_type="group").
class VaeDecoderImpl : public torch::nn::Module {
 public:
  explicit VaeDecoderImpl(const AutoencoderKLConfig& config);
  torch::Tensor forward(const torch::Tensor& z);  // [B, latent, h, w] -> [B, Cout, h*2^(n-1), w*2^(n-1)]
  emo::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  nn::UNetMidBlock2D mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

 private:
  std::vector<nn::UpDecoderBlock2D> up_;
};
TORCH_MODULE(VaeDecoder);

class AutoencoderKLImpl : public torch::nn::Module {
 public:
  explicit AutoencoderKLImpl(const AutoencoderKLConfig& config);
  // x [N, Cin, H, W] -> {posterior mean, posterior logvar clamped to [-30, 20]}, each [N, latent, h, w]
  std::pair<torch::Tensor, torch::Tensor> encode(const torch::Tensor& x);
  // z [N, latent, h, w] (already divided by scaling_factor) -> [N, Cout, H, W]
  torch::Tensor decode(const torch::Tensor& z);
  // Decodes `chunk` frames at a time (chunk <= 0: all at once), handing each decoded chunk [n, Cout, H, W] to
  // `sink` with the index of its first frame: peak memory depends on `chunk`, not on N.
  void decode_chunked(const torch::Tensor& z, int64_t chunk,
                      const std::function<void(int64_t first, const torch::Tensor& frames)>& sink);
  const AutoencoderKLConfig& config() const { return config_; }

  VaeEncoder encoder{nullptr};
  VaeDecoder decoder{nullptr};
  emo::nn::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};

 private:
  AutoencoderKLConfig config_;
};
TORCH_MODULE(AutoencoderKL);

}  // namespace emo::models
