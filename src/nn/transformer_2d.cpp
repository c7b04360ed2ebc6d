#include "nn/transformer_2d.h"

#include <torch/torch.h>

namespace emo::nn {

Transformer2DModelImpl::Transformer2DModelImpl(const Transformer2DModelConfig& c) : config_(c) {
  const int64_t inner = c.inner_dim();
  norm = register_module("norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, c.in_channels).eps(1e-6)));
  if (c.use_linear_projection) {
    proj_in_linear = register_module("proj_in", emo::nn::Linear(c.in_channels, inner));
  } else {
    proj_in_conv = register_module("proj_in", emo::nn::Conv2d(torch::nn::Conv2dOptions(c.in_channels, inner, 1)));
  }
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    BasicTransformerBlockConfig b;
    b.dim = inner;
    b.num_attention_heads = c.num_attention_heads;
    b.attention_head_dim = c.attention_head_dim;
    b.cross_attention_dim = c.cross_attention_dim;
    b.attention_bias = c.attention_bias;
    b.only_cross_attention = c.only_cross_attention;
    blocks_.emplace_back(b);
    transformer_blocks->push_back(blocks_.back());
  }
  if (c.use_linear_projection) {
    proj_out_linear = register_module("proj_out", emo::nn::Linear(inner, c.in_channels));
  } else {
    proj_out_conv = register_module("proj_out", emo::nn::Conv2d(torch::nn::Conv2dOptions(inner, c.in_channels, 1)));
  }
}

torch::Tensor Transformer2DModelImpl::forward(const torch::Tensor& x, const torch::Tensor& ehs) {
  const auto b = x.size(0), h = x.size(2), w = x.size(3);
  auto t = norm->forward(x);                                        // [B, C, H, W]
  int64_t inner = 0;
  if (proj_in_conv) {
    t = proj_in_conv->forward(t);                                   // [B, inner, H, W]
    inner = t.size(1);
    t = t.permute({0, 2, 3, 1}).reshape({b, h * w, inner});         // [B, HW, inner]
  } else {
    t = t.permute({0, 2, 3, 1}).reshape({b, h * w, x.size(1)});     // [B, HW, C]
    t = proj_in_linear->forward(t);                                 // [B, HW, inner]
    inner = t.size(2);
  }
  for (auto& blk : blocks_) t = blk->forward(t, ehs);              // [B, HW, inner]
  if (proj_out_conv) {
    t = t.reshape({b, h, w, inner}).permute({0, 3, 1, 2}).contiguous();  // [B, inner, H, W]
    t = proj_out_conv->forward(t);                                       // [B, C, H, W]
  } else {
    t = proj_out_linear->forward(t);                                     // [B, HW, C]
    t = t.reshape({b, h, w, x.size(1)}).permute({0, 3, 1, 2}).contiguous();
  }
  return t + x;
}

}  // namespace emo::nn
