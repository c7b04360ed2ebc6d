// transformers.models.wav2vec2.modeling_wav2vec2.Wav2Vec2Encoder (do_stable_layer_norm=False), with
// Wav2Vec2PositionalConvEmbedding (weight-normed grouped Conv1d + SamePad + GELU).
#pragma once
#include <torch/torch.h>

#include <vector>

#include "audio/wav2vec2_config.h"
#include "audio/wav2vec2_encoder_layer.h"

namespace emo::audio {

// nn.utils.weight_norm(nn.Conv1d(D, D, K, padding=K//2, groups=G), name="weight", dim=2):
// parameters weight_g [1, 1, K], weight_v [D, D/G, K], bias [D]; weight = g * v / ||v||_(dims 0,1).
struct WeightNormConv1dImpl : torch::nn::Module {
  WeightNormConv1dImpl(int64_t channels, int64_t kernel, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);  // [B, D, T] -> [B, D, T + 1 - K%2... ]
  torch::Tensor weight() const;

  int64_t kernel, groups;
  torch::Tensor weight_g, weight_v, bias;
};
TORCH_MODULE(WeightNormConv1d);

struct Wav2Vec2PositionalConvEmbeddingImpl : torch::nn::Module {
  explicit Wav2Vec2PositionalConvEmbeddingImpl(const Wav2Vec2Config& c);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T, D] -> [B, T, D]

  WeightNormConv1d conv{nullptr};
  bool remove_last = false;  // SamePad for even kernels
};
TORCH_MODULE(Wav2Vec2PositionalConvEmbedding);

struct Wav2Vec2EncoderImpl : torch::nn::Module {
  explicit Wav2Vec2EncoderImpl(const Wav2Vec2Config& c);
  // hidden [B, T, D] -> HF's hidden_states tuple: [0] = after pos-conv + LayerNorm, [i] = output of layer i.
  std::vector<torch::Tensor> forward(const torch::Tensor& hidden);

  Wav2Vec2PositionalConvEmbedding pos_conv_embed{nullptr};
  torch::nn::LayerNorm layer_norm{nullptr};
  torch::nn::ModuleList layers;
};
TORCH_MODULE(Wav2Vec2Encoder);

}  // namespace emo::audio
