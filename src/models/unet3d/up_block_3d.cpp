#include "models/unet3d/up_block_3d.h"

#include <torch/torch.h>

#include "models/unet3d/cross_attn_up_block_3d.h"

namespace emo::models {

UpBlock3DImpl::UpBlock3DImpl(const UNetBlock3DConfig& c) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (c.use_motion_module) motion_modules = register_module("motion_modules", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const int64_t res_skip = i == c.num_layers - 1 ? c.in_channels : c.out_channels;
    const int64_t resnet_in = i == 0 ? c.prev_output_channel : c.out_channels;
    const auto rc = emo::nn::resnet_config_for(c, resnet_in + res_skip, c.out_channels);
    resnet_.emplace_back(rc);
    resnets->push_back(resnet_.back());
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

torch::Tensor UpBlock3DImpl::forward(const torch::Tensor& x, std::vector<torch::Tensor>& res, const torch::Tensor& temb,
                                     const UNet3DConditions& cond, const torch::Tensor& speed_tokens,
                                     const std::vector<int64_t>& upsample_size) {
  auto h = x;
  for (size_t i = 0; i < resnet_.size(); ++i) {
    h = torch::cat({h, res.back()}, 1);
    res.pop_back();
    h = resnet_[i]->forward_frames(h, temb);
    // hallo's checkpointing branch runs only the resnet: the motion modules of UpBlock3D never run there.
    if (!cond.hallo_training_path && !motion_.empty())
      h = motion_[i]->forward(h, speed_for_frames(speed_tokens, h.size(2)));
  }
  if (up_) h = upsample_frames(*up_, h, upsample_size);
  return h;
}

}  // namespace emo::models
