// The sampling side of hallo's FaceAnimatePipeline on the pipeline_step fixture: replaying the recorded
// raw UNet outputs (CFG batch [uncond, cond]) through guided() + DDIM reproduces the recorded latents,
// and FaceLocator / ImageProjModel loaded from the prefixed pipeline weights give the recorded
// face-locator features and [uncond, cond] image tokens.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/scheduler.h"
#include "emo/weight_loader.h"
#include "models/face_locator.h"
#include "models/image_proj.h"
#include "support/golden.h"

namespace {
std::string step_key(const char* what, size_t i) { return std::string(what) + ".step" + std::to_string(i); }
}  // namespace

TEST(GoldenPipelineSampling, CfgDdimLoopReplaysLatents) {
  EMO_GOLDEN_FIXTURE(fx, "pipeline_step");
  using namespace emo::sampling;
  const auto& pipe = fx.config().at("pipeline");
  const double scale = pipe.at("guidance_scale").get<double>();
  const int64_t steps = pipe.at("num_inference_steps").get<int64_t>();
  ASSERT_EQ(pipe.at("eta").get<double>(), 0.0);

  DDIMScheduler sched(DDIMSchedulerConfig::from_json(fx.config().at("scheduler"), fx.path("config.json")));
  sched.set_timesteps(steps);
  auto want_ts = fx.output("timesteps").to(torch::kInt64);
  ASSERT_EQ(static_cast<int64_t>(sched.timesteps().size()), want_ts.numel());
  for (size_t i = 0; i < sched.timesteps().size(); ++i)
    EXPECT_EQ(sched.timesteps()[i], want_ts[static_cast<int64_t>(i)].item<int64_t>());

  size_t calls = 0;
  auto latents = fx.input("initial_latents").clone();
  Denoiser replay_unet = [&](const at::Tensor& x2, int64_t t) {
    EXPECT_EQ(x2.size(0), 2 * latents.size(0));  // the CFG batch
    return fx.output(step_key("unet_out", calls++));
  };
  auto denoise = guided(replay_unet, scale);
  ASSERT_TRUE(guidance_enabled(scale));
  sample_loop(sched, denoise, latents, [&](size_t i, int64_t, const at::Tensor& x) {
    EXPECT_TRUE(emo::test::AllClose(x, fx.output(step_key("latents", i)), 1e-5)) << "step " << i;
    std::cout << "[pipeline_step] latents step " << i << " max|diff| "
              << (x - fx.output(step_key("latents", i))).abs().max().item<double>() << "\n";
  });
  EXPECT_EQ(calls, static_cast<size_t>(steps));
}

TEST(GoldenPipelineSampling, FaceLocatorAndImageTokensFromPrefixedWeights) {
  EMO_GOLDEN_FIXTURE(fx, "pipeline_step");
  c10::InferenceMode guard;
  const auto& cfg = fx.config();

  emo::models::FaceLocator fl(emo::models::FaceLocatorConfig::from_json(cfg.at("face_locator"), fx.path("config.json")));
  emo::io::LoadOptions fl_opt;
  fl_opt.prefix = "face_locator.";
  fl_opt.source = fx.path("weights.safetensors");
  emo::io::load_module(*fl, fx.weights(), fl_opt);
  const int64_t f = cfg.at("pipeline").at("video_length").get<int64_t>();
  auto region = fx.input("source_image_face_region");                        // [3, H, W]
  auto mask = region.unsqueeze(0).unsqueeze(1).repeat({1, f, 1, 1, 1}).transpose(1, 2);  // [1, 3, F, H, W]
  EXPECT_TRUE(emo::test::AllClose(fl->forward(mask), fx.output("face_locator"), 1e-4));

  emo::models::ImageProjModel ip(
      emo::models::ImageProjModelConfig::from_json(cfg.at("imageproj"), fx.path("config.json")));
  emo::io::LoadOptions ip_opt;
  ip_opt.prefix = "imageproj.";
  ip_opt.source = fx.path("weights.safetensors");
  emo::io::load_module(*ip, fx.weights(), ip_opt);
  auto emb = fx.input("face_emb");
  auto tokens = torch::cat({ip->forward(torch::zeros_like(emb)), ip->forward(emb)}, 0);  // [2, T, D] = [uncond, cond]
  EXPECT_TRUE(emo::test::AllClose(tokens, fx.output("encoder_hidden_states"), 1e-4));
}
