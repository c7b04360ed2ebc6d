// hallo.models.image_proj.ImageProjModel (hallo @ 8fd7c57):
// tokens = LayerNorm(proj(embeds).reshape(-1, clip_extra_context_tokens, cross_attention_dim)).
#include "models/image_proj.h"

#include <nlohmann/json.hpp>

#include "emo/error.h"

namespace emo::models {

ImageProjModelConfig ImageProjModelConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw ModelError(source + ": image_proj config must be a JSON object");
  ImageProjModelConfig c;
  auto read = [&](const char* key, int64_t& out) {
    if (!j.contains(key)) return;
    const auto& v = j[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 1)
      throw ModelError(source + ": image_proj '" + key + "' must be a positive integer, got " + v.dump());
    out = v.get<int64_t>();
  };
  read("cross_attention_dim", c.cross_attention_dim);
  read("clip_embeddings_dim", c.clip_embeddings_dim);
  read("clip_extra_context_tokens", c.clip_extra_context_tokens);
  return c;
}

ImageProjModelImpl::ImageProjModelImpl(const ImageProjModelConfig& config) : config_(config) {
  proj = register_module(
      "proj", emo::nn::Linear(config_.clip_embeddings_dim, config_.clip_extra_context_tokens * config_.cross_attention_dim));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({config_.cross_attention_dim}).eps(1e-5)));
}

torch::Tensor ImageProjModelImpl::forward(const torch::Tensor& image_embeds) {
  if (image_embeds.size(-1) != config_.clip_embeddings_dim)
    throw InputError("image_proj: expected embeddings of width " + std::to_string(config_.clip_embeddings_dim) +
                     ", got " + std::to_string(image_embeds.size(-1)));
  auto tokens = proj->forward(image_embeds)  // [B, T * D]
                    .reshape({-1, config_.clip_extra_context_tokens, config_.cross_attention_dim});  // [B, T, D]
  return norm->forward(tokens);  // [B, T, D]
}

}  // namespace emo::models
