#include "models/unet3d/cross_attn_down_block_3d.h"

#include <torch/torch.h>

namespace emo::models {

CrossAttnDownBlock3DImpl::CrossAttnDownBlock3DImpl(const UNetBlock3DConfig& c) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  if (c.use_audio_module) audio_modules = register_module("audio_modules", torch::nn::ModuleList());
  if (c.use_motion_module) motion_modules = register_module("motion_modules", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const int64_t in = i == 0 ? c.in_channels : c.out_channels;
    const auto rc = emo::nn::resnet_config_for(c, in, c.out_channels);
    resnet_.emplace_back(rc);
    resnets->push_back(resnet_.back());
    attn_.push_back(make_spatial_module(c, c.out_channels));
    attentions->push_back(attn_.back());
    if (c.use_audio_module) {
      audio_.push_back(make_audio_module(c, i, in));  // hallo: head_dim = in_channels // heads (this layer's input)
      audio_modules->push_back(audio_.back());
    }
    if (c.use_motion_module) {
      motion_.emplace_back(motion_config_for(c, c.out_channels));
      motion_modules->push_back(motion_.back());
    }
  }
  if (c.add_sample) {
    down_ = emo::nn::Downsample2D(c.out_channels, c.out_channels, c.downsample_padding);
    downsamplers = register_module("downsamplers", torch::nn::ModuleList());
    downsamplers->push_back(down_);
  }
}

torch::Tensor CrossAttnDownBlock3DImpl::forward(const torch::Tensor& x, const torch::Tensor& temb,
                                                const UNet3DConditions& cond, const torch::Tensor& speed_tokens,
                                                std::vector<torch::Tensor>& res) {
  auto h = x;
  const bool train = cond.hallo_training_path;
  for (size_t i = 0; i < resnet_.size(); ++i) {
    h = resnet_[i]->forward_frames(h, temb);  // [B, C, F, H, W]
    h = run_cross_attn_layer(*attn_[i], audio_.empty() ? nullptr : audio_[i].get(),
                             motion_.empty() ? nullptr : motion_[i].get(), h, cond, speed_tokens,
                             /*prepend_motion=*/train, /*use_motion_scale=*/train);
    res.push_back(h);
  }
  if (down_) {
    h = emo::nn::unfold_frames(down_->forward(emo::nn::fold_frames(h)), h.size(2));
    res.push_back(h);
  }
  return h;
}

}  // namespace emo::models
