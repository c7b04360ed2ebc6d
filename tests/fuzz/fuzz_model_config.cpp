// libFuzzer target: model-folder configuration. The input is written as emo.json into a complete (empty-file) Hallo
// layout and resolve_model() reads it (preset, sizes, path overrides, scheduler and UNet kwargs); the same bytes,
// when they are JSON, go to the config.json readers that need no network code: Wav2Vec2Config::from_json and
// DDIMSchedulerConfig::from_json.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "audio/wav2vec2_config.h"
#include "emo/model_spec.h"
#include "emo/scheduler.h"
#include "fuzz_common.h"

namespace fs = std::filesystem;

namespace {

// A Hallo pretrained_models/ layout with empty weight files, created once per process and removed at exit.
struct Folder {
  fs::path root;
  Folder() {
    const char* tmp = std::getenv("TMPDIR");
    root = fs::path(tmp && *tmp ? tmp : "/tmp") / ("emo-fuzz-model-" + std::to_string(::getpid()));
    for (const char* d : {"hallo", "sd-vae-ft-mse", "stable-diffusion-v1-5/unet", "motion_module",
                          "wav2vec/wav2vec2-base-960h", "face_analysis/models"})
      fs::create_directories(root / d);
    for (const char* f : {"hallo/net.pth", "sd-vae-ft-mse/diffusion_pytorch_model.safetensors",
                          "motion_module/mm_sd_v15_v2.ckpt", "wav2vec/wav2vec2-base-960h/model.safetensors"})
      std::ofstream(root / f) << "";
    for (const char* f : {"sd-vae-ft-mse/config.json", "stable-diffusion-v1-5/unet/config.json",
                          "wav2vec/wav2vec2-base-960h/config.json"})
      std::ofstream(root / f) << "{}";
  }
  ~Folder() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Folder folder;
  {
    std::ofstream out(folder.root / "emo.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    (void)emo::resolve_model(folder.root.string());
  } catch (const emo::Error&) {
  }
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    (void)emo::audio::Wav2Vec2Config::from_json(j, "fuzz config.json");
  } catch (const emo::Error&) {
  }
  try {
    (void)emo::sampling::DDIMSchedulerConfig::from_json(j, "fuzz scheduler");
  } catch (const emo::Error&) {
  }
  return 0;
}
