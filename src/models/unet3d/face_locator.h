// hallo.models.face_locator.FaceLocator: face-region mask [B, 3, F, H, W] -> per-frame conv stack ->
// [B, C0, F, H/2^k, W/2^k], added to the denoiser's conv_in output. Children: conv_in, blocks.N, conv_out (zero-init).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include <nlohmann/json_fwd.hpp>
#include <vector>

namespace emo::models {

struct FaceLocatorConfig {
  int64_t conditioning_embedding_channels = 320;
  int64_t conditioning_channels = 3;
  std::vector<int64_t> block_out_channels{16, 32, 64, 128};
  static FaceLocatorConfig from_json(const nlohmann::json& j);
};

class FaceLocatorImpl : public torch::nn::Module {
 public:
  explicit FaceLocatorImpl(const FaceLocatorConfig& config);
  torch::Tensor forward(const torch::Tensor& conditioning);  // [B, 3, F, H, W] -> [B, C0, F, H', W']
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList blocks{nullptr};

 private:
  std::vector<torch::nn::Conv2d> blocks_;
};
TORCH_MODULE(FaceLocator);

}  // namespace emo::models
