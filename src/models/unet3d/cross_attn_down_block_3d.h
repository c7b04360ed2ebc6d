// hallo.models.unet_3d_blocks.CrossAttnDownBlock3D. Children: resnets.N, attentions.N, audio_modules.N,
// motion_modules.N, downsamplers.0.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <vector>

#include "models/unet3d/block_common.h"
#include "nn/resnet.h"
#include "nn/sampling_layers.h"

namespace emo::models {

class CrossAttnDownBlock3DImpl : public torch::nn::Module {
 public:
  explicit CrossAttnDownBlock3DImpl(const UNetBlock3DConfig& config);
  // x [B, Cin, F, H, W] -> output, and the skip states appended to `res` (one per layer + one after downsampling)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb, const UNet3DConditions& cond,
                        const torch::Tensor& speed_tokens, std::vector<torch::Tensor>& res);
  const std::vector<Transformer3DModel>& attention_modules() const { return attn_; }

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, audio_modules{nullptr}, motion_modules{nullptr},
      downsamplers{nullptr};

 private:
  std::vector<emo::nn::ResnetBlock2D> resnet_;
  std::vector<Transformer3DModel> attn_, audio_;
  std::vector<VanillaTemporalModule> motion_;
  emo::nn::Downsample2D down_{nullptr};
};
TORCH_MODULE(CrossAttnDownBlock3D);

}  // namespace emo::models
