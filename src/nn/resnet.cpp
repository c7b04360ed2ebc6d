#include "nn/resnet.h"

#include <torch/torch.h>

namespace emo::nn {

namespace F = torch::nn::functional;

ResnetBlock2DImpl::ResnetBlock2DImpl(const ResnetBlock2DConfig& c) : config_(c) {
  if (config_.out_channels <= 0) config_.out_channels = c.in_channels;
  if (config_.groups_out <= 0) config_.groups_out = c.groups;
  const auto& k = config_;
  norm1 = register_module("norm1", torch::nn::GroupNorm(torch::nn::GroupNormOptions(k.groups, k.in_channels).eps(k.eps)));
  conv1 = register_module("conv1", emo::nn::Conv2d(torch::nn::Conv2dOptions(k.in_channels, k.out_channels, 3).padding(1)));
  if (k.temb_channels > 0) time_emb_proj = register_module("time_emb_proj", emo::nn::Linear(k.temb_channels, k.out_channels));
  norm2 = register_module("norm2", torch::nn::GroupNorm(torch::nn::GroupNormOptions(k.groups_out, k.out_channels).eps(k.eps)));
  conv2 = register_module("conv2", emo::nn::Conv2d(torch::nn::Conv2dOptions(k.out_channels, k.out_channels, 3).padding(1)));
  if (k.in_channels != k.out_channels)
    conv_shortcut = register_module("conv_shortcut", emo::nn::Conv2d(torch::nn::Conv2dOptions(k.in_channels, k.out_channels, 1)));
}

torch::Tensor ResnetBlock2DImpl::forward(const torch::Tensor& x, const torch::Tensor& temb) {
  // Inference (no autograd graph): every intermediate is fresh, so the activations and sums are done in place - the
  // same values, bit for bit, with three fewer full-size tensors allocated and written per block.
  if (!torch::GradMode::is_enabled()) {
    torch::Tensor h;
    {
      auto n = norm1->forward(x);
      h = conv1->forward(torch::silu_(n));  // [N, Cout, H, W]
    }
    if (time_emb_proj && temb.defined())
      h.add_(time_emb_proj->forward(torch::silu(temb)).unsqueeze(-1).unsqueeze(-1));  // + [N, Cout, 1, 1]
    {
      auto n = norm2->forward(h);
      h = conv2->forward(torch::silu_(n));  // [N, Cout, H, W]
    }
    h.add_(conv_shortcut ? conv_shortcut->forward(x) : x);  // shortcut + h (addition commutes exactly)
    if (config_.output_scale_factor != 1.0) h.div_(config_.output_scale_factor);
    return h;
  }
  auto h = conv1->forward(torch::silu(norm1->forward(x)));  // [N, Cout, H, W]
  if (time_emb_proj && temb.defined()) {
    auto t = time_emb_proj->forward(torch::silu(temb));      // [N, Cout]
    h = h + t.unsqueeze(-1).unsqueeze(-1);
  }
  h = conv2->forward(torch::silu(norm2->forward(h)));       // [N, Cout, H, W]
  auto shortcut = conv_shortcut ? conv_shortcut->forward(x) : x;
  auto out = shortcut + h;
  if (config_.output_scale_factor != 1.0) out = out / config_.output_scale_factor;
  return out;
}

torch::Tensor fold_frames(const torch::Tensor& x) {
  const auto b = x.size(0), c = x.size(1), f = x.size(2), h = x.size(3), w = x.size(4);
  return x.permute({0, 2, 1, 3, 4}).reshape({b * f, c, h, w});  // [(B F), C, H, W]
}

torch::Tensor unfold_frames(const torch::Tensor& x, int64_t frames) {
  const auto n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  return x.reshape({n / frames, frames, c, h, w}).permute({0, 2, 1, 3, 4});  // [B, C, F, H, W]
}

torch::Tensor ResnetBlock2DImpl::forward_frames(const torch::Tensor& x, const torch::Tensor& temb) {
  const auto frames = x.size(2);
  auto t = temb.defined() ? temb.repeat_interleave(frames, 0) : temb;  // [(B F), temb]
  return unfold_frames(forward(fold_frames(x), t), frames);
}

}  // namespace emo::nn
