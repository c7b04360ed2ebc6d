#include "emo/model_spec.h"

#include <cstdint>
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

// fs::exists without exceptions: a path from emo.json may be too long or otherwise unusable; that is "not there".
bool exists_quiet(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec) && !ec;
}

std::string first_existing(const fs::path& root, std::initializer_list<const char*> rels) {
  for (const char* r : rels)
    if (exists_quiet(root / r)) return (root / r).string();
  return "";
}

// emo.json values with their JSON types checked (no conversion: 1.5 is not an int, 1 is not a bool) and ints in
// range: a float like 1e30 converted to int would be undefined behaviour. A wrong value is a problem, not an exception.
void take(const nlohmann::json& j, const char* key, int& out, std::vector<std::string>& problems) {
  if (!j.contains(key)) return;
  const auto& v = j.at(key);
  if (v.is_number_integer() && v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX &&
      !(v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT32_MAX)))
    out = static_cast<int>(v.get<int64_t>());
  else
    problems.push_back(std::string("emo.json: ") + key + " must be an integer, got " + v.dump());
}
void take(const nlohmann::json& j, const char* key, double& out, std::vector<std::string>& problems) {
  if (!j.contains(key)) return;
  const auto& v = j.at(key);
  if (v.is_number()) out = v.get<double>();
  else problems.push_back(std::string("emo.json: ") + key + " must be a number, got " + v.dump());
}
void take(const nlohmann::json& j, const char* key, bool& out, std::vector<std::string>& problems) {
  if (!j.contains(key)) return;
  const auto& v = j.at(key);
  if (v.is_boolean()) out = v.get<bool>();
  else problems.push_back(std::string("emo.json: ") + key + " must be true or false, got " + v.dump());
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
  if (exists_quiet(root / "emo.json")) {
    emo_json = read_json(root / "emo.json", problems, "emo.json");
    if (!emo_json.is_null() && !emo_json.is_object()) {
      problems.push_back("emo.json: expected a JSON object, got " + std::string(emo_json.type_name()));
      emo_json = nlohmann::json();
    }
  }
  // Every emo.json value is type-checked here: a wrong type is reported with the others (exit 4), never thrown
  // from deep inside nlohmann (which would surface as an internal error).
  auto object_or_empty = [&](const char* key) {
    if (!emo_json.is_object() || !emo_json.contains(key)) return nlohmann::json::object();
    if (emo_json.at(key).is_object()) return emo_json.at(key);
    problems.push_back(std::string("emo.json: ") + key + " must be an object, got " + emo_json.at(key).dump());
    return nlohmann::json::object();
  };
  // Preset first: it decides the defaults that emo.json keys then override.
  std::string preset = "hallo";
  if (emo_json.is_object() && emo_json.contains("preset")) {
    if (emo_json.at("preset").is_string()) preset = emo_json.at("preset").get<std::string>();
    else problems.push_back("emo.json: preset must be a string, got " + emo_json.at("preset").dump());
  }
  if (preset == "hallo") spec.preset = hallo_preset();
  else if (preset == "emo") spec.preset = emo_preset();
  else problems.push_back("emo.json: unknown preset '" + preset + "' (expected \"hallo\" or \"emo\")");
  const nlohmann::json paths_override = object_or_empty("paths");
  for (auto it = paths_override.begin(); it != paths_override.end(); ++it)
    if (!it.value().is_string() || it.value().get<std::string>().empty())
      problems.push_back("emo.json: paths." + it.key() + " must be a non-empty string, got " + it.value().dump());
  if (emo_json.is_object()) {
    auto& s = spec.preset;
    take(emo_json, "clip_frames", s.clip_frames, problems);
    take(emo_json, "motion_frames", s.motion_frames, problems);
    take(emo_json, "zero_first_motion_frames", s.zero_first_motion_frames, problems);
    take(emo_json, "speed_layers", s.speed_layers, problems);
    take(emo_json, "fps", s.fps, problems);
    take(emo_json, "width", s.width, problems);
    take(emo_json, "height", s.height, problems);
    take(emo_json, "steps", s.steps, problems);
    take(emo_json, "cfg_scale", s.cfg_scale, problems);
    take(emo_json, "face_expand_ratio", s.face_expand_ratio, problems);
  }
  auto path_of = [&](const char* key, std::initializer_list<const char*> defaults) {
    if (paths_override.contains(key) && paths_override.at(key).is_string() &&
        !paths_override.at(key).get<std::string>().empty()) {
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
    if (exists_quiet(fs::path(p.vae_dir) / "config.json")) spec.vae_config = read_json(fs::path(p.vae_dir) / "config.json", problems, "vae");
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
    if (exists_quiet(fs::path(p.wav2vec_dir) / "config.json")) spec.wav2vec_config = read_json(fs::path(p.wav2vec_dir) / "config.json", problems, "wav2vec2");
    else problems.push_back("wav2vec2: expected " + p.wav2vec_dir + "/config.json");
  }
  p.face_models_dir = path_of("face_analysis", {"face_analysis/models"});

  spec.scheduler = hallo_scheduler_kwargs();
  spec.unet_additional_kwargs = hallo_unet_additional_kwargs();
  spec.scheduler.update(object_or_empty("scheduler"));
  spec.unet_additional_kwargs.update(object_or_empty("unet_additional_kwargs"));
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
