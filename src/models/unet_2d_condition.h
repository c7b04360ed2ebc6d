// diffusers.models.unets.unet_2d_condition.UNet2DConditionModel (SD-1.x/2.x subset), and hallo's modified copy
// hallo.models.unet_2d_condition.UNet2DConditionModel used as the ReferenceNet (no conv_norm_out/conv_out,
// forward returns the last up block's output, every BasicTransformerBlock writes a reference bank).
// Children: conv_in, time_embedding, down_blocks.N, up_blocks.N, mid_block, [conv_norm_out, conv_out].
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "nn/basic_transformer_block.h"
#include "nn/down_block_2d.h"
#include "nn/embeddings.h"
#include "nn/mid_block_2d.h"
#include "nn/up_block_2d.h"

namespace emo::models {

struct UNet2DConditionConfig {
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  bool center_input_sample = false;
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  std::vector<std::string> down_block_types{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                            "DownBlock2D"};
  std::string mid_block_type = "UNetMidBlock2DCrossAttn";
  std::vector<std::string> up_block_types{"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                          "CrossAttnUpBlock2D"};
  std::vector<bool> only_cross_attention;  // per down block (empty = all false)
  std::vector<int64_t> block_out_channels{320, 640, 1280, 1280};
  std::vector<int64_t> layers_per_block{2};            // one value or one per block
  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1.0;
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  std::vector<int64_t> cross_attention_dim{1280};      // one value or one per block
  std::vector<int64_t> transformer_layers_per_block{1};
  std::vector<int64_t> num_attention_heads{8};         // resolved: config num_attention_heads or attention_head_dim
  bool use_linear_projection = false;
  int64_t conv_in_kernel = 3;
  int64_t conv_out_kernel = 3;
  // hallo's ReferenceNet variant: no conv_norm_out / conv_out, forward returns the last up block output.
  bool reference_net = false;

  // diffusers config.json (missing keys take diffusers' defaults). Throws ModelError (naming `source`) for
  // options this port does not implement (class/addition embeddings, other block types, ...).
  static UNet2DConditionConfig from_json(const nlohmann::json& j, const std::string& source = "config.json");
  std::string summary() const;
};

class UNet2DConditionModelImpl : public torch::nn::Module {
 public:
  explicit UNet2DConditionModelImpl(const UNet2DConditionConfig& config);
  // sample [B, Cin, H, W]; timestep: scalar or [B] (any numeric dtype); ehs [Be, L, cross_dim]
  // -> [B, Cout, H, W] (reference_net: [B, block_out_channels[0], H, W], the last up block's output)
  torch::Tensor forward(const torch::Tensor& sample, const torch::Tensor& timestep, const torch::Tensor& ehs);

  // Every BasicTransformerBlock in hallo's reference-attention order: module DFS order with up_blocks BEFORE
  // mid_block (hallo's registration order), then stably sorted by decreasing channel count.
  std::vector<nn::BasicTransformerBlock> transformer_blocks_in_bank_order() const;
  // ReferenceAttentionControl(mode="write") pass: runs forward with every block in write mode and returns the
  // norm1 outputs [B, H*W, C] in bank order (see above). Blocks are back in kOff mode afterwards.
  std::vector<torch::Tensor> write_banks(const torch::Tensor& sample, const torch::Tensor& timestep,
                                         const torch::Tensor& ehs);
  const UNet2DConditionConfig& config() const { return config_; }

  emo::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  nn::TimestepEmbedding time_embedding{nullptr};
  torch::nn::ModuleList down_blocks{nullptr}, up_blocks{nullptr};
  nn::UNetMidBlock2DCrossAttn mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

 private:
  UNet2DConditionConfig config_;
  std::vector<nn::DownBlock2D> down_;
  std::vector<nn::UpBlock2D> up_;
};
TORCH_MODULE(UNet2DConditionModel);

}  // namespace emo::models
