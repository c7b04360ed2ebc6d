// diffusers.models.downsampling.Downsample2D and diffusers.models.upsampling.Upsample2D (use_conv=True).
// Child: conv. The UNet uses padding 1; the VAE encoder uses padding 0 with an asymmetric (0,1,0,1) pad.
#pragma once
#include "nn/layers.h"
#include <optional>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>

namespace emo::nn {

class Downsample2DImpl : public torch::nn::Module {
 public:
  Downsample2DImpl(int64_t channels, int64_t out_channels, int64_t padding);
  torch::Tensor forward(const torch::Tensor& x);  // [N, C, H, W] -> [N, Cout, H/2, W/2]
  emo::nn::Conv2d conv{nullptr};

 private:
  int64_t padding_;
};
TORCH_MODULE(Downsample2D);

class Upsample2DImpl : public torch::nn::Module {
 public:
  Upsample2DImpl(int64_t channels, int64_t out_channels);
  // Nearest x2 (or to `size` when given, as diffusers' upsample_size), then 3x3 conv.
  torch::Tensor forward(const torch::Tensor& x, std::optional<std::vector<int64_t>> size = std::nullopt);
  emo::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

}  // namespace emo::nn
