#include "models/unet3d/mid_block_3d.h"

#include <torch/torch.h>

namespace emo::models {

UNetMidBlock3DCrossAttnImpl::UNetMidBlock3DCrossAttnImpl(const UNetBlock3DConfig& config) {
  auto c = config;
  c.out_channels = c.in_channels;
  const auto rc = emo::nn::resnet_config_for(c, c.in_channels, c.in_channels);
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  if (c.use_audio_module) audio_modules = register_module("audio_modules", torch::nn::ModuleList());
  if (c.use_motion_module) motion_modules = register_module("motion_modules", torch::nn::ModuleList());
  resnet_.emplace_back(rc);
  resnets->push_back(resnet_.back());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    attn_.push_back(make_spatial_module(c, c.in_channels));
    attentions->push_back(attn_.back());
    if (c.use_audio_module) {
      audio_.push_back(make_audio_module(c, i, c.in_channels));
      audio_modules->push_back(audio_.back());
    }
    if (c.use_motion_module) {
      motion_.emplace_back(motion_config_for(c, c.in_channels));
      motion_modules->push_back(motion_.back());
    }
    resnet_.emplace_back(rc);
    resnets->push_back(resnet_.back());
  }
}

torch::Tensor UNetMidBlock3DCrossAttnImpl::forward(const torch::Tensor& x, const torch::Tensor& temb,
                                                   const UNet3DConditions& cond, const torch::Tensor& speed_tokens) {
  auto h = resnet_[0]->forward_frames(x, temb);
  for (size_t i = 0; i < attn_.size(); ++i) {
    h = run_cross_attn_layer(*attn_[i], audio_.empty() ? nullptr : audio_[i].get(),
                             motion_.empty() ? nullptr : motion_[i].get(), h, cond, speed_tokens,
                             /*prepend_motion=*/true, /*use_motion_scale=*/true);
    h = resnet_[i + 1]->forward_frames(h, temb);
  }
  return h;
}

}  // namespace emo::models
