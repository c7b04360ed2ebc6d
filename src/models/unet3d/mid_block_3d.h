// hallo.models.unet_3d_blocks.UNetMidBlock3DCrossAttn: resnets.0, then per layer attentions.N -> audio_modules.N ->
// motion_modules.N -> resnets.N+1. Unlike the down/up blocks it ALWAYS prepends the bank's motion frames at the
// motion module input and always passes motion_scale to the audio module (both code paths).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <vector>

#include "models/unet3d/block_common.h"
#include "nn/resnet.h"

namespace emo::models {

class UNetMidBlock3DCrossAttnImpl : public torch::nn::Module {
 public:
  explicit UNetMidBlock3DCrossAttnImpl(const UNetBlock3DConfig& config);  // in_channels only (out = in)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb, const UNet3DConditions& cond,
                        const torch::Tensor& speed_tokens);
  const std::vector<Transformer3DModel>& attention_modules() const { return attn_; }
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, audio_modules{nullptr}, motion_modules{nullptr};

 private:
  std::vector<emo::nn::ResnetBlock2D> resnet_;
  std::vector<Transformer3DModel> attn_, audio_;
  std::vector<VanillaTemporalModule> motion_;
};
TORCH_MODULE(UNetMidBlock3DCrossAttn);

}  // namespace emo::models
