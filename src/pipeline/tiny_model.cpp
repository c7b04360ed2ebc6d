#include "emo/tiny_model.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "audio/wav2vec2_model.h"
#include "emo/error.h"
#include "emo/state_dict.h"
#include "models/audio_proj.h"
#include "models/autoencoder_kl.h"
#include "models/face_locator.h"
#include "models/image_proj.h"
#include "models/unet3d/unet_3d.h"
#include "models/unet_2d_condition.h"
#include "pipeline/sidecar.h"

namespace fs = std::filesystem;

namespace emo {

namespace {

// Small but structurally complete configs (SD1.5 block layout, 4 VAE levels => latent = size / 8).
const char* kUnetConfig = R"({"_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 4,
  "block_out_channels": [32, 32, 64, 64], "center_input_sample": false, "cross_attention_dim": 48,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 1,
  "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 16, "out_channels": 4, "sample_size": 8,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]})";

const char* kVaeConfig = R"({"_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3,
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
  "block_out_channels": [16, 32, 32, 32], "layers_per_block": 1, "act_fn": "silu", "latent_channels": 4,
  "norm_num_groups": 16, "sample_size": 64, "scaling_factor": 0.18215})";

const char* kWav2VecConfig = R"({"model_type": "wav2vec2", "architectures": ["Wav2Vec2ForCTC"], "conv_bias": false,
  "conv_dim": [32, 32, 32, 32, 32, 32, 32], "conv_kernel": [10, 3, 3, 3, 3, 2, 2], "conv_stride": [5, 2, 2, 2, 2, 2, 2],
  "do_stable_layer_norm": false, "feat_extract_activation": "gelu", "feat_extract_norm": "group",
  "hidden_act": "gelu", "hidden_size": 24, "intermediate_size": 48, "layer_norm_eps": 1e-05,
  "num_attention_heads": 4, "num_conv_pos_embedding_groups": 4, "num_conv_pos_embeddings": 16,
  "num_feat_extract_layers": 7, "num_hidden_layers": 3})";

const char* kUnetKwargs = R"({"motion_module_kwargs": {"num_attention_heads": 4, "num_transformer_block": 1,
  "attention_block_types": ["Temporal_Self", "Temporal_Self"], "temporal_position_encoding": true,
  "temporal_position_encoding_max_len": 32, "temporal_attention_dim_div": 1}, "audio_attention_dim": 40})";

// Full size: the real configs of Hallo's pretrained_models/ (stable-diffusion-v1-5/unet, sd-vae-ft-mse,
// wav2vec2-base-960h) and hallo configs/inference/default.yaml's unet_additional_kwargs.
const char* kFullUnetConfig = R"({"_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8,
  "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": false, "cross_attention_dim": 768,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
  "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]})";

const char* kFullVaeConfig = R"({"_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3,
  "sample_size": 256, "scaling_factor": 0.18215,
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]})";

const char* kFullWav2VecConfig = R"({"model_type": "wav2vec2", "architectures": ["Wav2Vec2ForCTC"], "conv_bias": false,
  "conv_dim": [512, 512, 512, 512, 512, 512, 512], "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
  "conv_stride": [5, 2, 2, 2, 2, 2, 2], "do_stable_layer_norm": false, "feat_extract_activation": "gelu",
  "feat_extract_norm": "group", "hidden_act": "gelu", "hidden_size": 768, "intermediate_size": 3072,
  "layer_norm_eps": 1e-05, "num_attention_heads": 12, "num_conv_pos_embedding_groups": 16,
  "num_conv_pos_embeddings": 128, "num_feat_extract_layers": 7, "num_hidden_layers": 12, "vocab_size": 32})";

const char* kFullUnetKwargs = R"({"use_inflated_groupnorm": true, "unet_use_cross_frame_attention": false,
  "unet_use_temporal_attention": false, "use_motion_module": true, "use_audio_module": true,
  "motion_module_resolutions": [1, 2, 4, 8], "motion_module_mid_block": true, "motion_module_decoder_only": false,
  "motion_module_type": "Vanilla", "motion_module_kwargs": {"num_attention_heads": 8, "num_transformer_block": 1,
  "attention_block_types": ["Temporal_Self", "Temporal_Self"], "temporal_position_encoding": true,
  "temporal_position_encoding_max_len": 32, "temporal_attention_dim_div": 1}, "audio_attention_dim": 768,
  "stack_enable_blocks_name": ["up", "down", "mid"], "stack_enable_blocks_depth": [0, 1, 2, 3]})";

void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p);
  out << s;
  if (!out) throw OutputError(p.string() + ": cannot write");
}

// Deterministic small random weights (default libtorch init can blow activations up in deep stacks), stored in
// `dtype` (parameters are cast one by one, so a full-size module never exists twice in fp32).
void randomise(torch::nn::Module& m, io::StateDict& out, const std::string& prefix, torch::ScalarType dtype) {
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters()) {
    auto& t = p.value();
    const auto& k = p.key();
    bool is_norm = k.find("norm") != std::string::npos && t.dim() == 1;
    if (is_norm && k.size() > 6 && k.compare(k.size() - 6, 6, "weight") == 0) t.fill_(1.0).add_(torch::randn_like(t) * 0.05);
    else if (t.dim() == 1) t.copy_(torch::randn_like(t) * 0.02);
    else t.copy_(torch::randn_like(t) / std::sqrt(static_cast<double>(t.numel() / t.size(0))));
    out[prefix + k] = t.detach().to(dtype).clone();
  }
  for (auto& b : m.named_buffers())
    out[prefix + b.key()] = b.value().is_floating_point() ? b.value().detach().to(dtype).clone() : b.value().detach().clone();
}

}  // namespace

void write_tiny_model(const std::string& dir, const TinyModelOptions& o) {
  torch::manual_seed(o.seed);
  const fs::path root(dir);
  for (const char* sub : {"hallo", "sd-vae-ft-mse", "stable-diffusion-v1-5/unet", "wav2vec/wav2vec2-base-960h"})
    fs::create_directories(root / sub);
  const bool full = o.full_size;
  auto unet_cfg = nlohmann::json::parse(full ? kFullUnetConfig : kUnetConfig);
  auto kwargs = nlohmann::json::parse(full ? kFullUnetKwargs : kUnetKwargs);
  const auto dt = full ? torch::kHalf : torch::kFloat;  // Hallo's published weights are fp16
  if (o.preset != "hallo" && o.preset != "emo") throw UsageError("tiny model preset must be hallo or emo (got '" + o.preset + "')");
  // EMO speed layers (small widths); Hallo has none.
  const nlohmann::json speed = {{"enabled", true}, {"hidden_dim", 16}, {"embed_dim", 16}};

  io::StateDict net;
  {
    auto c = models::UNet2DConditionConfig::from_json(unet_cfg, "tiny unet config");
    c.reference_net = true;
    models::UNet2DConditionModel m(c);
    randomise(*m, net, "reference_unet.", dt);
  }
  {
    auto k = kwargs;
    if (o.preset == "emo") k["speed_layers"] = speed;
    k["n_sample_frames"] = o.clip_frames;
    k["n_motion_frames"] = o.motion_frames;
    auto c = models::UNet3DConditionModelConfig::from_json(unet_cfg, k);
    models::UNet3DConditionModel m(c);
    randomise(*m, net, "denoising_unet.", dt);
  }
  {
    models::FaceLocatorConfig c;
    if (!full) {  // full size: hallo's FaceLocator(conditioning_embedding_channels=320) defaults
      c.conditioning_embedding_channels = 32;
      c.block_out_channels = {8, 16, 32, 32};
    }
    models::FaceLocator m(c);
    randomise(*m, net, "face_locator.", dt);
  }
  {
    models::ImageProjModelConfig c;
    c.cross_attention_dim = full ? 768 : 48;
    c.clip_embeddings_dim = 512;
    c.clip_extra_context_tokens = 4;
    models::ImageProjModel m(c);
    randomise(*m, net, "imageproj.", dt);
  }
  {
    models::AudioProjConfig c;
    c.seq_len = 5;
    if (!full) {  // full size: hallo's AudioProjModel(5, 12, 768, 512, 768, 32) = the defaults
      c.blocks = 3;
      c.channels = 24;
      c.intermediate_dim = 32;
      c.output_dim = 40;
      c.context_tokens = 6;
    }
    models::AudioProjModel m(c);
    randomise(*m, net, "audioproj.", dt);
  }
  // Hallo's file name; the content is safetensors (emo sniffs formats, so .pth and .safetensors read alike).
  io::write_safetensors((root / "hallo" / "net.pth").string(), net, {{"format", "pt"}, {"emo", full ? "full-size random-weight test model" : "tiny test model"}});

  write_text(root / "stable-diffusion-v1-5" / "unet" / "config.json", unet_cfg.dump(2));

  {
    auto vcfg = nlohmann::json::parse(full ? kFullVaeConfig : kVaeConfig);
    models::AutoencoderKL m(models::AutoencoderKLConfig::from_json(vcfg, "tiny vae config"));
    io::StateDict sd;
    randomise(*m, sd, "", dt);
    write_text(root / "sd-vae-ft-mse" / "config.json", vcfg.dump(2));
    io::write_safetensors((root / "sd-vae-ft-mse" / "diffusion_pytorch_model.safetensors").string(), sd);
  }
  {
    auto wcfg = nlohmann::json::parse(full ? kFullWav2VecConfig : kWav2VecConfig);
    audio::Wav2Vec2Model m(audio::Wav2Vec2Config::from_json(wcfg, "tiny wav2vec2 config"));
    io::StateDict sd;
    randomise(*m, sd, "", dt);
    write_text(root / "wav2vec" / "wav2vec2-base-960h" / "config.json", wcfg.dump(2));
    io::write_safetensors((root / "wav2vec" / "wav2vec2-base-960h" / "model.safetensors").string(), sd);
  }
  if (o.preset == "emo") kwargs["speed_layers"] = speed;
  nlohmann::json emo = {{"preset", o.preset}, {"clip_frames", o.clip_frames}, {"motion_frames", o.motion_frames},
                        {"width", o.size},    {"height", o.size},             {"steps", o.steps},
                        {"fps", o.fps},       {"speed_layers", o.preset == "emo"}, {"unet_additional_kwargs", kwargs}};
  // A full-size Hallo folder is exactly Hallo's layout: no emo.json, the preset's defaults (512x512, 16 + 2
  // frames, 40 steps) apply as for a user's pretrained_models/.
  if (!full || o.preset != "hallo") write_text(root / "emo.json", emo.dump(2));
}

}  // namespace emo
