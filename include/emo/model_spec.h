// A model folder resolved into paths, configs and the generation preset (docs/models.md).
// Accepts a Hallo `pretrained_models/` folder as-is; an optional emo.json in it overrides the preset.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace emo {

struct ModelPaths {
  std::string root;
  std::string net;              // hallo/net.pth (reference_unet., denoising_unet., face_locator., imageproj., audioproj.)
  std::string vae_dir;          // sd-vae-ft-mse/ (config.json + diffusion_pytorch_model.{safetensors,bin})
  std::string vae_weights;
  std::string unet_config;      // stable-diffusion-v1-5/unet/config.json
  std::string motion_module;    // motion_module/mm_sd_v15_v2.ckpt (optional: net.pth already holds it)
  std::string wav2vec_dir;      // wav2vec/wav2vec2-base-960h/
  std::string wav2vec_weights;
  std::string face_models_dir;  // face_analysis/models/ (optional)
};

struct ModelPreset {
  std::string name = "hallo";   // "hallo" or "emo"
  int clip_frames = 16;         // frames generated per clip
  int motion_frames = 2;        // frames carried from the previous clip
  bool zero_first_motion_frames = false;  // EMO: zero maps; Hallo: the reference image
  bool speed_layers = false;    // EMO speed layers (needs weights for them)
  int fps = 25;
  int width = 512;
  int height = 512;
  int steps = 40;
  double cfg_scale = 3.5;
  int sample_rate = 16000;
  double face_expand_ratio = 1.2;
};

struct ModelSpec {
  ModelPaths paths;
  ModelPreset preset;
  nlohmann::json unet_config;             // diffusers UNet2DConditionModel config (SD1.5)
  nlohmann::json unet_additional_kwargs;  // hallo's unet_additional_kwargs (configs/inference/default.yaml)
  nlohmann::json scheduler;               // DDIMScheduler kwargs
  nlohmann::json vae_config;
  nlohmann::json wav2vec_config;
};

// Hallo's defaults (configs/inference/default.yaml) for the preset, scheduler and UNet3D kwargs.
ModelPreset hallo_preset();
ModelPreset emo_preset();
nlohmann::json hallo_scheduler_kwargs();
nlohmann::json hallo_unet_additional_kwargs();

// Resolves a model folder. Every missing or malformed component is reported together, by name and
// with the path that was expected, in one ModelError — before any work starts.
ModelSpec resolve_model(const std::string& dir);

// The model dir from --model, else $EMO_MODEL_DIR; throws UsageError when neither is given.
std::string default_model_dir(const std::string& flag_value);

}  // namespace emo
