// diffusers.models.attention_processor.Attention (AttnProcessor semantics, no group norm / spatial norm).
// Used for self-attention, cross-attention and hallo's reference attention (keys/values from
// cat([own tokens, reference tokens])). Children: to_q, to_k, to_v, to_out.0 (+ to_out.1 = Dropout).
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

namespace emo::nn {

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
  const AttentionConfig& config() const { return config_; }

  emo::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};

 private:
  AttentionConfig config_;
  emo::nn::Linear out_proj_{nullptr};  // == to_out[0], typed
};
TORCH_MODULE(Attention);

// [B, L, H*D] -> [B, H, L, D]
torch::Tensor split_heads(const torch::Tensor& x, int64_t heads);
// [B, H, L, D] -> [B, L, H*D]
torch::Tensor merge_heads(const torch::Tensor& x);

}  // namespace emo::nn
