// transformers.models.wav2vec2.modeling_wav2vec2.Wav2Vec2FeatureEncoder
// (Wav2Vec2GroupNormConvLayer + Wav2Vec2NoLayerNormConvLayer), feat_extract_norm="group".
#pragma once
#include <torch/torch.h>

#include "audio/wav2vec2_config.h"

namespace emo::audio {

// One conv layer: Conv1d (no padding) -> [GroupNorm(C, C) for layer 0] -> GELU.
struct Wav2Vec2ConvLayerImpl : torch::nn::Module {
  Wav2Vec2ConvLayerImpl(const Wav2Vec2Config& c, int64_t layer_id);
  torch::Tensor forward(const torch::Tensor& x);  // [B, Cin, T] -> [B, Cout, T']

  torch::nn::Conv1d conv{nullptr};
  torch::nn::GroupNorm layer_norm{nullptr};  // layer 0 only
};
TORCH_MODULE(Wav2Vec2ConvLayer);

struct Wav2Vec2FeatureEncoderImpl : torch::nn::Module {
  explicit Wav2Vec2FeatureEncoderImpl(const Wav2Vec2Config& c);
  // input_values [B, N] -> conv features [B, C, T']
  torch::Tensor forward(const torch::Tensor& input_values);
  // Same result for B = 1 with bounded memory: at most `chunk_frames` output frames are computed at once
  // (the first layer's GroupNorm statistics are gathered over the whole clip in a first pass). Exact up to
  // float summation order.
  torch::Tensor forward_chunked(const torch::Tensor& input_values, int64_t chunk_frames);

  Wav2Vec2Config config;
  torch::nn::ModuleList conv_layers;
};
TORCH_MODULE(Wav2Vec2FeatureEncoder);

}  // namespace emo::audio
