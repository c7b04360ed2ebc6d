#include "nn/sampling_layers.h"

#include <torch/torch.h>

#include "emo/compat.h"

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

const torch::Tensor& Upsample2DImpl::phase_weight() {
  const auto& w = conv->weight;  // [Cout, Cin, 3, 3]
  const int64_t version = w.is_inference() ? 0 : static_cast<int64_t>(w._version());
  if (phase_w_.defined() && phase_src_ == w.data_ptr() && phase_version_ == version && phase_dtype_ == w.scalar_type() &&
      phase_w_.suggest_memory_format() == w.suggest_memory_format())
    return phase_w_;
  torch::NoGradGuard no_grad;
  // Row (column) combinations of the 3x3 taps for output parity 0 and 1: source offsets {-1, 0} and {0, +1}.
  const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(w.device());
  const auto a0 = torch::tensor({1.f, 0.f, 0.f, 0.f, 1.f, 1.f}).view({2, 3}).to(opts);
  const auto a1 = torch::tensor({1.f, 1.f, 0.f, 0.f, 0.f, 1.f}).view({2, 3}).to(opts);
  const auto wf = w.to(torch::kFloat);
  std::vector<torch::Tensor> parts;
  for (const auto& ra : {a0, a1})
    for (const auto& cb : {a0, a1})
      parts.push_back(torch::einsum("ik,ockl,jl->ocij", {ra, wf, cb}));   // [Cout, Cin, 2, 2]
  phase_w_ = torch::cat(parts, 0).to(w.scalar_type()).contiguous(w.suggest_memory_format());  // [4 Cout, Cin, 2, 2]
  phase_b_ = conv->bias.defined() ? conv->bias.repeat({4}) : torch::Tensor();
  phase_src_ = w.data_ptr();
  phase_version_ = version;
  phase_dtype_ = w.scalar_type();
  return phase_w_;
}

torch::Tensor Upsample2DImpl::phase_forward(const torch::Tensor& x) {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3), co = conv->weight.size(0);
  const auto& pw = phase_weight();
  // Padded position (p, q) of y holds, for phase (a, b), the output pixel (2(p - a) + a, 2(q - b) + b).
  static const int64_t kOne[2] = {1, 1}, kZero[2] = {0, 0};
  auto y = compat::conv2d(F::pad(x, F::PadFuncOptions({1, 1, 1, 1})), pw, phase_b_, /*stride=*/at::IntArrayRef(kOne),
                         /*padding=*/at::IntArrayRef(kZero), /*dilation=*/at::IntArrayRef(kOne), /*groups=*/1);  // [N, 4 Cout, H+1, W+1]
  if (x.suggest_memory_format() == at::MemoryFormat::ChannelsLast) {  // NHWC in, NHWC out: interleave channels-last
    auto out = torch::empty({n, h, 2, w, 2, co}, y.options());                         // [N, H, 2, W, 2, Cout]
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < 2; ++b)
        out.select(2, a).select(3, b).copy_(y.slice(1, (a * 2 + b) * co, (a * 2 + b + 1) * co)
                                                .slice(2, a, a + h).slice(3, b, b + w).permute({0, 2, 3, 1}));
    return out.view({n, 2 * h, 2 * w, co}).permute({0, 3, 1, 2});                       // [N, Cout, 2H, 2W] NHWC
  }
  auto out = torch::empty({n, co, h, 2, w, 2}, y.options());                           // [N, Cout, H, 2, W, 2]
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 2; ++b)
      out.select(3, a).select(4, b).copy_(y.slice(1, (a * 2 + b) * co, (a * 2 + b + 1) * co)
                                              .slice(2, a, a + h).slice(3, b, b + w));  // [N, Cout, H, W]
  return out.view({n, co, 2 * h, 2 * w});                                               // [N, Cout, 2H, 2W]
}

torch::Tensor Upsample2DImpl::forward(const torch::Tensor& x, std::optional<std::vector<int64_t>> size) {
  const bool exact_x2 = !size || (size->size() == 2 && (*size)[0] == 2 * x.size(2) && (*size)[1] == 2 * x.size(3));
  // Training (gradients to conv's weight) takes the reference path: the phase kernels are derived constants.
  const bool grads = torch::GradMode::is_enabled() && conv->weight.requires_grad();
  if (exact_x2 && !grads && x.dim() == 4 && conv->weight.size(2) == 3 && conv->weight.size(3) == 3)
    return phase_forward(x);
  auto opts = F::InterpolateFuncOptions().mode(torch::kNearest);
  if (size) opts.size(*size);
  else opts.scale_factor(std::vector<double>{2.0, 2.0});
  return conv->forward(F::interpolate(x, opts));
}

}  // namespace emo::nn
