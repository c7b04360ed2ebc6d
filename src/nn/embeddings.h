// diffusers.models.embeddings.Timesteps / get_timestep_embedding and TimestepEmbedding.
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

namespace emo::nn {

// t [N] (any numeric dtype) -> [N, dim] float32: exponent = -ln(max_period) * i / (half - freq_shift);
// emb = [sin(t * f), cos(t * f)], flipped to [cos, sin] when flip_sin_to_cos.
torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim, bool flip_sin_to_cos, double freq_shift,
                                 double scale = 1.0, double max_period = 10000.0);

// linear_1 -> SiLU -> linear_2
class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim);
  torch::Tensor forward(const torch::Tensor& x);
  emo::nn::Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

}  // namespace emo::nn
