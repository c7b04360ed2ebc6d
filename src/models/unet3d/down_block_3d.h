// hallo.models.unet_3d_blocks.DownBlock3D. Children: resnets.N, motion_modules.N, downsamplers.0.
// In hallo's training-mode path (what its inference runs) the motion modules are skipped.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <vector>

#include "models/unet3d/block_common.h"
#include "nn/resnet.h"
#include "nn/sampling_layers.h"

namespace emo::models {

class DownBlock3DImpl : public torch::nn::Module {
 public:
  explicit DownBlock3DImpl(const UNetBlock3DConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb, const UNet3DConditions& cond,
                        const torch::Tensor& speed_tokens, std::vector<torch::Tensor>& res);
  torch::nn::ModuleList resnets{nullptr}, motion_modules{nullptr}, downsamplers{nullptr};

 private:
  std::vector<emo::nn::ResnetBlock2D> resnet_;
  std::vector<VanillaTemporalModule> motion_;
  emo::nn::Downsample2D down_{nullptr};
};
TORCH_MODULE(DownBlock3D);

}  // namespace emo::models
