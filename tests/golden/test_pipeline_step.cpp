// hallo scripts/inference.py, first clip, end to end on the pipeline_step fixture (tiny random modules):
// VAE encode of [source, motion frames], ReferenceNet banks, face/audio/image conditioning, CFG + DDIM, decode.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/audio.h"
#include "emo/compat.h"
#include "pipeline/networks.h"
#include "support/golden.h"

namespace {

emo::io::StateDict prefixed(const emo::io::StateDict& sd, const std::string& prefix) {
  emo::io::StateDict out;
  for (const auto& [k, v] : sd) out[prefix + k] = v;
  return out;
}

// The whole first clip on `device` (fp32), every stage checked against the fixture.
void first_clip_matches_hallo(const emo::test::Fixture& fx, const emo::test::Fixture& ref, const emo::test::Fixture& u3d,
                              torch::Device device) {
  c10::InferenceMode guard;
  const auto& cfg = fx.config();
  const auto& pipe = cfg.at("pipeline");

  // net.pth layout: the five prefixed modules in one state dict.
  auto net = prefixed(ref.weights(), "reference_unet.");
  for (auto& kv : prefixed(u3d.weights(), "denoising_unet.")) net.insert(kv);
  emo::io::StateDict vae_sd;
  for (const auto& [k, v] : fx.weights()) {
    if (k.rfind("vae.", 0) == 0) vae_sd[k.substr(4)] = v;
    else net[k] = v;
  }
  auto vae = emo::pipeline::vae_from_parts(cfg.at("vae"), vae_sd, fx.path("weights.safetensors"));
  const int64_t hidden = fx.input("audio_emb").size(2);
  auto nets = emo::pipeline::Networks::build(ref.path("config.json"), u3d.config().at("config"),
                                             u3d.config().at("unet_additional_kwargs"), net, "fixture net", vae,
                                             hidden, device, torch::kFloat);

  const int64_t F = pipe.at("video_length").get<int64_t>();
  const int64_t M = pipe.at("n_motion_frames").get<int64_t>();
  auto put = [&](const torch::Tensor& t) { return nets->place(t); };       // fixture (host) -> networks
  auto src = fx.input("source_image_pixels").unsqueeze(0);                  // [1, 3, H, W]
  emo::pipeline::ClipInputs in;
  in.ref_pixels = put(torch::cat({src, src.repeat({M, 1, 1, 1})}, 0));      // [1+M, 3, H, W]
  in.face_tokens = emo::pipeline::face_tokens(*nets, put(fx.input("face_emb")));
  in.face_locator = emo::pipeline::face_locator_features(*nets, put(fx.input("source_image_face_region").unsqueeze(0)), F);
  for (int l = 0; l < 4; ++l) {
    in.full_mask[l] = put(fx.input("full_mask." + std::to_string(l)));
    in.face_mask[l] = put(fx.input("face_mask." + std::to_string(l)));
    in.lip_mask[l] = put(fx.input("lip_mask." + std::to_string(l)));
  }
  in.audio_windows = put(emo::audio::audio_windows(fx.input("audio_emb"), 2).slice(0, 0, F));  // [F, 5, L, H]
  in.initial_latents = put(fx.input("initial_latents"));
  auto ms = fx.input("motion_scale");
  in.motion_scale = {ms[0].item<double>(), ms[1].item<double>(), ms[2].item<double>()};
  in.guidance_scale = pipe.at("guidance_scale").get<double>();
  in.steps = pipe.at("num_inference_steps").get<int64_t>();

  emo::pipeline::ClipTrace trace;
  auto latents = emo::pipeline::denoise_clip(*nets, cfg.at("scheduler"), in, {}, &trace);
  ASSERT_EQ(latents.device(), device);

  EXPECT_TRUE(emo::test::AllClose(in.face_tokens, fx.output("encoder_hidden_states")));
  EXPECT_TRUE(emo::test::AllClose(in.face_locator, fx.output("face_locator")));
  EXPECT_TRUE(emo::test::AllClose(trace.ref_latents, fx.output("ref_image_latents")));
  EXPECT_TRUE(emo::test::AllClose(trace.audio_tokens, fx.output("audio_tokens")));
  auto ts = fx.output("timesteps");
  ASSERT_EQ(trace.timesteps.size(), static_cast<size_t>(ts.size(0)));
  for (int64_t i = 0; i < ts.size(0); ++i) EXPECT_EQ(trace.timesteps[i], ts[i].item<int64_t>());
  // README: 2e-3 absolute on latents (fp16 banks, CFG amplification), 1e-3 on videos.
  for (size_t i = 0; i < trace.unet_out.size(); ++i) {
    EXPECT_TRUE(emo::test::AllClose(trace.unet_out[i], fx.output("unet_out.step" + std::to_string(i)), 1e-3)) << i;
    auto want = fx.output("latents.step" + std::to_string(i));
    EXPECT_LE((trace.latents[i].cpu() - want).abs().max().item<double>(), 2e-3) << "latents.step" << i;
  }
  auto videos = emo::pipeline::decode_video(*nets, latents, 2);
  EXPECT_LE((videos.cpu() - fx.output("videos")).abs().max().item<double>(), 1e-3);
}

}  // namespace

TEST(GoldenPipelineStep, FirstClipMatchesHallo) {
  EMO_GOLDEN_FIXTURE(fx, "pipeline_step");
  EMO_GOLDEN_FIXTURE(ref, "reference_unet");
  EMO_GOLDEN_FIXTURE(u3d, "unet3d");
  first_clip_matches_hallo(fx, ref, u3d, torch::kCPU);
}

// The same on a CUDA device when this build and machine have one (skipped otherwise). TF32 is turned off so
// that fp32 means fp32: cuDNN convolutions default to TF32 on Ampere and newer.
TEST(GoldenPipelineStep, FirstClipMatchesHalloOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build/machine";
  EMO_GOLDEN_FIXTURE(fx, "pipeline_step");
  EMO_GOLDEN_FIXTURE(ref, "reference_unet");
  EMO_GOLDEN_FIXTURE(u3d, "unet3d");
  emo::compat::ExactFp32Scope exact;
  first_clip_matches_hallo(fx, ref, u3d, torch::Device(torch::kCUDA, 0));
}
