// Hallo quirks of the pipeline around the networks, checked on the tiny random-weight model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "emo/model_spec.h"
#include "emo/state_dict.h"
#include "emo/tiny_model.h"
#include "pipeline/networks.h"

namespace fs = std::filesystem;

namespace {

// Runs one clip (1 step) on `ref_pixels` and returns the reference latents the pipeline encoded.
torch::Tensor encoded_reference(emo::pipeline::Networks& nets, const nlohmann::json& scheduler,
                                const torch::Tensor& ref_pixels) {
  emo::pipeline::ClipInputs in;
  const int64_t F = 4, h = ref_pixels.size(-1) / 8;
  in.ref_pixels = ref_pixels;
  in.face_tokens = emo::pipeline::face_tokens(nets, torch::zeros({512}));
  in.face_locator = emo::pipeline::face_locator_features(nets, torch::ones({1, 3, ref_pixels.size(-2), ref_pixels.size(-1)}), F);
  for (int l = 0; l < 4; ++l) {
    const int64_t hw = (h >> l) * (h >> l);
    in.full_mask[l] = torch::ones({1, hw});
    in.face_mask[l] = torch::ones({1, hw});
    in.lip_mask[l] = torch::ones({1, hw});
  }
  const auto& a = nets.audio_proj->config;
  in.audio_windows = torch::zeros({F, a.seq_len, a.blocks, a.channels});
  in.initial_latents = torch::zeros({1, 4, F, h, h});
  in.steps = 1;
  emo::pipeline::ClipTrace trace;
  emo::pipeline::denoise_clip(nets, scheduler, in, {}, &trace);
  return trace.ref_latents;
}

}  // namespace

// diffusers' VaeImageProcessor.preprocess (hallo's ref_image_processor) maps x -> 2x - 1 when the reference batch's
// minimum is >= 0, i.e. a batch in [-1, 1] that is bright everywhere is normalised a second time. Hallo feeds that
// to the VAE; so does emo. A batch with any negative value is left alone.
TEST(HalloQuirks, BrightReferenceBatchIsRenormalisedAsVaeImageProcessorDoes) {
  const fs::path dir = fs::temp_directory_path() / ("emo_quirks_" + std::to_string(::getpid()));
  emo::write_tiny_model(dir.string());
  auto spec = emo::resolve_model(dir.string());
  auto sd = emo::io::load_state_dict(spec.paths.net);
  auto nets = emo::pipeline::Networks::load(spec, sd, torch::kCPU, torch::kFloat);
  c10::InferenceMode guard;
  torch::manual_seed(3);
  const int64_t S = spec.preset.width, M = spec.preset.motion_frames;

  auto bright = torch::rand({1 + M, 3, S, S}) * 0.5 + 0.25;                       // min >= 0
  auto got = encoded_reference(*nets, spec.scheduler, bright);
  auto want = nets->vae->encode_latents(bright * 2 - 1);
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-6)) << (got - want).abs().max().item<double>();
  EXPECT_FALSE(torch::allclose(got, nets->vae->encode_latents(bright), 1e-3, 1e-4));

  auto normal = torch::rand({1 + M, 3, S, S}) * 2 - 1;                            // min < 0
  auto got2 = encoded_reference(*nets, spec.scheduler, normal);
  EXPECT_TRUE(torch::allclose(got2, nets->vae->encode_latents(normal), 1e-5, 1e-6));
  fs::remove_all(dir);
}
