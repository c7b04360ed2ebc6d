// hallo.models.image_proj.ImageProjModel: face embedding [B, E] -> Linear -> [B, T, D] -> LayerNorm(D).
// Children: proj, norm.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <nlohmann/json_fwd.hpp>

namespace emo::models {

struct ImageProjModelConfig {
  int64_t cross_attention_dim = 1024;
  int64_t clip_embeddings_dim = 1024;
  int64_t clip_extra_context_tokens = 4;
  static ImageProjModelConfig from_json(const nlohmann::json& j);
};

class ImageProjModelImpl : public torch::nn::Module {
 public:
  explicit ImageProjModelImpl(const ImageProjModelConfig& config);
  torch::Tensor forward(const torch::Tensor& image_embeds);  // [B, E] -> [B, T, D]
  torch::nn::Linear proj{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  ImageProjModelConfig config_;
};
TORCH_MODULE(ImageProjModel);

}  // namespace emo::models
