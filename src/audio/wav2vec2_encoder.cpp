// transformers.models.wav2vec2.modeling_wav2vec2.Wav2Vec2Encoder
#include "audio/wav2vec2_encoder.h"

namespace emo::audio {

namespace F = torch::nn::functional;

WeightNormConv1dImpl::WeightNormConv1dImpl(int64_t d, int64_t k, int64_t g) : kernel(k), groups(g) {
  weight_g = register_parameter("weight_g", torch::ones({1, 1, k}));
  weight_v = register_parameter("weight_v", torch::randn({d, d / g, k}) * 0.02);
  bias = register_parameter("bias", torch::zeros({d}));
}

torch::Tensor WeightNormConv1dImpl::weight() const {
  auto norm = weight_v.pow(2).sum(torch::IntArrayRef{0, 1}, /*keepdim=*/true).sqrt();  // [1, 1, K]
  return weight_v * (weight_g / norm);                                // [D, D/G, K]
}

torch::Tensor WeightNormConv1dImpl::forward(const torch::Tensor& x) {
  return F::conv1d(x, weight(), F::Conv1dFuncOptions().bias(bias).padding(kernel / 2).groups(groups));
}

Wav2Vec2PositionalConvEmbeddingImpl::Wav2Vec2PositionalConvEmbeddingImpl(const Wav2Vec2Config& c)
    : remove_last(c.num_conv_pos_embeddings % 2 == 0) {
  conv = register_module("conv", WeightNormConv1d(c.hidden_size, c.num_conv_pos_embeddings, c.num_conv_pos_embedding_groups));
}

torch::Tensor Wav2Vec2PositionalConvEmbeddingImpl::forward(const torch::Tensor& x) {
  auto h = conv(x.transpose(1, 2));                        // [B, D, T (+1)]
  if (remove_last) h = h.narrow(2, 0, h.size(2) - 1);      // SamePad
  return torch::gelu(h).transpose(1, 2);                   // [B, T, D]
}

Wav2Vec2EncoderImpl::Wav2Vec2EncoderImpl(const Wav2Vec2Config& c) {
  pos_conv_embed = register_module("pos_conv_embed", Wav2Vec2PositionalConvEmbedding(c));
  layer_norm = register_module("layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(Wav2Vec2EncoderLayer(c));
}

std::vector<torch::Tensor> Wav2Vec2EncoderImpl::forward(const torch::Tensor& hidden) {
  std::vector<torch::Tensor> states;
  auto h = layer_norm(hidden + pos_conv_embed(hidden));  // [B, T, D]
  states.push_back(h);
  for (const auto& m : *layers) {
    h = m->as<Wav2Vec2EncoderLayer>()->forward(h);
    states.push_back(h);
  }
  return states;
}

}  // namespace emo::audio
