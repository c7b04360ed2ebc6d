#include "nn/vae_blocks.h"

#include <torch/torch.h>

#include <cmath>

#include "emo/compat.h"
#include "nn/attention.h"

namespace emo::nn {

VaeAttentionImpl::VaeAttentionImpl(const VaeAttentionConfig& c) : config_(c) {
  if (config_.head_dim <= 0) config_.head_dim = c.channels;
  const int64_t ch = c.channels;
  group_norm = register_module("group_norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.groups, ch).eps(c.eps)));
  to_q = register_module("to_q", emo::nn::Linear(ch, ch));
  to_k = register_module("to_k", emo::nn::Linear(ch, ch));
  to_v = register_module("to_v", emo::nn::Linear(ch, ch));
  out_proj_ = emo::nn::Linear(ch, ch);
  to_out = register_module("to_out", torch::nn::ModuleList());
  to_out->push_back(out_proj_);
  to_out->push_back(torch::nn::Dropout(0.0));
}

torch::Tensor VaeAttentionImpl::forward(const torch::Tensor& x) {
  const auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t heads = c / config_.head_dim;
  // [B, H, W, C] -> [B, HW, C]: a view both for NCHW (strides C*HW, 1, HW) and channels-last activations.
  auto t = group_norm->forward(x).permute({0, 2, 3, 1}).reshape({b, h * w, c});  // [B, HW, C]
  auto q = split_heads(to_q->forward(t), heads);                          // [B, heads, HW, D]
  auto k = split_heads(to_k->forward(t), heads);
  auto v = split_heads(to_v->forward(t), heads);
  auto o = out_proj_->forward(merge_heads(compat::attention(q, k, v)));   // [B, HW, C]
  o = o.view({b, h, w, c}).permute({0, 3, 1, 2});                         // [B, C, H, W] (NHWC memory)
  o = x + o;  // (= o + x exactly) x first, so the sum keeps the input's memory format
  if (config_.rescale_output_factor != 1.0) o = o / config_.rescale_output_factor;
  return o;
}

namespace {
ResnetBlock2DConfig vae_resnet(int64_t in, int64_t out, const VaeBlockConfig& c) {
  ResnetBlock2DConfig r;
  r.in_channels = in;
  r.out_channels = out;
  r.temb_channels = 0;
  r.groups = c.groups;
  r.eps = c.eps;
  return r;
}
}  // namespace

DownEncoderBlock2DImpl::DownEncoderBlock2DImpl(const VaeBlockConfig& c) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    res_.emplace_back(vae_resnet(i == 0 ? c.in_channels : c.out_channels, c.out_channels, c));
    resnets->push_back(res_.back());
  }
  if (c.add_sample) {
    downsamplers = register_module("downsamplers", torch::nn::ModuleList());
    down_ = Downsample2D(c.out_channels, c.out_channels, c.downsample_padding);
    downsamplers->push_back(down_);
  }
}

torch::Tensor DownEncoderBlock2DImpl::forward(const torch::Tensor& x) {
  auto h = x;
  for (auto& r : res_) h = r->forward(h);
  if (down_) h = down_->forward(h);
  return h;
}

UpDecoderBlock2DImpl::UpDecoderBlock2DImpl(const VaeBlockConfig& c) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    res_.emplace_back(vae_resnet(i == 0 ? c.in_channels : c.out_channels, c.out_channels, c));
    resnets->push_back(res_.back());
  }
  if (c.add_sample) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    up_ = Upsample2D(c.out_channels, c.out_channels);
    upsamplers->push_back(up_);
  }
}

torch::Tensor UpDecoderBlock2DImpl::forward(const torch::Tensor& x) {
  auto h = x;
  for (auto& r : res_) h = r->forward(h);
  if (up_) h = up_->forward(h);
  return h;
}

UNetMidBlock2DImpl::UNetMidBlock2DImpl(const VaeBlockConfig& c) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  res_.emplace_back(vae_resnet(c.in_channels, c.in_channels, c));
  resnets->push_back(res_.back());
  if (c.add_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    if (c.add_attention) {
      VaeAttentionConfig a;
      a.channels = c.in_channels;
      a.head_dim = c.attention_head_dim > 0 ? c.attention_head_dim : c.in_channels;
      a.groups = c.groups;
      a.eps = c.eps;
      attn_.emplace_back(a);
      attentions->push_back(attn_.back());
    }
    res_.emplace_back(vae_resnet(c.in_channels, c.in_channels, c));
    resnets->push_back(res_.back());
  }
}

torch::Tensor UNetMidBlock2DImpl::forward(const torch::Tensor& x) {
  auto h = res_[0]->forward(x);
  for (size_t i = 1; i < res_.size(); ++i) {
    if (!attn_.empty()) h = attn_[i - 1]->forward(h);
    h = res_[i]->forward(h);
  }
  return h;
}

}  // namespace emo::nn
