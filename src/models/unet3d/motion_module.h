// hallo.models.motion_module.VanillaTemporalModule (AnimateDiff v2 motion module) with its parts
// TemporalTransformer3DModel, TemporalTransformerBlock, VersatileAttention and PositionalEncoding.
// State-dict layout (per module): temporal_transformer.{norm, proj_in, transformer_blocks.N.{attention_blocks.K.
// {to_q, to_k, to_v, to_out.0, pos_encoder.pe}, norms.K, ff.net.{0.proj,2}, ff_norm}, proj_out}.
// EMO extension (absent in Hallo, see docs/speed-layers.md): temporal_transformer.{speed_norm, speed_attn}, a
// cross-attention from every temporal token to the per-frame speed embeddings, output projection zero-initialised.
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "nn/attention.h"
#include "nn/feed_forward.h"

namespace emo::models {

// VanillaTemporalModule(in_channels, **motion_module_kwargs)
struct MotionModuleConfig {
  int64_t in_channels = 0;
  int64_t num_attention_heads = 8;
  int64_t num_transformer_block = 2;
  std::vector<std::string> attention_block_types{"Temporal_Self", "Temporal_Self"};
  bool temporal_position_encoding = false;
  int64_t temporal_position_encoding_max_len = 24;
  int64_t temporal_attention_dim_div = 1;
  int64_t norm_num_groups = 32;  // hard-coded in TemporalTransformer3DModel
  // EMO speed layers: width of the speed embedding tokens (0 = no speed layers, exactly Hallo/AnimateDiff).
  int64_t speed_embed_dim = 0;

  int64_t head_dim() const { return in_channels / num_attention_heads / temporal_attention_dim_div; }
  int64_t inner_dim() const { return num_attention_heads * head_dim(); }
  // `kwargs` = hallo's motion_module_kwargs dict (unknown keys are ignored; cross_frame_attention_mode must be null).
  static MotionModuleConfig from_json(int64_t in_channels, const nlohmann::json& kwargs);
};

// hallo.models.motion_module.PositionalEncoding: persistent buffer `pe` [1, max_len, d_model] (sin at even, cos at odd).
class PositionalEncodingImpl : public torch::nn::Module {
 public:
  PositionalEncodingImpl(int64_t d_model, int64_t max_len);
  torch::Tensor forward(const torch::Tensor& x);  // [N, F, C] -> x + pe[:, :F]
  torch::Tensor pe;
};
TORCH_MODULE(PositionalEncoding);

// hallo.models.motion_module.VersatileAttention (attention_mode "Temporal", self-attention only): a diffusers
// Attention over the frame axis of every pixel, with the positional encoding added to its (normed) input.
class VersatileAttentionImpl : public emo::nn::AttentionImpl {
 public:
  VersatileAttentionImpl(const emo::nn::AttentionConfig& config, bool position_encoding, int64_t max_len);
  // x [(B F), D, C] -> [(B (F - skip)), D, C]  (D = H*W tokens per frame). Every frame gives keys and values; only
  // the frames from `skip` on are queried (the outputs of the first `skip` frames are not computed).
  torch::Tensor forward_temporal(const torch::Tensor& x, int64_t video_length, int64_t skip = 0);
  PositionalEncoding pos_encoder{nullptr};
};
TORCH_MODULE(VersatileAttention);

// hallo.models.motion_module.TemporalTransformerBlock
class TemporalTransformerBlockImpl : public torch::nn::Module {
 public:
  TemporalTransformerBlockImpl(const MotionModuleConfig& config);
  // x [(B F), D, C] -> [(B (F - skip)), D, C]: the first `skip` frames feed the attentions' keys and values but their
  // own rows are dropped before the last attention's queries (their outputs would be thrown away).
  torch::Tensor forward(const torch::Tensor& x, int64_t video_length, int64_t skip = 0);
  torch::nn::ModuleList attention_blocks{nullptr}, norms{nullptr};
  emo::nn::FeedForward ff{nullptr};
  torch::nn::LayerNorm ff_norm{nullptr};

 private:
  std::vector<VersatileAttention> attn_;
  std::vector<torch::nn::LayerNorm> norm_;
};
TORCH_MODULE(TemporalTransformerBlock);

// hallo.models.motion_module.TemporalTransformer3DModel (+ EMO speed cross-attention when configured)
class TemporalTransformer3DModelImpl : public torch::nn::Module {
 public:
  explicit TemporalTransformer3DModelImpl(const MotionModuleConfig& config);
  // x [B, C, F, H, W]; speed [B, F, speed_embed_dim] or undefined (speed layers skipped) -> [B, C, F - skip, H, W].
  // skip > 0: the first `skip` frames (hallo's prepended motion frames) are context only; their outputs, which hallo
  // computes and then slices off, are not computed (the kept frames' values are the same).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& speed = {}, int64_t skip = 0);
  bool has_speed_layers() const { return static_cast<bool>(speed_attn); }

  torch::nn::GroupNorm norm{nullptr};
  emo::nn::Linear proj_in{nullptr}, proj_out{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};
  torch::nn::LayerNorm speed_norm{nullptr};
  emo::nn::Attention speed_attn{nullptr};

 private:
  MotionModuleConfig config_;
  std::vector<TemporalTransformerBlock> blocks_;
};
TORCH_MODULE(TemporalTransformer3DModel);

// Per-pixel cross-attention from temporal tokens to per-frame speed tokens (EMO speed layers).
// h [(B D), F, C] (the sequence of pixel d over the frames), speed [B, F, S] -> attention output [(B D), F, C].
torch::Tensor speed_cross_attention(emo::nn::AttentionImpl& attn, const torch::Tensor& h, const torch::Tensor& speed);

// hallo.models.motion_module.VanillaTemporalModule
class VanillaTemporalModuleImpl : public torch::nn::Module {
 public:
  explicit VanillaTemporalModuleImpl(const MotionModuleConfig& config);
  // x [B, C, F, H, W] -> [B, C, F - skip, H, W] (see TemporalTransformer3DModel::forward). Hallo passes
  // encoder_hidden_states too; both blocks are Temporal_Self so it is unused and not taken here.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& speed = {}, int64_t skip = 0);
  const MotionModuleConfig& config() const { return config_; }
  TemporalTransformer3DModel temporal_transformer{nullptr};

 private:
  MotionModuleConfig config_;
};
TORCH_MODULE(VanillaTemporalModule);

}  // namespace emo::models
