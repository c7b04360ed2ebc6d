#include "models/unet3d/cross_attn_up_block_3d.h"

#include <torch/torch.h>

namespace emo::models {

torch::Tensor upsample_frames(emo::nn::Upsample2DImpl& up, const torch::Tensor& x, const std::vector<int64_t>& size) {
  auto folded = emo::nn::fold_frames(x);
  auto out = size.empty() ? up.forward(folded) : up.forward(folded, size);
  return emo::nn::unfold_frames(out, x.size(2));
}

CrossAttnUpBlock3DImpl::CrossAttnUpBlock3DImpl(const UNetBlock3DConfig& c) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  if (c.use_audio_module) audio_modules = register_module("audio_modules", torch::nn::ModuleList());
  if (c.use_motion_module) motion_modules = register_module("motion_modules", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const int64_t res_skip = i == c.num_layers - 1 ? c.in_channels : c.out_channels;
    const int64_t resnet_in = i == 0 ? c.prev_output_channel : c.out_channels;
    const auto rc = emo::nn::resnet_config_for(c, resnet_in + res_skip, c.out_channels);
    resnet_.emplace_back(rc);
    resnets->push_back(resnet_.back());
    attn_.push_back(make_spatial_module(c, c.out_channels));
    attentions->push_back(attn_.back());
    if (c.use_audio_module) {
      audio_.push_back(make_audio_module(c, i, c.in_channels));  // hallo: the block's in_channels for every layer
      audio_modules->push_back(audio_.back());
    }
    if (c.use_motion_module) {
      motion_.emplace_back(motion_config_for(c, c.out_channels));
      motion_modules->push_back(motion_.back());
    }
  }
  if (c.add_sample) {
    up_ = emo::nn::Upsample2D(c.out_channels, c.out_channels);
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    upsamplers->push_back(up_);
  }
}

torch::Tensor CrossAttnUpBlock3DImpl::forward(const torch::Tensor& x, std::vector<torch::Tensor>& res,
                                              const torch::Tensor& temb, const UNet3DConditions& cond,
                                              const torch::Tensor& speed_tokens,
                                              const std::vector<int64_t>& upsample_size) {
  auto h = x;
  const bool train = cond.hallo_training_path;
  for (size_t i = 0; i < resnet_.size(); ++i) {
    h = torch::cat({h, res.back()}, 1);  // [B, C + Cskip, F, H, W]
    res.pop_back();
    h = resnet_[i]->forward_frames(h, temb);
    h = run_cross_attn_layer(*attn_[i], audio_.empty() ? nullptr : audio_[i].get(),
                             motion_.empty() ? nullptr : motion_[i].get(), h, cond, speed_tokens,
                             /*prepend_motion=*/train, /*use_motion_scale=*/train);
  }
  if (up_) h = upsample_frames(*up_, h, upsample_size);
  return h;
}

}  // namespace emo::models
