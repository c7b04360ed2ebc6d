// transformers.models.wav2vec2.modeling_wav2vec2.Wav2Vec2FeatureEncoder
#include "audio/wav2vec2_feature_encoder.h"

namespace emo::audio {

namespace F = torch::nn::functional;

Wav2Vec2ConvLayerImpl::Wav2Vec2ConvLayerImpl(const Wav2Vec2Config& c, int64_t i) {
  const int64_t cin = i == 0 ? 1 : c.conv_dim[i - 1];
  conv = register_module("conv", torch::nn::Conv1d(torch::nn::Conv1dOptions(cin, c.conv_dim[i], c.conv_kernel[i])
                                                       .stride(c.conv_stride[i])
                                                       .bias(c.conv_bias)));
  if (i == 0)
    layer_norm = register_module(
        "layer_norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.conv_dim[0], c.conv_dim[0]).eps(1e-5).affine(true)));
}

torch::Tensor Wav2Vec2ConvLayerImpl::forward(const torch::Tensor& x) {
  auto h = conv(x);                    // [B, C, T']
  if (layer_norm) h = layer_norm(h);  // per-channel statistics over time
  return torch::gelu(h);
}

Wav2Vec2FeatureEncoderImpl::Wav2Vec2FeatureEncoderImpl(const Wav2Vec2Config& c) : config(c) {
  conv_layers = register_module("conv_layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < static_cast<int64_t>(c.conv_dim.size()); ++i) conv_layers->push_back(Wav2Vec2ConvLayer(c, i));
}

torch::Tensor Wav2Vec2FeatureEncoderImpl::forward(const torch::Tensor& input_values) {
  auto h = input_values.unsqueeze(1);  // [B, 1, N]
  for (const auto& m : *conv_layers) h = m->as<Wav2Vec2ConvLayer>()->forward(h);
  return h;  // [B, C, T']
}

torch::Tensor Wav2Vec2FeatureEncoderImpl::forward_chunked(const torch::Tensor& input_values, int64_t chunk_frames) {
  TORCH_CHECK(input_values.dim() == 2 && input_values.size(0) == 1, "forward_chunked expects [1, N]");
  const int64_t n = input_values.size(1);
  const int64_t total = config.num_frames(n);
  if (chunk_frames <= 0 || total <= chunk_frames) return forward(input_values);

  auto* l0 = conv_layers[0]->as<Wav2Vec2ConvLayer>();
  const int64_t k0 = config.conv_kernel[0], s0 = config.conv_stride[0];
  const int64_t stride = config.total_stride(), rf = config.receptive_field();
  const int64_t len0 = (n - k0) / s0 + 1;  // first-layer frames
  const auto x = input_values.unsqueeze(1);  // [1, 1, N]

  // Pass 1: per-channel mean/variance of the first conv's output over the whole clip (GroupNorm with
  // groups == channels normalises each channel over time).
  const int64_t block0 = chunk_frames * (stride / s0);
  torch::Tensor sum, sumsq;
  for (int64_t a = 0; a < len0; a += block0) {
    const int64_t b = std::min(len0, a + block0);
    auto y = l0->conv(x.narrow(2, a * s0, (b - 1) * s0 + k0 - a * s0));  // [1, C, b-a]
    auto s = torch::sum(y, torch::IntArrayRef{0, 2}, false, torch::kDouble);
    auto q = torch::sum(y * y, torch::IntArrayRef{0, 2}, false, torch::kDouble);
    sum = sum.defined() ? sum + s : s;
    sumsq = sumsq.defined() ? sumsq + q : q;
  }
  auto mean = sum / static_cast<double>(len0);
  auto var = (sumsq / static_cast<double>(len0) - mean * mean).clamp_min(0.0);
  auto gn = l0->layer_norm;
  auto scale = (gn->weight.to(torch::kDouble) / (var + gn->options.eps()).sqrt());  // [C]
  auto shift = gn->bias.to(torch::kDouble) - mean * scale;
  scale = scale.to(torch::kFloat).view({1, -1, 1});
  shift = shift.to(torch::kFloat).view({1, -1, 1});

  // Pass 2: output frames [t0, t1) need samples [t0*stride, (t1-1)*stride + rf).
  std::vector<torch::Tensor> parts;
  for (int64_t t0 = 0; t0 < total; t0 += chunk_frames) {
    const int64_t t1 = std::min(total, t0 + chunk_frames);
    const int64_t a = t0 * stride, b = std::min(n, (t1 - 1) * stride + rf);
    auto h = l0->conv(x.narrow(2, a, b - a));
    h = torch::gelu(h * scale + shift);
    for (size_t i = 1; i < conv_layers->size(); ++i) h = conv_layers[i]->as<Wav2Vec2ConvLayer>()->forward(h);
    TORCH_CHECK(h.size(2) == t1 - t0, "wav2vec2 chunked CNN: frame count mismatch");
    parts.push_back(h);
  }
  return torch::cat(parts, 2);  // [1, C, T']
}

}  // namespace emo::audio
