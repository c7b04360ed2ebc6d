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

void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p);
  out << s;
  if (!out) throw OutputError(p.string() + ": cannot write");
}

// Deterministic small random weights (default libtorch init can blow activations up in deep stacks).
void randomise(torch::nn::Module& m, io::StateDict& out, const std::string& prefix) {
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters()) {
    auto& t = p.value();
    const auto& k = p.key();
    bool is_norm = k.find("norm") != std::string::npos && t.dim() == 1;
    if (is_norm && k.size() > 6 && k.compare(k.size() - 6, 6, "weight") == 0) t.fill_(1.0).add_(torch::randn_like(t) * 0.05);
    else if (t.dim() == 1) t.copy_(torch::randn_like(t) * 0.02);
    else t.copy_(torch::randn_like(t) / std::sqrt(static_cast<double>(t.numel() / t.size(0))));
    out[prefix + k] = t.detach().clone();
  }
  for (auto& b : m.named_buffers()) out[prefix + b.key()] = b.value().detach().clone();
}

}  // namespace

void write_tiny_model(const std::string& dir, const TinyModelOptions& o) {
  torch::manual_seed(o.seed);
  const fs::path root(dir);
  for (const char* sub : {"hallo", "sd-vae-ft-mse", "stable-diffusion-v1-5/unet", "wav2vec/wav2vec2-base-960h"})
    fs::create_directories(root / sub);
  auto unet_cfg = nlohmann::json::parse(kUnetConfig);
  auto kwargs = nlohmann::json::parse(kUnetKwargs);
  if (o.preset != "hallo" && o.preset != "emo") throw UsageError("tiny model preset must be hallo or emo (got '" + o.preset + "')");
  // EMO speed layers (small widths); Hallo has none.
  const nlohmann::json speed = {{"enabled", true}, {"hidden_dim", 16}, {"embed_dim", 16}};

  io::StateDict net;
  {
    auto c = models::UNet2DConditionConfig::from_json(unet_cfg, "tiny unet config");
    c.reference_net = true;
    models::UNet2DConditionModel m(c);
    randomise(*m, net, "reference_unet.");
  }
  {
    auto k = kwargs;
    if (o.preset == "emo") k["speed_layers"] = speed;
    k["n_sample_frames"] = o.clip_frames;
    k["n_motion_frames"] = o.motion_frames;
    auto c = models::UNet3DConditionModelConfig::from_json(unet_cfg, k);
    models::UNet3DConditionModel m(c);
    randomise(*m, net, "denoising_unet.");
  }
  {
    models::FaceLocatorConfig c;
    c.conditioning_embedding_channels = 32;
    c.block_out_channels = {8, 16, 32, 32};
    models::FaceLocator m(c);
    randomise(*m, net, "face_locator.");
  }
  {
    models::ImageProjModelConfig c;
    c.cross_attention_dim = 48;
    c.clip_embeddings_dim = 512;
    c.clip_extra_context_tokens = 4;
    models::ImageProjModel m(c);
    randomise(*m, net, "imageproj.");
  }
  {
    models::AudioProjConfig c;
    c.seq_len = 5;
    c.blocks = 3;
    c.channels = 24;
    c.intermediate_dim = 32;
    c.output_dim = 40;
    c.context_tokens = 6;
    models::AudioProjModel m(c);
    randomise(*m, net, "audioproj.");
  }
  // Hallo's file name; the content is safetensors (emo sniffs formats, so .pth and .safetensors read alike).
  io::write_safetensors((root / "hallo" / "net.pth").string(), net, {{"format", "pt"}, {"emo", "tiny test model"}});

  write_text(root / "stable-diffusion-v1-5" / "unet" / "config.json", unet_cfg.dump(2));

  {
    auto vcfg = nlohmann::json::parse(kVaeConfig);
    models::AutoencoderKL m(models::AutoencoderKLConfig::from_json(vcfg, "tiny vae config"));
    io::StateDict sd;
    randomise(*m, sd, "");
    write_text(root / "sd-vae-ft-mse" / "config.json", vcfg.dump(2));
    io::write_safetensors((root / "sd-vae-ft-mse" / "diffusion_pytorch_model.safetensors").string(), sd);
  }
  {
    auto wcfg = nlohmann::json::parse(kWav2VecConfig);
    audio::Wav2Vec2Model m(audio::Wav2Vec2Config::from_json(wcfg, "tiny wav2vec2 config"));
    io::StateDict sd;
    randomise(*m, sd, "");
    write_text(root / "wav2vec" / "wav2vec2-base-960h" / "config.json", wcfg.dump(2));
    io::write_safetensors((root / "wav2vec" / "wav2vec2-base-960h" / "model.safetensors").string(), sd);
  }
  if (o.preset == "emo") kwargs["speed_layers"] = speed;
  nlohmann::json emo = {{"preset", o.preset}, {"clip_frames", o.clip_frames}, {"motion_frames", o.motion_frames},
                        {"width", o.size},    {"height", o.size},             {"steps", o.steps},
                        {"fps", o.fps},       {"speed_layers", o.preset == "emo"}, {"unet_additional_kwargs", kwargs}};
  write_text(root / "emo.json", emo.dump(2));
}

}  // namespace emo
