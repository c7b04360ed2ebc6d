// hallo.models.transformer_3d.Transformer3DModel (use_linear_projection=False): GroupNorm -> 1x1 conv proj_in ->
// transformer blocks over the H*W tokens of every frame -> 1x1 conv proj_out -> + residual.
// Spatial variant (use_audio_module=False): TemporalBasicTransformerBlock (reference attention + image tokens).
// Audio variant (use_audio_module=True): AudioTemporalBasicTransformerBlock. Its inner width (heads * head_dim) may
// differ from in_channels (hallo builds head_dim from the BLOCK's input width); proj_in/proj_out map between them.
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <utility>
#include <vector>

#include "models/unet3d/audio_transformer_block.h"
#include "models/unet3d/conditions.h"
#include "models/unet3d/temporal_basic_transformer_block.h"

namespace emo::models {

struct Transformer3DModelConfig {
  int64_t num_attention_heads = 16;
  int64_t attention_head_dim = 88;
  int64_t in_channels = 0;
  int64_t num_layers = 1;
  int64_t norm_num_groups = 32;
  int64_t cross_attention_dim = 0;
  bool use_audio_module = false;
  int64_t depth = 0;            // audio: mask level
  bool stack_enabled = true;    // audio: attn2_0/1/2 branches (else one attn2)
  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
};

class Transformer3DModelImpl : public torch::nn::Module {
 public:
  explicit Transformer3DModelImpl(const Transformer3DModelConfig& config);

  // Spatial variant. x [B, C, F, H, W]; context [B, T, D] image tokens (shared by the F frames of each row) or
  // [(B F), T, D]; other row counts throw InputError.
  // Returns the output [B, C, F, H, W] and the first block's bank motion features [B, M, H*W, C] (or undefined).
  // kv_cache: the clip's projected image-token keys/values (UNet3DConditions::context_kv), or null.
  std::pair<torch::Tensor, torch::Tensor> forward_spatial(const torch::Tensor& x, const torch::Tensor& context,
                                                          bool do_classifier_free_guidance,
                                                          emo::nn::ContextKvCache* kv_cache = nullptr);
  // Audio variant. x [B, C, F, H, W]; audio [B, F, tokens, Da] -> [B, C, F, H, W].
  torch::Tensor forward_audio(const torch::Tensor& x, const torch::Tensor& audio, const UNet3DConditions& cond,
                              bool use_motion_scale);

  const Transformer3DModelConfig& config() const { return config_; }
  const std::vector<TemporalBasicTransformerBlock>& spatial_blocks() const { return spatial_; }

  torch::nn::GroupNorm norm{nullptr};
  emo::nn::Conv2d proj_in{nullptr}, proj_out{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};

 private:
  torch::Tensor to_tokens(const torch::Tensor& folded);  // [(B F), C, H, W] -> [(B F), L, inner]
  torch::Tensor from_tokens(const torch::Tensor& h, const torch::Tensor& residual, int64_t frames);  // -> [B, C, F, H, W]

  Transformer3DModelConfig config_;
  std::vector<TemporalBasicTransformerBlock> spatial_;
  std::vector<AudioTemporalBasicTransformerBlock> audio_;
};
TORCH_MODULE(Transformer3DModel);

}  // namespace emo::models
