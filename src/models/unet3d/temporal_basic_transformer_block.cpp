#include "models/unet3d/temporal_basic_transformer_block.h"

#include <torch/torch.h>

#include "emo/error.h"

namespace emo::models {

namespace {
constexpr const char* kFile_temporal_basic_transformer_block = "temporal_basic_transformer_block.cpp";
}

TemporalBasicTransformerBlockImpl::TemporalBasicTransformerBlockImpl(const TemporalBasicTransformerBlockConfig& c)
    : config_(c) {
  emo::nn::AttentionConfig a1;
  a1.query_dim = c.dim;
  a1.heads = c.num_attention_heads;
  a1.dim_head = c.attention_head_dim;
  // Registration order follows hallo's __init__ (attn1, norm1, attn2, norm2, ff, norm3).
  attn1 = register_module("attn1", emo::nn::Attention(a1));
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim})));
  if (c.cross_attention_dim > 0) {
    auto a2 = a1;
    a2.cross_attention_dim = c.cross_attention_dim;
    attn2 = register_module("attn2", emo::nn::Attention(a2));
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim})));
  }
  ff = register_module("ff", emo::nn::FeedForward(emo::nn::FeedForwardConfig{c.dim, 0, 4}));
  norm3 = register_module("norm3", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim})));
}

std::pair<torch::Tensor, torch::Tensor> TemporalBasicTransformerBlockImpl::forward(const torch::Tensor& x,
                                                                                   const torch::Tensor& context,
                                                                                   int64_t video_length, bool cfg,
                                                                                   emo::nn::ContextKvCache* kv_cache) {
  const auto n = x.size(0), l = x.size(1), c = x.size(2);
  auto normed = norm1->forward(x);  // [(B F), L, C]
  torch::Tensor h, motion;
  if (bank_.defined()) {
    const auto b = n / video_length;
    if (bank_.size(0) % b != 0 || bank_.size(1) != l || bank_.size(2) != c)
      throw InputError(std::string(kFile_temporal_basic_transformer_block) + ": reference bank [" + std::to_string(bank_.size(0)) + ", " +
                       std::to_string(bank_.size(1)) + ", " + std::to_string(bank_.size(2)) +
                       "] does not fit a batch of " + std::to_string(b) + " with " + std::to_string(l) + " tokens of " +
                       std::to_string(c) + " channels");
    auto bank = bank_.to(x.dtype()).view({b, bank_.size(0) / b, l, c});  // [B, 1 + M, L, C]
    // hallo: rearrange(d, "(b s) l c -> b s l c")[:, 0].repeat(1, f, 1, 1) -> "(b t) l c". torch's repeat TILES the
    // B reference images, so frame row r reads the reference of CFG half r % B (not r // F). Reproduced as is.
    // The reference tokens' keys and values are constant within a clip: projected once per bank, not per step
    // and frame (keys = cat([own tokens, reference]) projects per token, so this is the same product).
    if (!ref_k_.defined() || ref_k_.size(0) != b || ref_k_.scalar_type() != x.scalar_type()) {
      auto ref0 = bank.select(1, 0);                              // [B, L, C]
      ref_k_ = attn1->to_k->forward(ref0);                        // [B, L, inner]
      ref_v_ = attn1->to_v->forward(ref0);
    }
    auto rk = ref_k_.repeat({video_length, 1, 1});                // [(F B), L, inner] tiled
    auto rv = ref_v_.repeat({video_length, 1, 1});
    motion = bank.slice(1, 1);                                    // [B, M, L, C]
    if (cfg) {
      // Unconditional half (first rows): plain self-attention only (hallo computes reference attention for these
      // rows too, then overwrites it with this result).
      const auto half = n / 2;
      auto uc = attn1->forward(normed.slice(0, 0, half));
      auto co = attn1->forward_with_kv(normed.slice(0, half), rk.slice(0, half), rv.slice(0, half));
      h = torch::cat({uc, co}, 0) + x;
    } else {
      h = attn1->forward_with_kv(normed, rk, rv) + x;
    }
  } else {
    h = attn1->forward(normed) + x;  // empty bank: keys/values are the frame's own tokens only
  }
  if (attn2) h = emo::nn::cross_attention(*attn2, norm2->forward(h), context, kv_cache) + h;  // image tokens
  h = ff->forward(norm3->forward(h), h);
  return {h, motion};
}

}  // namespace emo::models
