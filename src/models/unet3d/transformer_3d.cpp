#include "models/unet3d/transformer_3d.h"

#include <torch/torch.h>

#include "emo/error.h"
#include "nn/resnet.h"

namespace emo::models {

namespace {
constexpr const char* kFile_transformer_3d = "transformer_3d.cpp";
}

Transformer3DModelImpl::Transformer3DModelImpl(const Transformer3DModelConfig& c) : config_(c) {
  const int64_t inner = c.inner_dim();
  if (c.in_channels <= 0 || inner <= 0) throw ModelError(std::string(kFile_transformer_3d) + ": invalid Transformer3DModel widths");
  norm = register_module("norm",
                         torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, c.in_channels).eps(1e-6)));
  proj_in = register_module("proj_in", emo::nn::Conv2d(torch::nn::Conv2dOptions(c.in_channels, inner, 1)));
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    if (c.use_audio_module) {
      AudioTemporalBasicTransformerBlockConfig bc;
      bc.dim = inner;
      bc.num_attention_heads = c.num_attention_heads;
      bc.attention_head_dim = c.attention_head_dim;
      bc.cross_attention_dim = c.cross_attention_dim;
      bc.depth = c.depth;
      bc.stack_enabled = c.stack_enabled;
      AudioTemporalBasicTransformerBlock b(bc);
      transformer_blocks->push_back(b);
      audio_.push_back(b);
    } else {
      TemporalBasicTransformerBlockConfig bc{inner, c.num_attention_heads, c.attention_head_dim, c.cross_attention_dim};
      TemporalBasicTransformerBlock b(bc);
      transformer_blocks->push_back(b);
      spatial_.push_back(b);
    }
  }
  proj_out = register_module("proj_out", emo::nn::Conv2d(torch::nn::Conv2dOptions(inner, c.in_channels, 1)));
}

torch::Tensor Transformer3DModelImpl::to_tokens(const torch::Tensor& folded) {
  const auto n = folded.size(0), hw = folded.size(2) * folded.size(3);
  auto h = proj_in->forward(norm->forward(folded));  // [(B F), inner, H, W]
  return h.permute({0, 2, 3, 1}).reshape({n, hw, h.size(1)});  // [(B F), L, inner]
}

torch::Tensor Transformer3DModelImpl::from_tokens(const torch::Tensor& h, const torch::Tensor& residual,
                                                  int64_t frames) {
  const auto n = residual.size(0), hh = residual.size(2), ww = residual.size(3);
  auto m = h.reshape({n, hh, ww, h.size(2)}).permute({0, 3, 1, 2}).contiguous();  // [(B F), inner, H, W]
  return emo::nn::unfold_frames(proj_out->forward(m) + residual, frames);         // [B, C, F, H, W]
}

std::pair<torch::Tensor, torch::Tensor> Transformer3DModelImpl::forward_spatial(const torch::Tensor& x,
                                                                                const torch::Tensor& context,
                                                                                bool cfg,
                                                                                emo::nn::ContextKvCache* kv_cache) {
  if (config_.use_audio_module) throw ModelError(std::string(kFile_transformer_3d) + ": forward_spatial on an audio module");
  const auto b = x.size(0), f = x.size(2);
  auto residual = emo::nn::fold_frames(x);  // [(B F), C, H, W]
  // einops repeat "b n c -> (b f) n c" when the batch differs: each clip's tokens shared by its frames. Not repeated
  // here: cross_attention reads context row i / F for query row i, so the keys are projected once per clip row.
  if (context.size(0) != b && context.size(0) != b * f)
    throw InputError(std::string(kFile_transformer_3d) + ": image tokens have " + std::to_string(context.size(0)) +
                     " rows; expected B=" + std::to_string(b) + " or B*F=" + std::to_string(b * f));
  auto h = to_tokens(residual);
  torch::Tensor motion;
  for (size_t i = 0; i < spatial_.size(); ++i) {
    auto [out, mf] = spatial_[i]->forward(h, context, f, cfg, kv_cache);
    h = out;
    if (i == 0) motion = mf;  // hallo keeps motion_frames[0] (the first block's first bank)
  }
  return {from_tokens(h, residual, f), motion};
}

torch::Tensor Transformer3DModelImpl::forward_audio(const torch::Tensor& x, const torch::Tensor& audio,
                                                    const UNet3DConditions& cond, bool use_motion_scale) {
  if (!config_.use_audio_module) throw ModelError(std::string(kFile_transformer_3d) + ": forward_audio on a spatial module");
  const auto b = x.size(0), f = x.size(2);
  if (audio.dim() != 4 || audio.size(0) != b || audio.size(1) != f)
    throw InputError(std::string(kFile_transformer_3d) + ": audio tokens must be [B, F, tokens, dim] with B=" + std::to_string(b) +
                     ", F=" + std::to_string(f));
  auto a = audio.reshape({b * f, audio.size(2), audio.size(3)}).to(x.dtype());  // "bs f m d -> (bs f) m d"
  auto residual = emo::nn::fold_frames(x);
  auto h = to_tokens(residual);
  const std::optional<std::array<double, 3>> scale = use_motion_scale ? cond.motion_scale : std::nullopt;
  // [uncond, cond] halves: the first (B / 2) F rows, when their audio is known to be zero.
  const int64_t zero_rows = cond.do_classifier_free_guidance && cond.uncond_audio_is_zero ? (b / 2) * f : 0;
  for (auto& block : audio_) h = block->forward(h, a, cond.full_mask, cond.face_mask, cond.lip_mask, scale, zero_rows,
                           cond.context_kv.get());
  return from_tokens(h, residual, f);
}

}  // namespace emo::models
