// UNet3DConditionModel construction: Hallo's key names and irregular audio-module widths, reader order, config
// parsing, input validation (no weights needed).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>

#include "emo/error.h"
#include "models/unet3d/unet_3d.h"

namespace {

using emo::models::UNet3DConditionModel;
using emo::models::UNet3DConditionModelConfig;

nlohmann::json small_config() {
  return {{"block_out_channels", {32, 64, 128, 128}}, {"layers_per_block", 2},    {"attention_head_dim", 8},
          {"norm_num_groups", 8},                      {"cross_attention_dim", 16}, {"in_channels", 4},
          {"out_channels", 4}};
}
nlohmann::json small_kwargs() {
  return {{"use_inflated_groupnorm", true},
          {"use_motion_module", true},
          {"motion_module_mid_block", true},
          {"motion_module_type", "Vanilla"},
          {"motion_module_kwargs",
           {{"num_attention_heads", 8},
            {"num_transformer_block", 1},
            {"attention_block_types", {"Temporal_Self", "Temporal_Self"}},
            {"temporal_position_encoding", true},
            {"temporal_position_encoding_max_len", 32}}},
          {"use_audio_module", true},
          {"audio_attention_dim", 24},
          {"n_sample_frames", 12},
          {"n_motion_frames", 4}};
}

std::map<std::string, std::vector<int64_t>> shapes(torch::nn::Module& m) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value().sizes().vec();
  for (const auto& b : m.named_buffers()) out[b.key()] = b.value().sizes().vec();
  return out;
}

}  // namespace

TEST(UNet3DLayout, HalloKeyNamesAndIrregularAudioWidths) {
  auto cfg = UNet3DConditionModelConfig::from_json(small_config(), small_kwargs());
  EXPECT_EQ(cfg.clip_frames, 12);
  EXPECT_EQ(cfg.motion_frames, 4);
  UNet3DConditionModel unet(cfg);
  auto s = shapes(*unet);
  using V = std::vector<int64_t>;
  // audio inner width = (block input width // heads) * heads: down_blocks.1 layer 0 reads 32, layer 1 reads 64
  EXPECT_EQ(s.at("down_blocks.1.audio_modules.0.proj_in.weight"), (V{32, 64, 1, 1}));
  EXPECT_EQ(s.at("down_blocks.1.audio_modules.1.proj_in.weight"), (V{64, 64, 1, 1}));
  // up blocks use the block's in_channels for every layer: up_blocks.1 (out 128) in = 64
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(s.at("up_blocks.1.audio_modules." + std::to_string(i) + ".proj_out.weight"), (V{128, 64, 1, 1}));
  EXPECT_EQ(s.at("up_blocks.1.audio_modules.0.transformer_blocks.0.zero_conv_lip.weight"), (V{64, 64, 1, 1}));
  EXPECT_EQ(s.at("up_blocks.1.audio_modules.0.transformer_blocks.0.attn2_2.to_k.weight"), (V{64, 24}));
  EXPECT_EQ(s.at("mid_block.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.pos_encoder.pe"),
            (V{1, 32, 128}));
  EXPECT_EQ(s.at("down_blocks.3.motion_modules.1.temporal_transformer.proj_out.weight"), (V{128, 128}));
  EXPECT_EQ(s.at("up_blocks.0.motion_modules.2.temporal_transformer.norm.weight"), (V{128}));
  EXPECT_EQ(s.at("down_blocks.0.downsamplers.0.conv.weight"), (V{32, 32, 3, 3}));
  EXPECT_EQ(s.at("up_blocks.2.upsamplers.0.conv.weight"), (V{64, 64, 3, 3}));
  EXPECT_EQ(s.at("up_blocks.1.resnets.0.conv1.weight"), (V{128, 256, 3, 3}));
  EXPECT_EQ(s.count("down_blocks.3.audio_modules.0.norm.weight"), 0u);
  EXPECT_EQ(s.count("up_blocks.0.attentions.0.norm.weight"), 0u);
  EXPECT_EQ(s.count("up_blocks.3.upsamplers.0.conv.weight"), 0u);
  EXPECT_EQ(s.count("speed_encoder.net.0.weight"), 0u);
  EXPECT_EQ(s.count("conv_norm_out.weight"), 1u);

  // Widths read from weights override the rule.
  cfg.audio_inner_dims["down_blocks.1"] = {64, 64};
  UNet3DConditionModel unet2(cfg);
  EXPECT_EQ(shapes(*unet2).at("down_blocks.1.audio_modules.0.proj_in.weight"), (V{64, 64, 1, 1}));

  // read_widths_from: audio widths and speed layers follow the weights.
  emo::io::StateDict sd{{"denoising_unet.down_blocks.1.audio_modules.0.proj_in.weight", torch::zeros({16, 64, 1, 1})},
                        {"denoising_unet.down_blocks.1.audio_modules.1.proj_in.weight", torch::zeros({8, 64, 1, 1})}};
  cfg.speed.enabled = true;
  cfg.read_widths_from(sd, "denoising_unet.");
  EXPECT_EQ(cfg.audio_inner_dims.at("down_blocks.1"), (V{16, 8}));
  EXPECT_FALSE(cfg.speed.enabled);  // no speed weights -> exactly Hallo
  sd["denoising_unet.speed_encoder.net.0.weight"] = torch::zeros({7, cfg.speed.input_dim()});
  sd["denoising_unet.speed_encoder.net.2.weight"] = torch::zeros({40, 7});
  cfg.read_widths_from(sd, "denoising_unet.");
  EXPECT_TRUE(cfg.speed.enabled);
  EXPECT_EQ(cfg.speed.hidden_dim, 7);
  EXPECT_EQ(cfg.speed.embed_dim, 40);
  UNet3DConditionModel unet3(cfg);
  auto s3 = shapes(*unet3);
  EXPECT_EQ(s3.at("speed_encoder.net.2.weight"), (V{40, 7}));
  EXPECT_EQ(s3.at("mid_block.motion_modules.0.temporal_transformer.speed_attn.to_k.weight"), (V{128, 40}));
  sd["denoising_unet.speed_encoder.net.0.weight"] = torch::zeros({7, cfg.speed.input_dim() + 1});
  EXPECT_THROW(cfg.read_widths_from(sd, "denoising_unet."), emo::ModelError);
}

TEST(UNet3DLayout, ReaderOrderIsDfsDownUpMidThenWidth) {
  UNet3DConditionModel unet(UNet3DConditionModelConfig::from_json(small_config(), small_kwargs()));
  auto names = unet->reader_block_names();
  ASSERT_EQ(names.size(), 2u + 2u + 2u + 1u + 3u * 3u);
  EXPECT_EQ(names.front(), "down_blocks.2.attentions.0.transformer_blocks.0");
  EXPECT_EQ(names[2], "up_blocks.1.attentions.0.transformer_blocks.0");
  EXPECT_EQ(names[5], "mid_block.attentions.0.transformer_blocks.0");  // mid after up_blocks (registration order)
  EXPECT_EQ(names[6], "down_blocks.1.attentions.0.transformer_blocks.0");
  EXPECT_EQ(names.back(), "up_blocks.3.attentions.2.transformer_blocks.0");
  // Banks: wrong count / motion frames are input errors.
  EXPECT_THROW(unet->set_reference_banks({torch::zeros({10, 4, 128})}), emo::InputError);
  std::vector<torch::Tensor> banks;
  for (auto& b : unet->reader_blocks()) banks.push_back(torch::zeros({6, 4, b->width()}));  // 2 * (1 + 2) != 2 * 5
  EXPECT_THROW(unet->set_reference_banks(banks), emo::InputError);
}

TEST(UNet3DLayout, AcceptsTheSd15TwoDimensionalConfig) {
  // hallo's from_pretrained_2d: the SD1.5 unet config.json with its 2-D block types, mapped to the 3-D blocks.
  auto j = small_config();
  j["down_block_types"] = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"};
  j["up_block_types"] = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
  j["mid_block_type"] = "UNetMidBlock2DCrossAttn";
  auto cfg = UNet3DConditionModelConfig::from_json(j, small_kwargs());
  EXPECT_EQ(cfg.down_block_types.back(), "DownBlock3D");
  EXPECT_EQ(cfg.up_block_types[1], "CrossAttnUpBlock3D");
  EXPECT_EQ(cfg.mid_block_type, "UNetMidBlock3DCrossAttn");
  auto ref = UNet3DConditionModelConfig::from_json(small_config(), small_kwargs());
  UNet3DConditionModel a(cfg), b(ref);
  auto sa = shapes(*a), sb = shapes(*b);
  EXPECT_EQ(sa, sb);
}

TEST(UNet3DLayout, RejectsUnsupportedConfigs) {
  auto k = small_kwargs();
  k["use_inflated_groupnorm"] = false;
  EXPECT_THROW(UNet3DConditionModelConfig::from_json(small_config(), k), emo::ModelError);
  k = small_kwargs();
  k["motion_module_kwargs"]["attention_block_types"] = {"Temporal_Cross"};
  auto cfg = UNet3DConditionModelConfig::from_json(small_config(), k);
  EXPECT_THROW(UNet3DConditionModel{cfg}, emo::ModelError);
}
