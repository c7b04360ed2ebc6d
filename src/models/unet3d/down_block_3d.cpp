#include "models/unet3d/down_block_3d.h"

#include <torch/torch.h>

namespace emo::models {

DownBlock3DImpl::DownBlock3DImpl(const UNetBlock3DConfig& c) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (c.use_motion_module) motion_modules = register_module("motion_modules", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const auto rc = emo::nn::resnet_config_for(c, i == 0 ? c.in_channels : c.out_channels, c.out_channels);
    resnet_.emplace_back(rc);
    resnets->push_back(resnet_.back());
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

torch::Tensor DownBlock3DImpl::forward(const torch::Tensor& x, const torch::Tensor& temb, const UNet3DConditions& cond,
                                       const torch::Tensor& speed_tokens, std::vector<torch::Tensor>& res) {
  auto h = x;
  for (size_t i = 0; i < resnet_.size(); ++i) {
    h = resnet_[i]->forward_frames(h, temb);
    // hallo's checkpointing branch runs only the resnet: the motion modules of DownBlock3D never run there.
    if (!cond.hallo_training_path && !motion_.empty())
      h = motion_[i]->forward(h, speed_for_frames(speed_tokens, h.size(2)));
    res.push_back(h);
  }
  if (down_) {
    h = emo::nn::unfold_frames(down_->forward(emo::nn::fold_frames(h)), h.size(2));
    res.push_back(h);
  }
  return h;
}

}  // namespace emo::models
