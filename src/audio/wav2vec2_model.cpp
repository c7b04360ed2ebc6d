// transformers.models.wav2vec2.modeling_wav2vec2.Wav2Vec2Model / hallo.models.wav2vec.Wav2VecModel
#include "audio/wav2vec2_model.h"

namespace emo::audio {

namespace F = torch::nn::functional;

Wav2Vec2FeatureProjectionImpl::Wav2Vec2FeatureProjectionImpl(const Wav2Vec2Config& c) {
  const int64_t cdim = c.conv_dim.back();
  layer_norm = register_module("layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cdim}).eps(c.layer_norm_eps)));
  projection = register_module("projection", emo::nn::Linear(cdim, c.hidden_size));
}

std::pair<torch::Tensor, torch::Tensor> Wav2Vec2FeatureProjectionImpl::forward(const torch::Tensor& x) {
  auto normed = layer_norm(x);           // [B, T, C]
  return {projection(normed), normed};  // [B, T, D], [B, T, C]
}

Wav2Vec2ModelImpl::Wav2Vec2ModelImpl(const Wav2Vec2Config& c) : config(c) {
  feature_extractor = register_module("feature_extractor", Wav2Vec2FeatureEncoder(c));
  feature_projection = register_module("feature_projection", Wav2Vec2FeatureProjection(c));
  encoder = register_module("encoder", Wav2Vec2Encoder(c));
  masked_spec_embed = register_parameter("masked_spec_embed", torch::zeros({c.hidden_size}));
}

Wav2Vec2Output Wav2Vec2ModelImpl::forward(const torch::Tensor& input_values) {
  Wav2Vec2Output o;
  o.conv_features = feature_extractor(input_values).transpose(1, 2);  // [B, T, C]
  auto [hidden, normed] = feature_projection(o.conv_features);
  o.extract_features = normed;
  o.hidden_states = encoder(hidden);
  return o;
}

Wav2Vec2Output Wav2Vec2ModelImpl::forward_hallo(const torch::Tensor& input_values, int64_t seq_len) {
  Wav2Vec2Output o;
  auto conv = feature_extractor(input_values).transpose(1, 2);  // [B, T', C]
  o.conv_features = interpolate_frames(conv, seq_len);          // [B, seq_len, C]
  auto [hidden, normed] = feature_projection(o.conv_features);
  o.extract_features = normed;
  o.hidden_states = encoder(hidden);
  return o;
}

torch::Tensor interpolate_frames(const torch::Tensor& features, int64_t seq_len) {
  auto x = features.transpose(1, 2);  // [B, C, T]
  auto y = F::interpolate(x, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{seq_len})
                                 .mode(torch::kLinear)
                                 .align_corners(true));
  return y.transpose(1, 2);  // [B, seq_len, C]
}

torch::Tensor normalize_waveform(const torch::Tensor& x) {
  auto mean = x.mean();
  auto var = (x - mean).pow(2).mean();
  return (x - mean) / (var + 1e-7).sqrt();
}

}  // namespace emo::audio
