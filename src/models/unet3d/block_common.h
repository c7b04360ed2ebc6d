// Shared configuration and the per-layer sequence of hallo.models.unet_3d_blocks: after a ResnetBlock3D, a CrossAttn
// layer runs spatial Transformer3DModel (reference attention) -> audio Transformer3DModel -> VanillaTemporalModule.
#pragma once
#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "models/unet3d/conditions.h"
#include "models/unet3d/motion_module.h"
#include "models/unet3d/transformer_3d.h"
#include "nn/resnet.h"

namespace emo::models {

// Constructor arguments of CrossAttnDownBlock3D / DownBlock3D / UNetMidBlock3DCrossAttn / UpBlock3D /
// CrossAttnUpBlock3D (the subset the SD1.5-layout UNet uses).
struct UNetBlock3DConfig {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t prev_output_channel = 0;  // up blocks
  int64_t temb_channels = 1280;
  int64_t num_layers = 1;
  double resnet_eps = 1e-6;
  int64_t resnet_groups = 32;
  double output_scale_factor = 1.0;
  int64_t attn_num_head_channels = 8;  // hallo passes attention_head_dim here: it is the number of HEADS
  int64_t cross_attention_dim = 768;
  int64_t audio_attention_dim = 768;
  bool add_sample = true;  // add_downsample / add_upsample
  int64_t downsample_padding = 1;
  bool use_motion_module = false;
  MotionModuleConfig motion;  // in_channels is set by the block
  bool use_audio_module = false;
  int64_t depth = 0;              // mask level of the audio modules
  bool audio_stack_enabled = true;
  // Audio module inner width per layer (heads * head_dim); 0 = hallo's rule (head_dim = block input width // heads).
  // The UNet fills it from the weights when they are given (hallo's widths are irregular).
  std::vector<int64_t> audio_inner_dims;
};

// The audio Transformer3DModel of layer `layer`, whose hallo head_dim is `rule_in_channels // heads`.
Transformer3DModel make_audio_module(const UNetBlock3DConfig& c, size_t layer, int64_t rule_in_channels);
// The block's motion module config for `channels` (motion modules run on the layer's output channels).
MotionModuleConfig motion_config_for(const UNetBlock3DConfig& c, int64_t channels);
// The spatial Transformer3DModel (heads = attn_num_head_channels, head_dim = out // heads).
Transformer3DModel make_spatial_module(const UNetBlock3DConfig& c, int64_t channels);

// Speed tokens for a temporal sequence of `frames` frames: the last `frames` of the clip's speed tokens
// [B, M + F, S] (undefined stays undefined).
torch::Tensor speed_for_frames(const torch::Tensor& speed_tokens, int64_t frames);

// spatial attention -> audio module -> motion module on h [B, C, F, H, W].
// prepend_motion: the motion module runs on cat([bank motion frames, h], frames) and the motion frames are dropped
// after (hallo's training-mode path, and always in the mid block). use_motion_scale: audio branch weights.
torch::Tensor run_cross_attn_layer(Transformer3DModelImpl& attn, Transformer3DModelImpl* audio,
                                   VanillaTemporalModuleImpl* motion, const torch::Tensor& h,
                                   const UNet3DConditions& cond, const torch::Tensor& speed_tokens,
                                   bool prepend_motion, bool use_motion_scale);

}  // namespace emo::models
