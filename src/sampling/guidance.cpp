// Classifier-free guidance (Ho & Salimans 2022) as Hallo's FaceAnimatePipeline and diffusers'
// StableDiffusionPipeline apply it: noise_pred_uncond + scale * (noise_pred_cond - noise_pred_uncond),
// with the unconditional half first in the doubled batch.
#include <torch/torch.h>

#include "emo/error.h"
#include "emo/scheduler.h"

namespace emo::sampling {

at::Tensor cfg_combine(const at::Tensor& uncond, const at::Tensor& cond, double scale) {
  if (uncond.sizes() != cond.sizes()) throw UsageError("cfg_combine: unconditional and conditional shapes differ");
  return uncond + scale * (cond - uncond);
}

Denoiser guided(Denoiser batched, double scale) {
  if (!batched) throw UsageError("guided: empty denoiser");
  return [batched = std::move(batched), scale](const at::Tensor& x, int64_t t) {
    auto out = batched(torch::cat({x, x}, 0), t);  // [2B, ...] = [uncond; cond]
    if (out.dim() == 0 || out.size(0) != 2 * x.size(0))
      throw UsageError("guided: the batched denoiser must return 2B samples for 2B inputs");
    auto halves = out.chunk(2, 0);
    return cfg_combine(halves[0], halves[1], scale);
  };
}

Denoiser guided(Denoiser uncond, Denoiser cond, double scale) {
  if (!uncond || !cond) throw UsageError("guided: empty denoiser");
  return [uncond = std::move(uncond), cond = std::move(cond), scale](const at::Tensor& x, int64_t t) {
    return cfg_combine(uncond(x, t), cond(x, t), scale);
  };
}

}  // namespace emo::sampling
