#include "nn/attention.h"

#include <torch/torch.h>

#include "emo/compat.h"

namespace emo::nn {

AttentionImpl::AttentionImpl(const AttentionConfig& c) : config_(c) {
  const int64_t kv_dim = c.cross_attention_dim > 0 ? c.cross_attention_dim : c.query_dim;
  to_q = register_module("to_q", emo::nn::Linear(torch::nn::LinearOptions(c.query_dim, c.inner_dim()).bias(c.bias)));
  to_k = register_module("to_k", emo::nn::Linear(torch::nn::LinearOptions(kv_dim, c.inner_dim()).bias(c.bias)));
  to_v = register_module("to_v", emo::nn::Linear(torch::nn::LinearOptions(kv_dim, c.inner_dim()).bias(c.bias)));
  out_proj_ = emo::nn::Linear(torch::nn::LinearOptions(c.inner_dim(), c.query_dim).bias(c.out_bias));
  to_out = register_module("to_out", torch::nn::ModuleList());
  to_out->push_back(out_proj_);
  to_out->push_back(torch::nn::Dropout(0.0));  // to_out.1 (no parameters; keeps indices as in diffusers)
}

torch::Tensor split_heads(const torch::Tensor& x, int64_t heads) {
  const auto b = x.size(0), l = x.size(1), d = x.size(2) / heads;
  return x.view({b, l, heads, d}).transpose(1, 2);  // [B, H, L, D]
}

torch::Tensor merge_heads(const torch::Tensor& x) {
  const auto b = x.size(0), h = x.size(1), l = x.size(2), d = x.size(3);
  return x.transpose(1, 2).reshape({b, l, h * d});  // [B, L, H*D]
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  return forward_kv(x, project_kv(context.defined() ? context : x));
}

KeyValue AttentionImpl::project_kv(const torch::Tensor& context) {
  return {to_k->forward(context), to_v->forward(context)};  // [B, Lk, inner] each
}

torch::Tensor AttentionImpl::forward_kv(const torch::Tensor& x, const KeyValue& kv) {
  return out_proj_->forward(attend_kv(x, kv));  // [B, Lq, query_dim]
}

torch::Tensor AttentionImpl::attend_kv(const torch::Tensor& x, const KeyValue& kv) {
  auto q = split_heads(to_q->forward(x), config_.heads);  // [B, H, Lq, D]
  auto k = split_heads(kv.k, config_.heads);              // [B, H, Lk, D]
  auto v = split_heads(kv.v, config_.heads);              // [B, H, Lk, D]
  return merge_heads(compat::attention(q, k, v));         // [B, Lq, inner]
}

const KeyValue& ContextKvCache::get(const AttentionImpl* attn, const std::function<KeyValue()>& make) {
  auto it = entries_.find(attn);
  if (it == entries_.end()) it = entries_.emplace(attn, make()).first;
  return it->second;
}

torch::Tensor cross_attention(AttentionImpl& attn, const torch::Tensor& x, const torch::Tensor& context,
                              ContextKvCache* cache) {
  if (!cache) return attn.forward(x, context);
  return attn.forward_kv(x, cache->get(&attn, [&] { return attn.project_kv(context); }));
}

torch::Tensor cross_attend(AttentionImpl& attn, const torch::Tensor& x, const torch::Tensor& context,
                           ContextKvCache* cache) {
  if (!cache) return attn.attend_kv(x, attn.project_kv(context));
  return attn.attend_kv(x, cache->get(&attn, [&] { return attn.project_kv(context); }));
}

torch::Tensor AttentionImpl::forward_with_kv(const torch::Tensor& x, const torch::Tensor& k_ref,
                                             const torch::Tensor& v_ref) {
  auto q = split_heads(to_q->forward(x), config_.heads);                                    // [B, H, Lq, D]
  auto k = split_heads(torch::cat({to_k->forward(x), k_ref}, 1), config_.heads);            // [B, H, Lq + Lr, D]
  auto v = split_heads(torch::cat({to_v->forward(x), v_ref}, 1), config_.heads);            // [B, H, Lq + Lr, D]
  auto o = compat::attention(q, k, v);                                                      // [B, H, Lq, D]
  return out_proj_->forward(merge_heads(o));                                                // [B, Lq, query_dim]
}

}  // namespace emo::nn
