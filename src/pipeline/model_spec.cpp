#include "emo/model_spec.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "emo/error.h"

namespace fs = std::filesystem;

namespace emo {

ModelPreset hallo_preset() { return ModelPreset{}; }

ModelPreset emo_preset() {
  ModelPreset p;
  p.name = "emo";
  p.clip_frames = 12;
  p.motion_frames = 4;
  p.zero_first_motion_frames = true;
  p.speed_layers = true;
  p.fps = 30;
  return p;
}

nlohmann::json hallo_scheduler_kwargs() {
  // configs/inference/default.yaml noise_scheduler_kwargs; the later `beta_schedule: scaled_linear`
  // update in scripts/inference.py happens after the scheduler is built and has no effect.
  return {{"beta_start", 0.00085},      {"beta_end", 0.012},
          {"beta_schedule", "linear"},  {"clip_sample", false},
          {"steps_offset", 1},          {"prediction_type", "v_prediction"},
          {"rescale_betas_zero_snr", true}, {"timestep_spacing", "trailing"}};
}

nlohmann::json hallo_unet_additional_kwargs() {
  return nlohmann::json::parse(R"({
    "use_inflated_groupnorm": true, "unet_use_cross_frame_attention": false, "unet_use_temporal_attention": false,
    "use_motion_module": true, "use_audio_module": true, "motion_module_resolutions": [1, 2, 4, 8],
    "motion_module_mid_block": true, "motion_module_decoder_only": false, "motion_module_type": "Vanilla",
    "motion_module_kwargs": {"num_attention_heads": 8, "num_transformer_block": 1,
      "attention_block_types": ["Temporal_Self", "Temporal_Self"], "temporal_position_encoding": true,
      "temporal_position_encoding_max_len": 32, "temporal_attention_dim_div": 1},
    "audio_attention_dim": 768, "stack_enable_blocks_name": ["up", "down", "mid"],
    "stack_enable_blocks_depth": [0, 1, 2, 3]})");
}

namespace {

nlohmann::json read_json(const fs::path& p, std::vector<std::string>& problems, const std::string& what) {
  std::ifstream in(p);
  if (!in) {
    problems.push_back(what + ": cannot read " + p.string());
    return {};
  }
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    problems.push_back(what + ": " + p.string() + " is not valid JSON (" + e.what() + ")");
    return {};
  }
}

std::string first_existing(const fs::path& root, std::initializer_list<const char*> rels) {
  for (const char* r : rels)
    if (fs::exists(root / r)) return (root / r).string();
  return "";
}

template <typename T>
void take(const nlohmann::json& j, const char* key, T& out) {
  if (j.contains(key)) out = j.at(key).get<T>();
}

}  // namespace

std::string default_model_dir(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  if (const char* e = std::getenv("EMO_MODEL_DIR"); e && *e) return e;
  throw UsageError("no model folder: pass --model DIR or set EMO_MODEL_DIR");
}

ModelSpec resolve_model(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) throw ModelError(dir + ": model folder does not exist or is not a directory");
  ModelSpec spec;
  std::vector<std::string> problems;
  auto& p = spec.paths;
  p.root = root.string();

  nlohmann::json emo_json;
  if (fs::exists(root / "emo.json")) emo_json = read_json(root / "emo.json", problems, "emo.json");
  // Preset first: it decides the defaults that emo.json keys then override.
  std::string preset = emo_json.is_object() ? emo_json.value("preset", std::string("hallo")) : "hallo";
  if (preset == "hallo") spec.preset = hallo_preset();
  else if (preset == "emo") spec.preset = emo_preset();
  else problems.push_back("emo.json: unknown preset '" + preset + "' (expected \"hallo\" or \"emo\")");
  nlohmann::json paths_override = emo_json.is_object() ? emo_json.value("paths", nlohmann::json::object()) : nlohmann::json::object();
  try {
    if (emo_json.is_object()) {
      auto& s = spec.preset;
      take(emo_json, "clip_frames", s.clip_frames);
      take(emo_json, "motion_frames", s.motion_frames);
      take(emo_json, "zero_first_motion_frames", s.zero_first_motion_frames);
      take(emo_json, "speed_layers", s.speed_layers);
      take(emo_json, "fps", s.fps);
      take(emo_json, "width", s.width);
      take(emo_json, "height", s.height);
      take(emo_json, "steps", s.steps);
      take(emo_json, "cfg_scale", s.cfg_scale);
      take(emo_json, "face_expand_ratio", s.face_expand_ratio);
    }
  } catch (const std::exception& e) {
    problems.push_back(std::string("emo.json: wrong value type (") + e.what() + ")");
  }
  auto path_of = [&](const char* key, std::initializer_list<const char*> defaults) {
    if (paths_override.contains(key)) {
      fs::path q = paths_override.at(key).get<std::string>();
      return (q.is_absolute() ? q : root / q).string();
    }
    return first_existing(root, defaults);
  };

  p.net = path_of("net", {"hallo/net.pth", "hallo/net.safetensors", "net.pth", "net.safetensors"});
  if (p.net.empty()) problems.push_back("denoising network: expected hallo/net.pth (Hallo's net.pth: reference_unet, denoising_unet, face_locator, imageproj, audioproj)");
  p.vae_dir = path_of("vae", {"sd-vae-ft-mse", "vae"});
  if (p.vae_dir.empty()) problems.push_back("vae: expected sd-vae-ft-mse/ with config.json and diffusion_pytorch_model.safetensors");
  else {
    p.vae_weights = first_existing(p.vae_dir, {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"});
    if (p.vae_weights.empty()) problems.push_back("vae: expected " + p.vae_dir + "/diffusion_pytorch_model.safetensors (or .bin)");
    if (fs::exists(fs::path(p.vae_dir) / "config.json")) spec.vae_config = read_json(fs::path(p.vae_dir) / "config.json", problems, "vae");
    else problems.push_back("vae: expected " + p.vae_dir + "/config.json");
  }
  p.unet_config = path_of("unet_config", {"stable-diffusion-v1-5/unet/config.json", "unet/config.json"});
  if (p.unet_config.empty()) problems.push_back("unet config: expected stable-diffusion-v1-5/unet/config.json");
  else spec.unet_config = read_json(p.unet_config, problems, "unet config");
  p.motion_module = path_of("motion_module", {"motion_module/mm_sd_v15_v2.ckpt", "motion_module/mm_sd_v15_v2.safetensors"});
  p.wav2vec_dir = path_of("wav2vec", {"wav2vec/wav2vec2-base-960h", "wav2vec2-base-960h", "wav2vec"});
  if (p.wav2vec_dir.empty()) problems.push_back("wav2vec2: expected wav2vec/wav2vec2-base-960h/ with config.json and model.safetensors");
  else {
    p.wav2vec_weights = first_existing(p.wav2vec_dir, {"model.safetensors", "pytorch_model.bin"});
    if (p.wav2vec_weights.empty()) problems.push_back("wav2vec2: expected " + p.wav2vec_dir + "/model.safetensors (or pytorch_model.bin)");
    if (fs::exists(fs::path(p.wav2vec_dir) / "config.json")) spec.wav2vec_config = read_json(fs::path(p.wav2vec_dir) / "config.json", problems, "wav2vec2");
    else problems.push_back("wav2vec2: expected " + p.wav2vec_dir + "/config.json");
  }
  p.face_models_dir = path_of("face_analysis", {"face_analysis/models"});

  spec.scheduler = hallo_scheduler_kwargs();
  spec.unet_additional_kwargs = hallo_unet_additional_kwargs();
  if (emo_json.is_object()) {
    if (emo_json.contains("scheduler")) spec.scheduler.update(emo_json["scheduler"]);
    if (emo_json.contains("unet_additional_kwargs")) spec.unet_additional_kwargs.update(emo_json["unet_additional_kwargs"]);
  }
  const auto& s = spec.preset;
  if (s.clip_frames < 1 || s.motion_frames < 0 || s.fps < 1 || s.steps < 1 || s.width % 8 || s.height % 8 || s.width < 64 || s.height < 64)
    problems.push_back("emo.json: invalid sizes (clip_frames >= 1, motion_frames >= 0, fps >= 1, steps >= 1, width/height multiples of 8 and >= 64)");

  if (!problems.empty()) {
    std::string msg = dir + ": model folder is incomplete: ";
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    throw ModelError(msg);
  }
  return spec;
}

}  // namespace emo
