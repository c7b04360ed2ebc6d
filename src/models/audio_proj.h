// hallo.models.audio_proj.AudioProjModel: per-frame window of wav2vec2 layer outputs -> context tokens.
#pragma once
#include "nn/layers.h"
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace emo::models {

struct AudioProjConfig {
  int64_t seq_len = 5;             // window length (2 * 2 + 1)
  int64_t blocks = 12;             // wav2vec2 layers
  int64_t channels = 768;          // wav2vec2 hidden size
  int64_t intermediate_dim = 512;
  int64_t output_dim = 768;
  int64_t context_tokens = 32;
  static AudioProjConfig from_json(const nlohmann::json& j);
};

struct AudioProjModelImpl : torch::nn::Module {
  explicit AudioProjModelImpl(const AudioProjConfig& c);
  // audio windows [B, F, seq_len, blocks, channels] -> context tokens [B, F, context_tokens, output_dim]
  torch::Tensor forward(const torch::Tensor& x);

  AudioProjConfig config;
  emo::nn::Linear proj1{nullptr}, proj2{nullptr}, proj3{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(AudioProjModel);

}  // namespace emo::models
