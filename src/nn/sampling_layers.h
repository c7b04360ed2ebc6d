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
  bool has_phase_kernels() const { return phase_w_.defined(); }  // tests: the fast path ran

 private:
  // Nearest x2 then a 3x3 conv (padding 1) == four 2x2 convs on the input, one per output phase (row parity a,
  // column parity b), each summing the 3x3 taps that read the same source pixel: 16 instead of 36 multiply-adds
  // per input pixel and channel pair, and no 4x upsampled copy. Same math up to float summation order. The four
  // phase kernels are one conv of 4 x out channels, derived from `conv` once (again if its weight changes).
  torch::Tensor phase_forward(const torch::Tensor& x);
  const torch::Tensor& phase_weight();
  torch::Tensor phase_w_, phase_b_;          // [4 Cout, Cin, 2, 2], [4 Cout]
  const void* phase_src_ = nullptr;          // conv->weight's storage when phase_w_ was derived
  int64_t phase_version_ = -1;
  c10::ScalarType phase_dtype_ = c10::ScalarType::Undefined;
};
TORCH_MODULE(Upsample2D);

}  // namespace emo::nn
