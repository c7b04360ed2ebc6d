#include "nn/embeddings.h"

#include <torch/torch.h>

#include <cmath>

namespace emo::nn {

torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim, bool flip_sin_to_cos, double freq_shift,
                                 double scale, double max_period) {
  const int64_t half = dim / 2;
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(t.device());
  auto exponent = -std::log(max_period) * torch::arange(0, half, opts) / (static_cast<double>(half) - freq_shift);
  auto freqs = torch::exp(exponent);                                          // [half]
  auto args = t.to(torch::kFloat).unsqueeze(1) * freqs.unsqueeze(0);          // [N, half]
  args = args * scale;
  auto emb = torch::cat({torch::sin(args), torch::cos(args)}, -1);           // [N, 2*half]
  if (flip_sin_to_cos) emb = torch::cat({emb.slice(1, half), emb.slice(1, 0, half)}, -1);
  if (dim % 2 == 1) emb = torch::constant_pad_nd(emb, {0, 1});
  return emb;
}

TimestepEmbeddingImpl::TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim) {
  linear_1 = register_module("linear_1", emo::nn::Linear(in_channels, time_embed_dim));
  linear_2 = register_module("linear_2", emo::nn::Linear(time_embed_dim, time_embed_dim));
}

torch::Tensor TimestepEmbeddingImpl::forward(const torch::Tensor& x) {
  return linear_2->forward(torch::silu(linear_1->forward(x)));
}

}  // namespace emo::nn
