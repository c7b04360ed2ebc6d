// diffusers.models.attention_processor.Attention (AttnProcessor semantics, no group norm / spatial norm).
// Used for self-attention, cross-attention and hallo's reference attention (keys/values from
// cat([own tokens, reference tokens])). Children: to_q, to_k, to_v, to_out.0 (+ to_out.1 = Dropout).
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <functional>
#include <unordered_map>

namespace emo::nn {

// Projected keys and values of context tokens: [B, Lk, inner] each.
struct KeyValue {
  torch::Tensor k, v;
};

struct AttentionConfig {
  int64_t query_dim = 0;
  int64_t cross_attention_dim = 0;  // 0 = self-attention (keys/values from query_dim)
  int64_t heads = 8;
  int64_t dim_head = 64;
  bool bias = false;      // q/k/v bias
  bool out_bias = true;   // to_out.0 bias
  int64_t inner_dim() const { return heads * dim_head; }
};

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const AttentionConfig& config);
  // x [B, Lq, query_dim]; context [B, Lk, cross_dim] (undefined = self-attention on x) -> [B, Lq, query_dim]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context = {});
  // Reference attention with the reference tokens' keys/values projected once per clip: the same as
  // forward(x, cat([x, ref], 1)) with k_ref = to_k(ref), v_ref = to_v(ref) [B, Lr, inner] (projections are per token).
  torch::Tensor forward_with_kv(const torch::Tensor& x, const torch::Tensor& k_ref, const torch::Tensor& v_ref);
  // {to_k(context), to_v(context)}
  KeyValue project_kv(const torch::Tensor& context);
  // Attention over keys/values projected already: forward(x, c) == forward_kv(x, project_kv(c)).
  torch::Tensor forward_kv(const torch::Tensor& x, const KeyValue& kv);
  // forward_kv without to_out: the heads' outputs merged, [B, Lq, inner]; forward_kv == to_out[0](attend_kv).
  torch::Tensor attend_kv(const torch::Tensor& x, const KeyValue& kv);
  const AttentionConfig& config() const { return config_; }

  emo::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};

 private:
  AttentionConfig config_;
  emo::nn::Linear out_proj_{nullptr};  // == to_out[0], typed
};
TORCH_MODULE(Attention);

// A cross-attention over few context tokens folded with the linear map after it (exact up to float rounding). Per
// context row b, with K[b], V[b] the projected context [Lk, inner] split into H heads of D:
//   scores = x qk[b] + qk_bias[b],  qk[b] = scale W_q^T K[b]^T                 [C, H Lk]   (per head: [C, Lk])
//   y      = softmax_per_head(scores) vo[b] + b_out,  vo[b] = V[b]_h W_out_h^T  [H Lk, Cout]
// A query token costs 2 C H Lk + 2 H Lk Cout FLOPs instead of 2 (C inner + 2 Lk inner + inner Cout): with the image
// tokens (Lk = 4) 4-23x less time at the UNet's levels on the CPU, with the audio tokens (32) 1.3-4.5x.
struct FoldedContext {
  torch::Tensor qk;       // [B, C, H Lk]
  torch::Tensor qk_bias;  // [B, 1, H Lk] (undefined when to_q has no bias)
  torch::Tensor vo;       // [B, H Lk, Cout]
  int64_t heads = 0;
};
// Folds attn's to_q with the keys and the values with w_out [Cout, inner] (to_out[0].weight, or a product with it).
FoldedContext fold_context(AttentionImpl& attn, const KeyValue& kv, const torch::Tensor& w_out);
// softmax_per_head(x qk + qk_bias) vo + b_out: x [B, Lq, C] -> [B, Lq, Cout]
torch::Tensor attend_folded(const FoldedContext& f, const torch::Tensor& x, const torch::Tensor& b_out);
// Whether folding attn over Lk context tokens, followed by a map to Cout channels, is used for query x: on the CPU,
// without autograd, for context rows matching x's, when it computes fewer multiply-accumulates per query token.
bool folding_pays(const AttentionImpl& attn, const torch::Tensor& x, int64_t context_rows, int64_t lk, int64_t cout);

// Projected keys/values of context tokens that stay the same over many forwards (the steps of one clip: the image
// tokens, the audio tokens), one entry per attention module. The per-clip conditions hold it and drop it with the
// clip; each module must see one context per cache.
class ContextKvCache {
 public:
  // The entry of `attn`, made by `make` on the first call.
  const KeyValue& get(const AttentionImpl* attn, const std::function<KeyValue()>& make);
  // The folded form of `attn` with its context (fold_context), made on the first call; each module is folded with
  // one output map per cache.
  const FoldedContext& folded(const AttentionImpl* attn, const std::function<FoldedContext()>& make);
  size_t size() const { return entries_.size(); }
  size_t folded_size() const { return folded_.size(); }

 private:
  std::unordered_map<const AttentionImpl*, KeyValue> entries_;
  std::unordered_map<const AttentionImpl*, FoldedContext> folded_;
};

// attn(x, context), with the context's keys/values from `cache` when one is given (projected on first use); with a
// cache, folded (FoldedContext) where folding_pays. x [N, Lq, C]; context [N, Lk, D], or [N / r, Lk, D] shared by r
// consecutive query rows (row i reads context row i / r, as after repeat_interleave(r, 0)); other row counts throw.
torch::Tensor cross_attention(AttentionImpl& attn, const torch::Tensor& x, const torch::Tensor& context,
                              ContextKvCache* cache);

// cross_attention without to_out: [B, Lq, inner] (AttentionImpl::attend_kv).
torch::Tensor cross_attend(AttentionImpl& attn, const torch::Tensor& x, const torch::Tensor& context,
                           ContextKvCache* cache);

// [B, L, H*D] -> [B, H, L, D]
torch::Tensor split_heads(const torch::Tensor& x, int64_t heads);
// [B, H, L, D] -> [B, L, H*D]
torch::Tensor merge_heads(const torch::Tensor& x);

}  // namespace emo::nn
