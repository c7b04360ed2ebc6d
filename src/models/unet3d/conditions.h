// Per-step conditioning handed through the denoising UNet3D (hallo.models.unet_3d.UNet3DConditionModel.forward
// arguments other than sample/timestep), plus the code-path switches that reproduce what Hallo actually runs.
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <memory>
#include <optional>
#include <vector>

namespace emo::nn {
class ContextKvCache;
}

namespace emo::models {

struct UNet3DConditions {
  // Image tokens for every spatial attn2: [B, T, D] (hallo: cat([image_proj(0), image_proj(face_emb)])).
  at::Tensor encoder_hidden_states;
  // Audio tokens: [B, F, tokens, Da] (hallo: cat([zeros, audio_proj(...)])); undefined = no audio modules run.
  at::Tensor audio_embedding;
  // Face-locator features added after conv_in: [B, C0, F, H, W] or undefined.
  at::Tensor mask_cond_fea;
  // Region masks per UNet depth level 0..3 (level 0 = latent resolution): [(B F), H_l*W_l] each.
  std::vector<at::Tensor> full_mask, face_mask, lip_mask;
  // pose/face/lip weights of the three audio branches (hallo: motion_scale). nullopt = 1, 1, 1.
  std::optional<std::array<double, 3>> motion_scale;
  // EMO speed layers: per-frame head rotation speed [B, M + F] (motion frames first) or [B, F]; undefined = no
  // speed conditioning (the speed layers, if present, are skipped).
  at::Tensor head_speed;
  // Classifier-free guidance batch layout [uncond, cond]: the unconditional half (first B*F/2 rows) of every spatial
  // block uses plain self-attention instead of reference attention (ReferenceAttentionControl uc_mask).
  bool do_classifier_free_guidance = true;
  // The unconditional half's audio tokens are all zero (hallo: cat([zeros, audio_proj(...)])). Its audio
  // cross-attention is then a constant per module and is not computed. Only with do_classifier_free_guidance.
  bool uncond_audio_is_zero = false;
  // Keys/values of the image tokens and audio tokens, projected by the first forward with these conditions and reused
  // by the next ones (they are constant within a clip). Null = projected by every forward. Whoever sets it must not
  // change the conditions' tensors while it is set (the pipeline builds new conditions, and a new cache, per clip).
  std::shared_ptr<emo::nn::ContextKvCache> context_kv;
  // true  = the code path hallo's scripts/inference.py runs (module in training mode with gradient checkpointing):
  //         motion frames prepended in the CrossAttn/mid motion modules, motion_scale in every audio module,
  //         DownBlock3D/UpBlock3D motion modules skipped. Fixture output `sample`.
  // false = the .eval() path (fixture output `sample_eval_mode`): no motion-frame concatenation outside the mid block,
  //         motion_scale only in the mid block, every motion module runs.
  bool hallo_training_path = true;
};

}  // namespace emo::models
