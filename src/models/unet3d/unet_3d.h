// hallo.models.unet_3d.UNet3DConditionModel: the EMO/Hallo denoising backbone. 2-D layers per frame over
// [B, C, F, H, W] (SD1.5 layout) with, per CrossAttn layer: ResnetBlock3D -> spatial Transformer3DModel (reference
// attention + image tokens) -> audio Transformer3DModel -> VanillaTemporalModule. Key names are hallo's, so the
// `denoising_unet.` part of hallo's net.pth loads strictly (emo::io::load_module with prefix "denoising_unet.").
// EMO extension: speed layers (speed_encoder + speed_attn in every motion module), off for Hallo.
#pragma once
#include "nn/layers.h"
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "emo/state_dict.h"
#include "models/unet3d/conditions.h"
#include "models/unet3d/cross_attn_down_block_3d.h"
#include "models/unet3d/cross_attn_up_block_3d.h"
#include "models/unet3d/down_block_3d.h"
#include "models/unet3d/mid_block_3d.h"
#include "models/unet3d/speed_encoder.h"
#include "models/unet3d/up_block_3d.h"
#include "nn/embeddings.h"

namespace emo::models {

struct UNet3DConditionModelConfig {
  // diffusers/hallo config.json
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  std::vector<std::string> down_block_types{"CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D",
                                            "DownBlock3D"};
  std::string mid_block_type = "UNetMidBlock3DCrossAttn";
  std::vector<std::string> up_block_types{"UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D",
                                          "CrossAttnUpBlock3D"};
  std::vector<int64_t> block_out_channels{320, 640, 1280, 1280};
  int64_t layers_per_block = 2;
  int64_t downsample_padding = 1;
  double mid_block_scale_factor = 1;
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  int64_t cross_attention_dim = 768;
  std::vector<int64_t> attention_head_dim{8, 8, 8, 8};  // per down block; hallo uses it as the HEAD COUNT
  bool center_input_sample = false;
  // unet_additional_kwargs
  bool use_motion_module = true;
  std::vector<int64_t> motion_module_resolutions{1, 2, 4, 8};
  bool motion_module_mid_block = true;
  bool motion_module_decoder_only = false;
  MotionModuleConfig motion;  // from motion_module_kwargs
  bool use_audio_module = true;
  int64_t audio_attention_dim = 768;
  std::vector<std::string> stack_enable_blocks_name{"up", "down", "mid"};
  std::vector<int64_t> stack_enable_blocks_depth{0, 1, 2, 3};
  // Audio module inner widths read from the weights: "down_blocks.1" -> {320, 640}, ... (empty = hallo's rule).
  std::map<std::string, std::vector<int64_t>> audio_inner_dims;
  // EMO: frames per clip and motion frames (Hallo 16 + 2, EMO 12 + 4). The UNet takes any F; motion_frames is
  // checked against the banks and sizes the speed padding.
  int64_t clip_frames = 16;
  int64_t motion_frames = 2;
  SpeedLayersConfig speed;

  // `config` = the from_config dict, `kwargs` = unet_additional_kwargs (may also carry the EMO keys
  // n_sample_frames, n_motion_frames and speed_layers).
  static UNet3DConditionModelConfig from_json(const nlohmann::json& config, const nlohmann::json& kwargs);
  // Reads from a state dict what hallo's config does not determine: the audio modules' inner widths
  // (`<prefix>...audio_modules.N.proj_in.weight`) and whether speed layers exist (`<prefix>speed_encoder.*`:
  // enabled with the weights' widths when present, disabled when absent).
  void read_widths_from(const io::StateDict& weights, const std::string& prefix = "");
};

class UNet3DConditionModelImpl : public torch::nn::Module {
 public:
  explicit UNet3DConditionModelImpl(const UNet3DConditionModelConfig& config);

  // sample [B, Cin, F, H, W] (B = 2 with CFG: [uncond, cond]); timestep: 0-dim, [1] or [B] -> [B, Cout, F, H, W]
  torch::Tensor forward(const torch::Tensor& sample, const torch::Tensor& timestep, const UNet3DConditions& cond);

  // The reader blocks in ReferenceAttentionControl order (DFS over down_blocks, up_blocks, mid_block — hallo
  // registers mid_block after up_blocks — then a stable sort by width, widest first). Bank i pairs with the
  // ReferenceNet writer block i sorted the same way.
  std::vector<TemporalBasicTransformerBlock> reader_blocks() const;
  // Module paths of reader_blocks(), e.g. "down_blocks.2.attentions.0.transformer_blocks.0".
  std::vector<std::string> reader_block_names() const;
  // Hands the ReferenceNet banks over (one per reader block, [B * (1 + motion_frames), L, C]); rounds them through
  // fp16 as ReferenceAttentionControl.update(dtype=torch.float16) does. Empty vector = clear.
  void set_reference_banks(const std::vector<torch::Tensor>& banks);

  const UNet3DConditionModelConfig& config() const { return config_; }

  emo::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  emo::nn::TimestepEmbedding time_embedding{nullptr};
  torch::nn::ModuleList down_blocks{nullptr}, up_blocks{nullptr};
  UNetMidBlock3DCrossAttn mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
  SpeedEncoder speed_encoder{nullptr};

 private:
  torch::Tensor speed_tokens(const torch::Tensor& head_speed, int64_t frames, int64_t batch);

  UNet3DConditionModelConfig config_;
  std::vector<CrossAttnDownBlock3D> down_xattn_;  // by index (null holder where the block is a DownBlock3D)
  std::vector<DownBlock3D> down_plain_;
  std::vector<CrossAttnUpBlock3D> up_xattn_;
  std::vector<UpBlock3D> up_plain_;
  std::vector<std::pair<std::string, TemporalBasicTransformerBlock>> readers_;  // sorted
};
TORCH_MODULE(UNet3DConditionModel);

}  // namespace emo::models
