#include "nn/sampling_layers.h"

#include <torch/torch.h>

namespace emo::nn {

namespace F = torch::nn::functional;

Downsample2DImpl::Downsample2DImpl(int64_t channels, int64_t out_channels, int64_t padding) : padding_(padding) {
  conv = register_module("conv", emo::nn::Conv2d(torch::nn::Conv2dOptions(channels, out_channels, 3).stride(2).padding(padding)));
}

torch::Tensor Downsample2DImpl::forward(const torch::Tensor& x) {
  if (padding_ == 0) return conv->forward(F::pad(x, F::PadFuncOptions({0, 1, 0, 1}).mode(torch::kConstant).value(0)));
  return conv->forward(x);
}

Upsample2DImpl::Upsample2DImpl(int64_t channels, int64_t out_channels) {
  conv = register_module("conv", emo::nn::Conv2d(torch::nn::Conv2dOptions(channels, out_channels, 3).padding(1)));
}

torch::Tensor Upsample2DImpl::forward(const torch::Tensor& x, std::optional<std::vector<int64_t>> size) {
  auto opts = F::InterpolateFuncOptions().mode(torch::kNearest);
  if (size) opts.size(*size);
  else opts.scale_factor(std::vector<double>{2.0, 2.0});
  return conv->forward(F::interpolate(x, opts));
}

}  // namespace emo::nn
