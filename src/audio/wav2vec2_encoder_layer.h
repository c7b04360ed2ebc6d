// transformers.models.wav2vec2.modeling_wav2vec2.Wav2Vec2EncoderLayer (post-LN; with Wav2Vec2Attention and
// Wav2Vec2FeedForward, which have no other users).
#pragma once
#include "nn/layers.h"
#include <torch/torch.h>

#include "audio/wav2vec2_config.h"

namespace emo::audio {

// transformers Wav2Vec2Attention (bias on all projections, scale head_dim^-0.5, no mask at inference).
struct Wav2Vec2AttentionImpl : torch::nn::Module {
  Wav2Vec2AttentionImpl(int64_t embed_dim, int64_t num_heads);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T, D] -> [B, T, D]

  int64_t heads, head_dim;
  // Queries are processed in row blocks so that at most this many attention scores exist at once
  // (exact: softmax is per query row). Bounds memory on long clips (15000 frames x 12 heads would be 10.8 GB).
  int64_t max_score_elements = int64_t{1} << 24;
  emo::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(Wav2Vec2Attention);

// transformers Wav2Vec2FeedForward: intermediate_dense -> GELU -> output_dense.
struct Wav2Vec2FeedForwardImpl : torch::nn::Module {
  explicit Wav2Vec2FeedForwardImpl(const Wav2Vec2Config& c);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T, D]

  emo::nn::Linear intermediate_dense{nullptr}, output_dense{nullptr};
};
TORCH_MODULE(Wav2Vec2FeedForward);

struct Wav2Vec2EncoderLayerImpl : torch::nn::Module {
  explicit Wav2Vec2EncoderLayerImpl(const Wav2Vec2Config& c);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T, D]

  Wav2Vec2Attention attention{nullptr};
  torch::nn::LayerNorm layer_norm{nullptr};
  Wav2Vec2FeedForward feed_forward{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(Wav2Vec2EncoderLayer);

}  // namespace emo::audio
