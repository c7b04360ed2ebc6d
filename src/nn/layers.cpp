// torch.nn.Linear / torch.nn.Conv2d; see layers.h.
#include "nn/layers.h"

#include <cmath>
#include <stdexcept>
#include <torch/nn/init.h>
#include <torch/torch.h>

#include "emo/compat.h"

namespace emo::nn {

namespace {

thread_local std::optional<c10::TensorOptions> t_uninitialized;

// PyTorch's reset_parameters() of Linear and _ConvNd: kaiming_uniform_(weight, a=sqrt(5)), then
// bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Same calls in the same order as libtorch, so the same draws.
void default_init(torch::Tensor& weight, torch::Tensor& bias) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const auto fans = torch::nn::init::_calculate_fan_in_and_fan_out(weight);
    const double bound = 1.0 / std::sqrt(static_cast<double>(std::get<0>(fans)));
    torch::nn::init::uniform_(bias, -bound, bound);
  }
}

torch::Tensor allocate(torch::IntArrayRef shape) {
  if (t_uninitialized) return torch::empty(shape, *t_uninitialized);
  return torch::empty(shape);
}

}  // namespace

UninitializedParameters::UninitializedParameters(c10::TensorOptions options) : previous_(t_uninitialized) {
  t_uninitialized = options;
}

UninitializedParameters::~UninitializedParameters() { t_uninitialized = previous_; }

std::optional<c10::TensorOptions> UninitializedParameters::active() { return t_uninitialized; }

LinearImpl::LinearImpl(const torch::nn::LinearOptions& o) {
  weight = register_parameter("weight", allocate({o.out_features(), o.in_features()}));
  if (o.bias()) bias = register_parameter("bias", allocate({o.out_features()}));
  else register_parameter("bias", {}, /*requires_grad=*/false);
  if (!t_uninitialized) default_init(weight, bias);
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) { return compat::linear(x, weight, bias); }

Conv2dImpl::Conv2dImpl(const torch::nn::Conv2dOptions& o) : groups_(o.groups()) {
  if (!std::holds_alternative<torch::ExpandingArray<2>>(o.padding()))
    throw std::invalid_argument("emo::nn::Conv2d: only explicit padding is supported");
  if (!std::holds_alternative<torch::enumtype::kZeros>(o.padding_mode()))
    throw std::invalid_argument("emo::nn::Conv2d: only zero padding is supported");
  const auto& pad = std::get<torch::ExpandingArray<2>>(o.padding());
  stride_ = {(*o.stride())[0], (*o.stride())[1]};
  padding_ = {(*pad)[0], (*pad)[1]};
  dilation_ = {(*o.dilation())[0], (*o.dilation())[1]};
  const auto k = *o.kernel_size();
  weight = register_parameter("weight", allocate({o.out_channels(), o.in_channels() / o.groups(), k[0], k[1]}));
  if (o.bias()) bias = register_parameter("bias", allocate({o.out_channels()}));
  else register_parameter("bias", {}, /*requires_grad=*/false);
  if (!t_uninitialized) default_init(weight, bias);
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
  return compat::conv2d(x, weight, bias, stride_, padding_, dilation_, groups_);
}

}  // namespace emo::nn
