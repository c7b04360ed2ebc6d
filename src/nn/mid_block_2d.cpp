#include "nn/mid_block_2d.h"

#include <torch/torch.h>

namespace emo::nn {

UNetMidBlock2DCrossAttnImpl::UNetMidBlock2DCrossAttnImpl(const UNetBlock2DConfig& c) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  const ResnetBlock2DConfig r = resnet_config_for(c, c.in_channels, c.in_channels);
  res_.emplace_back(r);
  resnets->push_back(res_.back());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    attn_.emplace_back(transformer_config_for(c, c.in_channels));
    attentions->push_back(attn_.back());
    res_.emplace_back(r);
    resnets->push_back(res_.back());
  }
}

torch::Tensor UNetMidBlock2DCrossAttnImpl::forward(const torch::Tensor& x, const torch::Tensor& temb,
                                                   const torch::Tensor& ehs) {
  auto h = res_[0]->forward(x, temb);  // [B, C, H, W]
  for (size_t i = 0; i < attn_.size(); ++i) {
    h = attn_[i]->forward(h, ehs);
    h = res_[i + 1]->forward(h, temb);
  }
  return h;
}

}  // namespace emo::nn
