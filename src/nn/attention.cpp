#include "nn/attention.h"

#include <cmath>

#include <torch/torch.h>

#include "emo/compat.h"
#include "emo/error.h"

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

const FoldedContext& ContextKvCache::folded(const AttentionImpl* attn, const std::function<FoldedContext()>& make) {
  auto it = folded_.find(attn);
  if (it == folded_.end()) it = folded_.emplace(attn, make()).first;
  return it->second;
}

bool folding_pays(const AttentionImpl& attn, const torch::Tensor& x, int64_t context_rows, int64_t lk, int64_t cout) {
  if (!x.device().is_cpu() || x.scalar_type() != at::kFloat || x.dim() != 3 || x.size(0) != context_rows ||
      torch::GradMode::is_enabled() || lk <= 0)
    return false;
  const auto& c = attn.config();
  const int64_t cin = c.query_dim, inner = c.inner_dim(), hk = c.heads * lk;
  return hk * (cin + cout) < cin * inner + 2 * lk * inner + inner * cout;  // multiply-accumulates per query token
}

FoldedContext fold_context(AttentionImpl& attn, const KeyValue& kv, const torch::Tensor& w_out) {
  const auto& c = attn.config();
  const int64_t b = kv.k.size(0), lk = kv.k.size(1), h = c.heads, d = c.dim_head, cin = c.query_dim;
  const int64_t cout = w_out.size(0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const auto k = kv.k.view({b, lk, h, d});                                             // [B, Lk, H, D]
  const auto v = kv.v.view({b, lk, h, d});                                             // [B, Lk, H, D]
  FoldedContext f;
  f.heads = h;
  f.qk = (torch::einsum("hdc,bjhd->bchj", {attn.to_q->weight.view({h, d, cin}), k}) * scale)
             .reshape({b, cin, h * lk}).contiguous();                                  // [B, C, H Lk]
  if (attn.to_q->bias.defined())
    f.qk_bias = (torch::einsum("hd,bjhd->bhj", {attn.to_q->bias.view({h, d}), k}) * scale)
                    .reshape({b, 1, h * lk}).contiguous();                             // [B, 1, H Lk]
  f.vo = torch::einsum("bjhd,ohd->bhjo", {v, w_out.view({cout, h, d})}).reshape({b, h * lk, cout}).contiguous();
  return f;                                                                            // vo: [B, H Lk, Cout]
}

torch::Tensor attend_folded(const FoldedContext& f, const torch::Tensor& x, const torch::Tensor& b_out) {
  const int64_t b = x.size(0), lq = x.size(1), hk = f.qk.size(2);
  auto scores = f.qk_bias.defined() ? torch::baddbmm(f.qk_bias, x, f.qk) : torch::bmm(x, f.qk);  // [B, Lq, H Lk]
  auto p = scores.view({b, lq, f.heads, hk / f.heads}).softmax(-1).view({b, lq, hk});          // [B, Lq, H Lk]
  return b_out.defined() ? torch::baddbmm(b_out, p, f.vo) : torch::bmm(p, f.vo);                // [B, Lq, Cout]
}

torch::Tensor cross_attention(AttentionImpl& attn, const torch::Tensor& x, const torch::Tensor& context,
                              ContextKvCache* cache) {
  const int64_t n = x.size(0), nc = context.size(0);
  if (n != nc) {
    if (nc <= 0 || n % nc != 0)
      throw InputError("attention.cpp: " + std::to_string(n) + " query rows cannot share " + std::to_string(nc) +
                       " context rows");
    // Query row i reads context row i / r ("b n c -> (b f) n c"): each context row's r query rows as one row of
    // r Lq tokens, so the context is projected (and folded) once per distinct row, never repeated.
    const auto y = cross_attention(attn, x.reshape({nc, (n / nc) * x.size(1), x.size(2)}), context, cache);
    return y.view({n, x.size(1), y.size(2)});  // [N, Lq, Cout]
  }
  if (!cache) return attn.forward(x, context);
  const auto& out = attn.to_out[0]->as<Linear>();
  if (folding_pays(attn, x, context.size(0), context.size(1), out->weight.size(0))) {
    const auto& f = cache->folded(&attn, [&] {
      return fold_context(attn, cache->get(&attn, [&] { return attn.project_kv(context); }), out->weight);
    });
    return attend_folded(f, x, out->bias);
  }
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
