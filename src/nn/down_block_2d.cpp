#include "nn/down_block_2d.h"

#include <torch/torch.h>

namespace emo::nn {

Transformer2DModelConfig transformer_config_for(const UNetBlock2DConfig& c, int64_t channels) {
  Transformer2DModelConfig t;
  t.num_attention_heads = c.num_attention_heads;
  t.attention_head_dim = channels / c.num_attention_heads;
  t.in_channels = channels;
  t.num_layers = c.transformer_layers_per_block;
  t.cross_attention_dim = c.cross_attention_dim;
  t.norm_num_groups = c.resnet_groups;
  t.use_linear_projection = c.use_linear_projection;
  t.only_cross_attention = c.only_cross_attention;
  return t;
}

DownBlock2DImpl::DownBlock2DImpl(const UNetBlock2DConfig& c) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (c.has_cross_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    res_.emplace_back(resnet_config_for(c, i == 0 ? c.in_channels : c.out_channels, c.out_channels));
    resnets->push_back(res_.back());
    if (c.has_cross_attention) {
      attn_.emplace_back(transformer_config_for(c, c.out_channels));
      attentions->push_back(attn_.back());
    }
  }
  if (c.add_downsample) {
    downsamplers = register_module("downsamplers", torch::nn::ModuleList());
    down_ = Downsample2D(c.out_channels, c.out_channels, c.downsample_padding);
    downsamplers->push_back(down_);
  }
}

torch::Tensor DownBlock2DImpl::forward(const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& ehs,
                                       std::vector<torch::Tensor>& skips) {
  auto h = x;
  for (size_t i = 0; i < res_.size(); ++i) {
    h = res_[i]->forward(h, temb);                   // [B, Cout, H, W]
    if (!attn_.empty()) h = attn_[i]->forward(h, ehs);
    skips.push_back(h);
  }
  if (down_) {
    h = down_->forward(h);                           // [B, Cout, H/2, W/2]
    skips.push_back(h);
  }
  return h;
}

}  // namespace emo::nn
