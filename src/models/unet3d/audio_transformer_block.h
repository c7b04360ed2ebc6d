// hallo.models.attention.AudioTemporalBasicTransformerBlock: per-frame self-attention, then three cross-attentions
// on the frame's audio tokens (full / face / lip branches), each weighted by its region mask at the block's depth
// level and passed through a zero-initialised 1x1 conv, summed with motion_scale weights; then GEGLU FF.
// Children: norm1, attn1, norm2, attn2_0, attn2_1, attn2_2 (or attn2 when the block is not stack-enabled),
// zero_conv_full, zero_conv_face, zero_conv_lip, norm3, ff.
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <array>
#include <optional>
#include <vector>

#include "nn/attention.h"
#include "nn/feed_forward.h"

namespace emo::models {

struct AudioTemporalBasicTransformerBlockConfig {
  int64_t dim = 0;
  int64_t num_attention_heads = 8;
  int64_t attention_head_dim = 40;
  int64_t cross_attention_dim = 768;  // audio token width
  int64_t depth = 0;                  // mask level
  bool stack_enabled = true;          // unet_block_name in stack_enable_blocks_name and depth in ..._depth
};

// A branch's to_out and zero_conv folded into one per-token linear map (the mask between them is one scalar per
// token): zero_conv(m * to_out(a)) = m * (W_zc W_o a + W_zc b_o) + b_zc. Derived from the weights on first use and
// again whenever either weight changes (a later load).
struct FoldedBranchOutput {
  torch::Tensor w, b;  // [C, inner], [C]
  const void* src_o = nullptr;
  const void* src_zc = nullptr;
  int64_t version_o = -1, version_zc = -1;
  c10::ScalarType dtype = c10::ScalarType::Undefined;
};

class AudioTemporalBasicTransformerBlockImpl : public torch::nn::Module {
 public:
  explicit AudioTemporalBasicTransformerBlockImpl(const AudioTemporalBasicTransformerBlockConfig& config);
  // x [(B F), L, C]; audio [(B F), tokens, Da]; masks: per-level [(B F), L] tensors (level = config depth).
  // zero_audio_rows: the first rows whose audio tokens are all zero (hallo's unconditional half). Their cross-attention
  // output is the constant to_out(to_v(0)) (every key and value is the same), so it is not computed for them.
  // kv_cache: the clip's projected audio keys/values (UNet3DConditions::context_kv; the same audio every call) or null.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& audio, const std::vector<torch::Tensor>& full_mask,
                        const std::vector<torch::Tensor>& face_mask, const std::vector<torch::Tensor>& lip_mask,
                        const std::optional<std::array<double, 3>>& motion_scale, int64_t zero_audio_rows = 0,
                        emo::nn::ContextKvCache* kv_cache = nullptr);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  emo::nn::Attention attn1{nullptr}, attn2{nullptr}, attn2_0{nullptr}, attn2_1{nullptr}, attn2_2{nullptr};
  emo::nn::Conv2d zero_conv_full{nullptr}, zero_conv_face{nullptr}, zero_conv_lip{nullptr};
  emo::nn::FeedForward ff{nullptr};

 private:
  AudioTemporalBasicTransformerBlockConfig config_;
  std::array<FoldedBranchOutput, 3> folded_;  // full, face, lip
};
TORCH_MODULE(AudioTemporalBasicTransformerBlock);

}  // namespace emo::models
