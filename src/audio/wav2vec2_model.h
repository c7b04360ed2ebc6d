// transformers.models.wav2vec2.modeling_wav2vec2.Wav2Vec2Model (+ Wav2Vec2FeatureProjection), and hallo's
// hallo.models.wav2vec.Wav2VecModel.forward (CNN features interpolated to the video frame count before the
// transformer). State-dict names are HF Wav2Vec2Model's; load Wav2Vec2ForCTC files through KeyScheme::kWav2Vec2.
#pragma once
#include "nn/layers.h"
#include <torch/torch.h>

#include <string>
#include <vector>

#include "audio/wav2vec2_config.h"
#include "audio/wav2vec2_encoder.h"
#include "audio/wav2vec2_feature_encoder.h"

namespace emo::audio {

// Wav2Vec2FeatureProjection: LayerNorm(conv_dim) -> Linear(conv_dim, hidden) (dropout is identity).
struct Wav2Vec2FeatureProjectionImpl : torch::nn::Module {
  explicit Wav2Vec2FeatureProjectionImpl(const Wav2Vec2Config& c);
  // conv features [B, T, C] -> {projected [B, T, D], normed [B, T, C]}
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);

  torch::nn::LayerNorm layer_norm{nullptr};
  emo::nn::Linear projection{nullptr};
};
TORCH_MODULE(Wav2Vec2FeatureProjection);

struct Wav2Vec2Output {
  torch::Tensor conv_features;             // [B, T, C]  (feature_extractor output, transposed)
  torch::Tensor extract_features;          // [B, T, C]  (feature_projection.layer_norm output)
  std::vector<torch::Tensor> hidden_states;  // L+1 x [B, T, D]
};

struct Wav2Vec2ModelImpl : torch::nn::Module {
  explicit Wav2Vec2ModelImpl(const Wav2Vec2Config& c);
  // HF Wav2Vec2Model(input_values, output_hidden_states=True); input_values [B, N] already normalised.
  Wav2Vec2Output forward(const torch::Tensor& input_values);
  // hallo Wav2VecModel.forward(input_values, seq_len): conv features are linearly interpolated
  // (align_corners=True) to seq_len frames before the feature projection and the encoder.
  Wav2Vec2Output forward_hallo(const torch::Tensor& input_values, int64_t seq_len);

  Wav2Vec2Config config;
  Wav2Vec2FeatureEncoder feature_extractor{nullptr};
  Wav2Vec2FeatureProjection feature_projection{nullptr};
  Wav2Vec2Encoder encoder{nullptr};
  torch::Tensor masked_spec_embed;  // SpecAugment (training only); kept so checkpoints load strictly
};
TORCH_MODULE(Wav2Vec2Model);

// hallo.models.wav2vec.linear_interpolation: features [B, T, C] -> [B, seq_len, C] (linear, align_corners=True).
torch::Tensor interpolate_frames(const torch::Tensor& features, int64_t seq_len);

// transformers Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm over the whole clip: (x - mean) / sqrt(var + 1e-7)
// (float32 arithmetic as numpy does it, variance with ddof=0).
torch::Tensor normalize_waveform(const torch::Tensor& x);  // [N] or [1, N]

}  // namespace emo::audio
