// diffusers.models.transformers.transformer_2d.Transformer2DModel (continuous input, norm_type="layer_norm").
// Children: norm (GroupNorm eps 1e-6), proj_in (1x1 Conv2d, or Linear with use_linear_projection),
// transformer_blocks.N (BasicTransformerBlock), proj_out; output = proj_out(blocks(proj_in(norm(x)))) + x.
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "nn/basic_transformer_block.h"

namespace emo::nn {

struct Transformer2DModelConfig {
  int64_t num_attention_heads = 16;
  int64_t attention_head_dim = 88;
  int64_t in_channels = 0;
  int64_t num_layers = 1;
  int64_t cross_attention_dim = 0;  // 0 = no encoder_hidden_states (attn2 is self-attention)
  int64_t norm_num_groups = 32;
  bool attention_bias = false;
  bool use_linear_projection = false;
  bool only_cross_attention = false;
  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
};

class Transformer2DModelImpl : public torch::nn::Module {
 public:
  explicit Transformer2DModelImpl(const Transformer2DModelConfig& config);
  // x [B, C, H, W]; ehs [Be, Le, cross_dim] -> [B, C, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& ehs = {});

  torch::nn::GroupNorm norm{nullptr};
  emo::nn::Conv2d proj_in_conv{nullptr}, proj_out_conv{nullptr};    // registered as proj_in / proj_out
  emo::nn::Linear proj_in_linear{nullptr}, proj_out_linear{nullptr};  // (use_linear_projection)
  torch::nn::ModuleList transformer_blocks{nullptr};
  const std::vector<BasicTransformerBlock>& blocks() const { return blocks_; }

 private:
  Transformer2DModelConfig config_;
  std::vector<BasicTransformerBlock> blocks_;
};
TORCH_MODULE(Transformer2DModel);

}  // namespace emo::nn
