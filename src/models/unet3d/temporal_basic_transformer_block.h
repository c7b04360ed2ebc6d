// hallo.models.attention.TemporalBasicTransformerBlock as run by hallo.models.mutual_self_attention.
// ReferenceAttentionControl(mode="read", fusion_blocks="full") (the hacked forward), i.e. the denoiser's spatial
// block with reference attention. Children: norm1, attn1, norm2, attn2, norm3, ff.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>

#include <utility>

#include "nn/attention.h"
#include "nn/feed_forward.h"

namespace emo::models {

struct TemporalBasicTransformerBlockConfig {
  int64_t dim = 0;
  int64_t num_attention_heads = 8;
  int64_t attention_head_dim = 40;
  int64_t cross_attention_dim = 0;  // 0 = no attn2/norm2
};

class TemporalBasicTransformerBlockImpl : public torch::nn::Module {
 public:
  explicit TemporalBasicTransformerBlockImpl(const TemporalBasicTransformerBlockConfig& config);

  // x [(B F), L, C]; context [(B F), T, D] (image tokens per frame) or [B, T, D] (shared by
  // the F frames of each row); kv_cache: the clip's projected context keys/values
  // (UNet3DConditions::context_kv) or null.
  // Returns the block output [(B F), L, C] and the motion-frame features [B, M, L, C] taken from the bank
  // (undefined when no bank is set).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& context,
                                                  int64_t video_length, bool do_classifier_free_guidance,
                                                  emo::nn::ContextKvCache* kv_cache = nullptr);

  // ReferenceNet bank of the paired writer block: [B * (1 + M), L, C] (per CFG half: reference image, then the M
  // motion frames), already rounded through fp16 as ReferenceAttentionControl.update() does. Undefined = no bank.
  void set_bank(const torch::Tensor& bank) {
    bank_ = bank;
    ref_k_ = ref_v_ = torch::Tensor();
  }
  const torch::Tensor& bank() const { return bank_; }
  int64_t width() const { return config_.dim; }

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  emo::nn::Attention attn1{nullptr}, attn2{nullptr};
  emo::nn::FeedForward ff{nullptr};

 private:
  TemporalBasicTransformerBlockConfig config_;
  torch::Tensor bank_;
  torch::Tensor ref_k_, ref_v_;  // [B, L, inner]: attn1's keys/values of the reference tokens, once per bank (clip)
};
TORCH_MODULE(TemporalBasicTransformerBlock);

}  // namespace emo::models
