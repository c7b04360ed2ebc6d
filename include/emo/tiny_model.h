// A complete, tiny, random-weight model folder in Hallo's pretrained_models/ layout, written by emo's own
// modules (so key names are exactly what the loaders expect). Used by the e2e tests, `emo batch` tests and
// `emo bench --tiny`; generation with it is fast on a CPU (64x64 frames) and produces noise-like videos.
#pragma once
#include <cstdint>
#include <string>

namespace emo {

struct TinyModelOptions {
  std::string preset = "hallo";  // "hallo", or "emo" (zero first motion frames + speed layers)
  int clip_frames = 4;
  int motion_frames = 2;
  int size = 64;                 // frames are size x size
  int steps = 2;
  int fps = 25;
  uint64_t seed = 1234;          // weight initialisation seed
  // The real shapes of Hallo's pretrained_models/ (SD1.5 UNets, sd-vae-ft-mse, wav2vec2-base, projections, face
  // locator; 2.5 B parameters, about 5 GB of fp16 safetensors) for benchmarks without downloads. With the hallo
  // preset no emo.json is written (a user's folder has none), so clip_frames/size/steps above are not used.
  bool full_size = false;
};

// Writes DIR/{hallo/net.pth (safetensors content; fp16 at full size, fp32 tiny), sd-vae-ft-mse/, stable-diffusion-v1-5/unet/config.json,
// wav2vec/wav2vec2-base-960h/, emo.json}. Creates DIR if needed. Throws OutputError.
void write_tiny_model(const std::string& dir, const TinyModelOptions& options = {});

}  // namespace emo
