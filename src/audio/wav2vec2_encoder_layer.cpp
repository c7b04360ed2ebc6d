// transformers.models.wav2vec2.modeling_wav2vec2.Wav2Vec2EncoderLayer
#include "audio/wav2vec2_encoder_layer.h"

#include <algorithm>
#include <cmath>

#include "emo/compat.h"

namespace emo::audio {

Wav2Vec2AttentionImpl::Wav2Vec2AttentionImpl(int64_t d, int64_t h) : heads(h), head_dim(d / h) {
  q_proj = register_module("q_proj", emo::nn::Linear(d, d));
  k_proj = register_module("k_proj", emo::nn::Linear(d, d));
  v_proj = register_module("v_proj", emo::nn::Linear(d, d));
  out_proj = register_module("out_proj", emo::nn::Linear(d, d));
}

torch::Tensor Wav2Vec2AttentionImpl::forward(const torch::Tensor& x) {
  const auto b = x.size(0), t = x.size(1);
  auto split = [&](const torch::Tensor& y) { return y.view({b, t, heads, head_dim}).transpose(1, 2); };  // [B, H, T, d]
  auto q = split(q_proj(x)), k = split(k_proj(x)), v = split(v_proj(x));
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  const int64_t rows = std::max<int64_t>(1, max_score_elements / std::max<int64_t>(1, b * heads * t));
  torch::Tensor o;
  if (rows >= t) {
    o = compat::attention(q, k, v, scale);  // [B, H, T, d]
  } else {
    o = torch::empty_like(q);
    for (int64_t s = 0; s < t; s += rows) {
      const int64_t n = std::min(rows, t - s);
      o.narrow(2, s, n).copy_(compat::attention(q.narrow(2, s, n), k, v, scale));  // [B, H, n, d]
    }
  }
  return out_proj(o.transpose(1, 2).reshape({b, t, heads * head_dim}));                // [B, T, D]
}

Wav2Vec2FeedForwardImpl::Wav2Vec2FeedForwardImpl(const Wav2Vec2Config& c) {
  intermediate_dense = register_module("intermediate_dense", emo::nn::Linear(c.hidden_size, c.intermediate_size));
  output_dense = register_module("output_dense", emo::nn::Linear(c.intermediate_size, c.hidden_size));
}

torch::Tensor Wav2Vec2FeedForwardImpl::forward(const torch::Tensor& x) {
  return output_dense(torch::gelu(intermediate_dense(x)));
}

Wav2Vec2EncoderLayerImpl::Wav2Vec2EncoderLayerImpl(const Wav2Vec2Config& c) {
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)); };
  attention = register_module("attention", Wav2Vec2Attention(c.hidden_size, c.num_attention_heads));
  layer_norm = register_module("layer_norm", ln());
  feed_forward = register_module("feed_forward", Wav2Vec2FeedForward(c));
  final_layer_norm = register_module("final_layer_norm", ln());
}

torch::Tensor Wav2Vec2EncoderLayerImpl::forward(const torch::Tensor& x) {
  auto h = layer_norm(x + attention(x));       // [B, T, D]
  return final_layer_norm(h + feed_forward(h));  // [B, T, D]
}

}  // namespace emo::audio
