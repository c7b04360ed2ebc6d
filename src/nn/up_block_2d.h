// diffusers.models.unets.unet_2d_blocks.CrossAttnUpBlock2D and UpBlock2D (one class: the plain UpBlock2D
// is the same block without attentions). Children: resnets.N, attentions.N (cross-attn variant), upsamplers.0.
// Each layer concatenates the last skip: cat([hidden, skip], dim=1).
#pragma once
#include <optional>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <vector>

#include "nn/down_block_2d.h"

namespace emo::nn {

class UpBlock2DImpl : public torch::nn::Module {
 public:
  // Uses in_channels (channels of the matching down block input), prev_output_channel, out_channels,
  // num_layers (= layers_per_block + 1), add_upsample and the attention fields.
  explicit UpBlock2DImpl(const UNetBlock2DConfig& config);
  // x [B, Cprev, H, W]; pops num_layers skips from the back of `skips`; upsample_size = explicit target size.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& ehs,
                        std::vector<torch::Tensor>& skips,
                        std::optional<std::vector<int64_t>> upsample_size = std::nullopt);
  int64_t num_layers() const { return static_cast<int64_t>(res_.size()); }
  bool has_upsampler() const { return static_cast<bool>(up_); }

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, upsamplers{nullptr};
  const std::vector<Transformer2DModel>& transformers() const { return attn_; }

 private:
  std::vector<ResnetBlock2D> res_;
  std::vector<Transformer2DModel> attn_;
  Upsample2D up_{nullptr};
};
TORCH_MODULE(UpBlock2D);

}  // namespace emo::nn
