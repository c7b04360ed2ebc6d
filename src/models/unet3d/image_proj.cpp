#include "models/unet3d/image_proj.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

namespace emo::models {

ImageProjModelConfig ImageProjModelConfig::from_json(const nlohmann::json& j) {
  ImageProjModelConfig c;
  c.cross_attention_dim = j.value("cross_attention_dim", c.cross_attention_dim);
  c.clip_embeddings_dim = j.value("clip_embeddings_dim", c.clip_embeddings_dim);
  c.clip_extra_context_tokens = j.value("clip_extra_context_tokens", c.clip_extra_context_tokens);
  return c;
}

ImageProjModelImpl::ImageProjModelImpl(const ImageProjModelConfig& c) : config_(c) {
  proj = register_module("proj", torch::nn::Linear(c.clip_embeddings_dim, c.clip_extra_context_tokens * c.cross_attention_dim));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.cross_attention_dim})));
}

torch::Tensor ImageProjModelImpl::forward(const torch::Tensor& image_embeds) {
  auto t = proj->forward(image_embeds).reshape({-1, config_.clip_extra_context_tokens, config_.cross_attention_dim});
  return norm->forward(t);  // [B, T, D]
}

}  // namespace emo::models
