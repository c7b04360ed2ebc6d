#include "nn/up_block_2d.h"

#include <torch/torch.h>

#include "emo/error.h"

namespace emo::nn {

UpBlock2DImpl::UpBlock2DImpl(const UNetBlock2DConfig& c) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (c.has_cross_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const int64_t res_skip = (i == c.num_layers - 1) ? c.in_channels : c.out_channels;
    const int64_t res_in = (i == 0) ? c.prev_output_channel : c.out_channels;
    res_.emplace_back(resnet_config_for(c, res_in + res_skip, c.out_channels));
    resnets->push_back(res_.back());
    if (c.has_cross_attention) {
      attn_.emplace_back(transformer_config_for(c, c.out_channels));
      attentions->push_back(attn_.back());
    }
  }
  if (c.add_upsample) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    up_ = Upsample2D(c.out_channels, c.out_channels);
    upsamplers->push_back(up_);
  }
}

torch::Tensor UpBlock2DImpl::forward(const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& ehs,
                                     std::vector<torch::Tensor>& skips,
                                     std::optional<std::vector<int64_t>> upsample_size) {
  auto h = x;
  for (size_t i = 0; i < res_.size(); ++i) {
    if (skips.empty()) throw ModelError("up_block_2d: skip connection stack exhausted");
    auto skip = skips.back();
    skips.pop_back();
    h = torch::cat({h, skip}, 1);                    // [B, Ch + Cskip, H, W]
    h = res_[i]->forward(h, temb);                   // [B, Cout, H, W]
    if (!attn_.empty()) h = attn_[i]->forward(h, ehs);
  }
  if (up_) h = up_->forward(h, upsample_size);       // [B, Cout, 2H, 2W]
  return h;
}

}  // namespace emo::nn
