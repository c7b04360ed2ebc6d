#include "nn/basic_transformer_block.h"

#include <torch/torch.h>

#include "emo/error.h"

namespace emo::nn {

BasicTransformerBlockImpl::BasicTransformerBlockImpl(const BasicTransformerBlockConfig& c) : config_(c) {
  auto ln = [&](int64_t d) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(c.norm_eps)); };
  AttentionConfig a1;
  a1.query_dim = c.dim;
  a1.heads = c.num_attention_heads;
  a1.dim_head = c.attention_head_dim;
  a1.bias = c.attention_bias;
  a1.cross_attention_dim = c.only_cross_attention ? c.cross_attention_dim : 0;
  norm1 = register_module("norm1", ln(c.dim));
  attn1 = register_module("attn1", Attention(a1));
  if (c.has_attn2) {
    AttentionConfig a2 = a1;
    a2.cross_attention_dim = c.cross_attention_dim;
    norm2 = register_module("norm2", ln(c.dim));
    attn2 = register_module("attn2", Attention(a2));
  }
  norm3 = register_module("norm3", ln(c.dim));
  FeedForwardConfig f;
  f.dim = c.dim;
  ff = register_module("ff", FeedForward(f));
}

torch::Tensor repeat_context(const torch::Tensor& ehs, int64_t batch) {
  const int64_t be = ehs.size(0);
  if (be == batch) return ehs;
  if (be <= 0 || batch % be != 0)
    throw ModelError("basic_transformer_block: batch " + std::to_string(batch) +
                     " is not a multiple of the encoder_hidden_states batch " + std::to_string(be));
  return ehs.repeat({batch / be, 1, 1});  // [B, Le, C], row j = ehs[j % Be]
}

torch::Tensor BasicTransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& ehs,
                                                 const torch::Tensor& reference) {
  auto h = x;                                         // [B, L, dim]
  auto n = norm1->forward(h);                         // [B, L, dim]
  if (mode_ == ReferenceMode::kWriteBankOnly) {
    bank_ = n;
    return x;
  }
  if (mode_ == ReferenceMode::kWrite) bank_ = n.clone();
  torch::Tensor ctx1;
  if (config_.only_cross_attention) ctx1 = ehs;
  else if (reference.defined()) ctx1 = torch::cat({n, reference}, 1);  // [B, L + Lr, dim]
  h = attn1->forward(n, ctx1) + h;
  if (attn2) {
    n = norm2->forward(h);
    auto ctx2 = ehs;
    if (ctx2.defined() && mode_ == ReferenceMode::kWrite) ctx2 = repeat_context(ctx2, n.size(0));
    h = attn2->forward(n, ctx2) + h;
  }
  h = ff->forward(norm3->forward(h), h);
  return h;
}

}  // namespace emo::nn
