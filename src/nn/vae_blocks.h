// Blocks of diffusers' AutoencoderKL (diffusers.models.autoencoders.vae / unets.unet_2d_blocks), kept together
// because each is a few lines: VaeAttention (diffusers Attention as UNetMidBlock2D builds it), DownEncoderBlock2D,
// UpDecoderBlock2D, UNetMidBlock2D. All GroupNorms use the VAE's eps (1e-6); no time embedding.
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "nn/resnet.h"
#include "nn/sampling_layers.h"

namespace emo::nn {

// diffusers.models.attention_processor.Attention(query_dim=C, heads=C/head_dim, dim_head=head_dim, bias=True,
// norm_num_groups=groups, residual_connection=True, _from_deprecated_attn_block=True) on a [B, C, H, W] map.
// Children: group_norm, to_q, to_k, to_v, to_out.0 (legacy files: query/key/value/proj_attn, renamed on load).
struct VaeAttentionConfig {
  int64_t channels = 0;
  int64_t head_dim = 0;  // 0 = channels (one head)
  int64_t groups = 32;
  double eps = 1e-6;
  double rescale_output_factor = 1.0;
};

class VaeAttentionImpl : public torch::nn::Module {
 public:
  explicit VaeAttentionImpl(const VaeAttentionConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C, H, W] -> [B, C, H, W]

  torch::nn::GroupNorm group_norm{nullptr};
  emo::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};

 private:
  VaeAttentionConfig config_;
  emo::nn::Linear out_proj_{nullptr};
};
TORCH_MODULE(VaeAttention);

struct VaeBlockConfig {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t num_layers = 2;
  int64_t groups = 32;
  double eps = 1e-6;
  bool add_sample = true;       // downsampler (encoder) / upsampler (decoder)
  int64_t downsample_padding = 0;
  int64_t attention_head_dim = 0;  // mid block: 0 = in_channels (one head)
  bool add_attention = true;       // mid block
};

// diffusers.models.unets.unet_2d_blocks.DownEncoderBlock2D. Children: resnets.N, downsamplers.0.
class DownEncoderBlock2DImpl : public torch::nn::Module {
 public:
  explicit DownEncoderBlock2DImpl(const VaeBlockConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // [B, Cin, H, W] -> [B, Cout, H/2, W/2]
  torch::nn::ModuleList resnets{nullptr}, downsamplers{nullptr};

 private:
  std::vector<ResnetBlock2D> res_;
  Downsample2D down_{nullptr};
};
TORCH_MODULE(DownEncoderBlock2D);

// diffusers.models.unets.unet_2d_blocks.UpDecoderBlock2D. Children: resnets.N, upsamplers.0.
class UpDecoderBlock2DImpl : public torch::nn::Module {
 public:
  explicit UpDecoderBlock2DImpl(const VaeBlockConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // [B, Cin, H, W] -> [B, Cout, 2H, 2W]
  torch::nn::ModuleList resnets{nullptr}, upsamplers{nullptr};

 private:
  std::vector<ResnetBlock2D> res_;
  Upsample2D up_{nullptr};
};
TORCH_MODULE(UpDecoderBlock2D);

// diffusers.models.unets.unet_2d_blocks.UNetMidBlock2D (temb_channels=None, num_layers=1).
// Children: resnets.0, attentions.0, resnets.1.
class UNetMidBlock2DImpl : public torch::nn::Module {
 public:
  explicit UNetMidBlock2DImpl(const VaeBlockConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C, H, W]
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};

 private:
  std::vector<ResnetBlock2D> res_;
  std::vector<VaeAttention> attn_;
};
TORCH_MODULE(UNetMidBlock2D);

}  // namespace emo::nn
