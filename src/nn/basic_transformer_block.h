// diffusers.models.attention.BasicTransformerBlock (norm_type="layer_norm", GEGLU feed-forward), with the
// reference-bank hook of hallo.models.mutual_self_attention.ReferenceAttentionControl ("write" mode).
// Children: norm1, attn1, norm2, attn2 (when cross_attention_dim > 0 or double self-attention), norm3, ff.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>

#include "nn/attention.h"
#include "nn/feed_forward.h"

namespace emo::nn {

struct BasicTransformerBlockConfig {
  int64_t dim = 0;
  int64_t num_attention_heads = 8;
  int64_t attention_head_dim = 64;
  int64_t cross_attention_dim = 0;  // 0 = attn2 is self-attention (diffusers: attn2 built with ehs=None)
  bool attention_bias = false;
  bool only_cross_attention = false;  // attn1 attends to encoder_hidden_states
  bool has_attn2 = true;              // diffusers: cross_attention_dim is not None or double_self_attention
  double norm_eps = 1e-5;
};

// What the block does with its norm1 output (hallo's ReferenceAttentionControl MODE).
enum class ReferenceMode {
  kOff,    // plain diffusers block
  kWrite,  // store norm1(hidden_states) in bank(); cross-attention uses ehs.repeat(batch / ehs_batch)
  // kWrite for the last bank writer of a pass whose output nothing reads (UNet2DConditionModel::write_banks): store the
  // bank and return the input unchanged, skipping attn1, attn2 and the feed-forward.
  kWriteBankOnly,
};

class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  explicit BasicTransformerBlockImpl(const BasicTransformerBlockConfig& config);
  // x [B, L, dim]; ehs [Be, Le, cross_dim] (undefined = self-attention in attn2);
  // reference [B, Lr, dim]: extra keys/values for attn1 (hallo read mode: cat([norm1(x), reference])).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& ehs = {},
                        const torch::Tensor& reference = {});

  void set_reference_mode(ReferenceMode mode) { mode_ = mode; }
  ReferenceMode reference_mode() const { return mode_; }
  // norm1 output of the last write-mode forward, [B, L, dim]; undefined before one.
  const torch::Tensor& bank() const { return bank_; }
  void clear_bank() { bank_ = torch::Tensor(); }
  int64_t dim() const { return config_.dim; }
  const BasicTransformerBlockConfig& config() const { return config_; }

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  Attention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};

 private:
  BasicTransformerBlockConfig config_;
  ReferenceMode mode_ = ReferenceMode::kOff;
  torch::Tensor bank_;
};
TORCH_MODULE(BasicTransformerBlock);

// hallo's write-mode pairing: ehs [Be, Le, C] -> [B, Le, C] with row j = ehs[j % Be] (ehs.repeat(B / Be, 1, 1)).
// Returns ehs unchanged when Be == B. Throws ModelError when B is not a multiple of Be.
torch::Tensor repeat_context(const torch::Tensor& ehs, int64_t batch);

}  // namespace emo::nn
