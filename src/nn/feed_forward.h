// diffusers.models.attention.FeedForward with activation_fn="geglu" (diffusers.models.activations.GEGLU).
// Children: net.0.proj (Linear dim -> 2*inner), net.1 (Dropout), net.2 (Linear inner -> dim_out).
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

namespace emo::nn {

// diffusers.models.activations.GEGLU: x, gate = proj(x).chunk(2, -1); x * gelu(gate) (exact erf GELU)
class GEGLUImpl : public torch::nn::Module {
 public:
  GEGLUImpl(int64_t dim_in, int64_t dim_out);
  torch::Tensor forward(const torch::Tensor& x);
  emo::nn::Linear proj{nullptr};
};
TORCH_MODULE(GEGLU);

struct FeedForwardConfig {
  int64_t dim = 0;
  int64_t dim_out = 0;  // 0 = dim
  int64_t mult = 4;
};

class FeedForwardImpl : public torch::nn::Module {
 public:
  explicit FeedForwardImpl(const FeedForwardConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // [B, L, dim] -> [B, L, dim_out]
  // forward(x) + residual, chunked over the rows on the CPU (compat::geglu_feed_forward).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);  // [B, L, dim] -> [B, L, dim_out]
  torch::nn::ModuleList net{nullptr};

 private:
  GEGLU geglu_{nullptr};
  emo::nn::Linear out_{nullptr};
};
TORCH_MODULE(FeedForward);

}  // namespace emo::nn
