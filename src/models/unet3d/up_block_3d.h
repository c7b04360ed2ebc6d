// hallo.models.unet_3d_blocks.UpBlock3D. Children: resnets.N, motion_modules.N, upsamplers.0.
// In hallo's training-mode path (what its inference runs) the motion modules are skipped.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <vector>

#include "models/unet3d/block_common.h"
#include "nn/resnet.h"
#include "nn/sampling_layers.h"

namespace emo::models {

class UpBlock3DImpl : public torch::nn::Module {
 public:
  explicit UpBlock3DImpl(const UNetBlock3DConfig& config);
  torch::Tensor forward(const torch::Tensor& x, std::vector<torch::Tensor>& res, const torch::Tensor& temb,
                        const UNet3DConditions& cond, const torch::Tensor& speed_tokens,
                        const std::vector<int64_t>& upsample_size);
  size_t num_resnets() const { return resnet_.size(); }
  torch::nn::ModuleList resnets{nullptr}, motion_modules{nullptr}, upsamplers{nullptr};

 private:
  std::vector<emo::nn::ResnetBlock2D> resnet_;
  std::vector<VanillaTemporalModule> motion_;
  emo::nn::Upsample2D up_{nullptr};
};
TORCH_MODULE(UpBlock3D);

}  // namespace emo::models
