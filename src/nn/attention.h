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

// Projected keys/values of context tokens that stay the same over many forwards (the steps of one clip: the image
// tokens, the audio tokens), one entry per attention module. The per-clip conditions hold it and drop it with the
// clip; each module must see one context per cache.
class ContextKvCache {
 public:
  // The entry of `attn`, made by `make` on the first call.
  const KeyValue& get(const AttentionImpl* attn, const std::function<KeyValue()>& make);
  size_t size() const { return entries_.size(); }

 private:
  std::unordered_map<const AttentionImpl*, KeyValue> entries_;
};

// attn(x, context), with the context's keys/values from `cache` when one is given (projected on first use).
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
