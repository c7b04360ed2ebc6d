// diffusers.models.resnets.ResnetBlock2D (time_embedding_norm="default", non-linearity SiLU).
// Children: norm1, conv1, time_emb_proj (when temb_channels > 0), norm2, conv2, conv_shortcut (when in != out).
// Hallo's ResnetBlock3D (InflatedConv3d / InflatedGroupNorm) is this block applied per frame:
// see forward_frames().
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace emo::nn {

struct ResnetBlock2DConfig {
  int64_t in_channels = 0;
  int64_t out_channels = 0;       // 0 = in_channels
  int64_t temb_channels = 512;    // 0 = no time embedding (VAE)
  int64_t groups = 32;
  int64_t groups_out = 0;         // 0 = groups
  double eps = 1e-6;
  double output_scale_factor = 1.0;
};

// The ResnetBlock2D a UNet block builds (2-D and 3-D block configs alike): the block's temb_channels,
// resnet_groups, resnet_eps and output_scale_factor with these channels.
template <typename BlockConfig>
ResnetBlock2DConfig resnet_config_for(const BlockConfig& c, int64_t in_channels, int64_t out_channels) {
  ResnetBlock2DConfig r;
  r.in_channels = in_channels;
  r.out_channels = out_channels;
  r.temb_channels = c.temb_channels;
  r.groups = c.resnet_groups;
  r.eps = c.resnet_eps;
  r.output_scale_factor = c.output_scale_factor;
  return r;
}

class ResnetBlock2DImpl : public torch::nn::Module {
 public:
  explicit ResnetBlock2DImpl(const ResnetBlock2DConfig& config);
  // x [N, Cin, H, W], temb [N, temb_channels] or undefined -> [N, Cout, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb = {});
  // x [B, Cin, F, H, W], temb [B, temb_channels] -> [B, Cout, F, H, W] (2-D ops per frame)
  torch::Tensor forward_frames(const torch::Tensor& x, const torch::Tensor& temb);

  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  emo::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  emo::nn::Linear time_emb_proj{nullptr};

 private:
  ResnetBlock2DConfig config_;
};
TORCH_MODULE(ResnetBlock2D);

// [B, C, F, H, W] <-> [(B F), C, H, W]
torch::Tensor fold_frames(const torch::Tensor& x);
torch::Tensor unfold_frames(const torch::Tensor& x, int64_t frames);

}  // namespace emo::nn
