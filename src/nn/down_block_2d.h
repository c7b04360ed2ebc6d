// diffusers.models.unets.unet_2d_blocks.CrossAttnDownBlock2D and DownBlock2D (one class: the plain
// DownBlock2D is the same block without attentions). Children: resnets.N, attentions.N (cross-attn variant),
// downsamplers.0 (when add_downsample).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <vector>

#include "nn/resnet.h"
#include "nn/sampling_layers.h"
#include "nn/transformer_2d.h"

namespace emo::nn {

struct UNetBlock2DConfig {  // arguments of diffusers' get_down_block / get_up_block / mid block
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t prev_output_channel = 0;  // up blocks only
  int64_t temb_channels = 1280;
  int64_t num_layers = 1;
  int64_t transformer_layers_per_block = 1;
  double resnet_eps = 1e-5;
  int64_t resnet_groups = 32;
  double output_scale_factor = 1.0;
  bool has_cross_attention = false;  // CrossAttn* variant
  int64_t cross_attention_dim = 1280;
  int64_t num_attention_heads = 1;
  bool use_linear_projection = false;
  bool only_cross_attention = false;
  bool add_downsample = true;
  int64_t downsample_padding = 1;
  bool add_upsample = true;
};

Transformer2DModelConfig transformer_config_for(const UNetBlock2DConfig& c, int64_t channels);

class DownBlock2DImpl : public torch::nn::Module {
 public:
  explicit DownBlock2DImpl(const UNetBlock2DConfig& config);
  // x [B, Cin, H, W], temb [B, T], ehs [Be, Le, D]; appends every skip output to `skips`. -> [B, Cout, H', W']
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& ehs,
                        std::vector<torch::Tensor>& skips);

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, downsamplers{nullptr};
  const std::vector<Transformer2DModel>& transformers() const { return attn_; }

 private:
  std::vector<ResnetBlock2D> res_;
  std::vector<Transformer2DModel> attn_;
  Downsample2D down_{nullptr};
};
TORCH_MODULE(DownBlock2D);

}  // namespace emo::nn
