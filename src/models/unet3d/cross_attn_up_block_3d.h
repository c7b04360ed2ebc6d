// hallo.models.unet_3d_blocks.CrossAttnUpBlock3D. Children: resnets.N, attentions.N, audio_modules.N,
// motion_modules.N, upsamplers.0.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <vector>

#include "models/unet3d/block_common.h"
#include "nn/resnet.h"
#include "nn/sampling_layers.h"

namespace emo::models {

class CrossAttnUpBlock3DImpl : public torch::nn::Module {
 public:
  explicit CrossAttnUpBlock3DImpl(const UNetBlock3DConfig& config);
  // Consumes skip states from the back of `res`; upsample_size = {H, W} or empty (x2).
  torch::Tensor forward(const torch::Tensor& x, std::vector<torch::Tensor>& res, const torch::Tensor& temb,
                        const UNet3DConditions& cond, const torch::Tensor& speed_tokens,
                        const std::vector<int64_t>& upsample_size);
  size_t num_resnets() const { return resnet_.size(); }
  const std::vector<Transformer3DModel>& attention_modules() const { return attn_; }
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, audio_modules{nullptr}, motion_modules{nullptr},
      upsamplers{nullptr};

 private:
  std::vector<emo::nn::ResnetBlock2D> resnet_;
  std::vector<Transformer3DModel> attn_, audio_;
  std::vector<VanillaTemporalModule> motion_;
  emo::nn::Upsample2D up_{nullptr};
};
TORCH_MODULE(CrossAttnUpBlock3D);

// Upsample2D per frame: [B, C, F, H, W] -> [B, C', F, 2H, 2W] (or to `size`).
torch::Tensor upsample_frames(emo::nn::Upsample2DImpl& up, const torch::Tensor& x, const std::vector<int64_t>& size);

}  // namespace emo::models
