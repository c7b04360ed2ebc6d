#include "models/unet3d/block_common.h"

#include <torch/torch.h>

#include "emo/error.h"

namespace emo::models {

namespace {
constexpr const char* kFile_block_common = "block_common.cpp";
}

Transformer3DModel make_audio_module(const UNetBlock3DConfig& c, size_t layer, int64_t rule_in_channels) {
  Transformer3DModelConfig t;
  t.num_attention_heads = c.attn_num_head_channels;
  int64_t inner = layer < c.audio_inner_dims.size() ? c.audio_inner_dims[layer] : 0;
  if (inner <= 0) inner = (rule_in_channels / c.attn_num_head_channels) * c.attn_num_head_channels;
  if (inner % c.attn_num_head_channels != 0)
    throw ModelError(std::string(kFile_block_common) + ": audio module width " + std::to_string(inner) + " is not a multiple of " +
                     std::to_string(c.attn_num_head_channels) + " heads");
  t.attention_head_dim = inner / c.attn_num_head_channels;
  t.in_channels = c.out_channels;
  t.num_layers = 1;
  t.norm_num_groups = c.resnet_groups;
  t.cross_attention_dim = c.audio_attention_dim;
  t.use_audio_module = true;
  t.depth = c.depth;
  t.stack_enabled = c.audio_stack_enabled;
  return Transformer3DModel(t);
}

Transformer3DModel make_spatial_module(const UNetBlock3DConfig& c, int64_t channels) {
  Transformer3DModelConfig t;
  t.num_attention_heads = c.attn_num_head_channels;
  t.attention_head_dim = channels / c.attn_num_head_channels;
  t.in_channels = channels;
  t.num_layers = 1;
  t.norm_num_groups = c.resnet_groups;
  t.cross_attention_dim = c.cross_attention_dim;
  return Transformer3DModel(t);
}

torch::Tensor speed_for_frames(const torch::Tensor& speed_tokens, int64_t frames) {
  if (!speed_tokens.defined()) return speed_tokens;
  if (speed_tokens.size(1) < frames)
    throw InputError(std::string(kFile_block_common) + ": " + std::to_string(speed_tokens.size(1)) + " speed tokens for " +
                     std::to_string(frames) + " temporal frames");
  return speed_tokens.slice(1, speed_tokens.size(1) - frames);  // [B, frames, S]
}

torch::Tensor run_cross_attn_layer(Transformer3DModelImpl& attn, Transformer3DModelImpl* audio,
                                   VanillaTemporalModuleImpl* motion, const torch::Tensor& x,
                                   const UNet3DConditions& cond, const torch::Tensor& speed_tokens,
                                   bool prepend_motion, bool use_motion_scale) {
  auto [h, motion_feats] =
      attn.forward_spatial(x, cond.encoder_hidden_states, cond.do_classifier_free_guidance, cond.context_kv.get());
  if (audio && cond.audio_embedding.defined()) h = audio->forward_audio(h, cond.audio_embedding, cond, use_motion_scale);
  if (!motion) return h;
  const auto b = h.size(0), c = h.size(1), hh = h.size(3), ww = h.size(4);
  if (prepend_motion && motion_feats.defined() && motion_feats.size(1) > 0) {
    // bank motion features [B, M, H*W, C] -> "b f (d1 d2) c -> b c f d1 d2" (square maps in hallo; row-major tokens)
    const auto m = motion_feats.size(1);
    auto mf = motion_feats.to(h.dtype()).reshape({b, m, hh, ww, c}).permute({0, 4, 1, 2, 3});  // [B, C, M, H, W]
    auto seq = torch::cat({mf, h}, 2);                                                         // [B, C, M + F, H, W]
    // hallo runs the motion module on all M + F frames and slices the motion frames off its output; they are only
    // keys/values here, and their output rows are never computed.
    return motion->forward(seq, speed_for_frames(speed_tokens, seq.size(2)), m);  // [B, C, F, H, W]
  }
  // hallo's fallback without a bank prepends 4 zero frames; the pipeline always sets banks, so we run without any.
  return motion->forward(h, speed_for_frames(speed_tokens, h.size(2)));
}

MotionModuleConfig motion_config_for(const UNetBlock3DConfig& c, int64_t channels) {
  auto mc = c.motion;
  mc.in_channels = channels;
  return mc;
}

}  // namespace emo::models
