// diffusers.models.unets.unet_2d_blocks.UNetMidBlock2DCrossAttn.
// Children: resnets.0..N, attentions.0..N-1; resnet0 -> (attn_i -> resnet_{i+1})*.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <vector>

#include "nn/down_block_2d.h"

namespace emo::nn {

class UNetMidBlock2DCrossAttnImpl : public torch::nn::Module {
 public:
  // Uses in_channels, temb_channels, num_layers (attention count, default 1), transformer_layers_per_block,
  // resnet_eps, resnet_groups, output_scale_factor, cross_attention_dim, num_attention_heads, use_linear_projection.
  explicit UNetMidBlock2DCrossAttnImpl(const UNetBlock2DConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& ehs);  // [B, C, H, W]

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};
  const std::vector<Transformer2DModel>& transformers() const { return attn_; }

 private:
  std::vector<ResnetBlock2D> res_;
  std::vector<Transformer2DModel> attn_;
};
TORCH_MODULE(UNetMidBlock2DCrossAttn);

}  // namespace emo::nn
