// hallo.models.image_proj.ImageProjModel: projects a face identity embedding (insightface, 512-d in
// Hallo) to `clip_extra_context_tokens` tokens of width cross_attention_dim for the UNets' cross-attention.
#pragma once
#include "nn/layers.h"
#include <torch/torch.h>

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace emo::models {

struct ImageProjModelConfig {
  int64_t cross_attention_dim = 1024;
  int64_t clip_embeddings_dim = 1024;
  int64_t clip_extra_context_tokens = 4;

  // Constructor kwargs as JSON (missing keys keep the defaults). Throws ModelError naming `source`.
  static ImageProjModelConfig from_json(const nlohmann::json& j, const std::string& source = "image_proj config");
};

class ImageProjModelImpl : public torch::nn::Module {
 public:
  explicit ImageProjModelImpl(const ImageProjModelConfig& config);
  // image_embeds [B, clip_embeddings_dim] -> tokens [B, clip_extra_context_tokens, cross_attention_dim]
  torch::Tensor forward(const torch::Tensor& image_embeds);

  const ImageProjModelConfig& config() const { return config_; }

 private:
  ImageProjModelConfig config_;
  emo::nn::Linear proj{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(ImageProjModel);

}  // namespace emo::models
