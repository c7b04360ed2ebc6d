// hallo.models.face_locator.FaceLocator: a small conv stack that embeds the face-region mask
// (b, c, f, H, W) into (b, C0, f, H/2^k, W/2^k); its output is added to the denoising UNet's conv_in.
#pragma once
#include "nn/layers.h"
#include <torch/torch.h>

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace emo::models {

struct FaceLocatorConfig {
  int64_t conditioning_embedding_channels = 320;
  int64_t conditioning_channels = 3;
  std::vector<int64_t> block_out_channels = {16, 32, 64, 128};

  // Constructor kwargs as JSON (missing keys keep the defaults). Throws ModelError naming `source`.
  static FaceLocatorConfig from_json(const nlohmann::json& j, const std::string& source = "face_locator config");
};

class FaceLocatorImpl : public torch::nn::Module {
 public:
  explicit FaceLocatorImpl(const FaceLocatorConfig& config);
  // conditioning [B, C, F, H, W] -> embedding [B, C0, F, H', W']
  torch::Tensor forward(const torch::Tensor& conditioning);

  const FaceLocatorConfig& config() const { return config_; }

 private:
  FaceLocatorConfig config_;
  emo::nn::Conv2d conv_in{nullptr};
  torch::nn::ModuleList blocks{nullptr};  // pairs: 3x3 stride 1, then 3x3 stride 2
  std::vector<emo::nn::Conv2d> block_convs_;  // typed views of `blocks`
  emo::nn::Conv2d conv_out{nullptr};
};
TORCH_MODULE(FaceLocator);

}  // namespace emo::models
