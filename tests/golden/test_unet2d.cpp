// diffusers.UNet2DConditionModel vs the unet2d fixture, on both attention backend settings.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "emo/compat.h"
#include "emo/models.h"
#include "emo/weight_loader.h"
#include "models/unet_2d_condition.h"
#include "support/golden.h"

namespace {

// AllClose at the fixture tolerance, printing the max error seen (for reports).
::testing::AssertionResult Close(const char* what, const torch::Tensor& a, const torch::Tensor& b) {
  auto r = emo::test::AllClose(a, b, 1e-4);
  std::printf("  %s: %s\n", what, r.message());
  return r;
}

struct BackendGuard {
  emo::compat::AttentionBackend saved = emo::compat::attention_backend();
  explicit BackendGuard(emo::compat::AttentionBackend b) { emo::compat::set_attention_backend(b); }
  ~BackendGuard() { emo::compat::set_attention_backend(saved); }
};

void run_unet2d(emo::compat::AttentionBackend backend) {
  EMO_GOLDEN_FIXTURE(fx, "unet2d");
  BackendGuard guard(backend);
  auto cfg = emo::models::UNet2DConditionConfig::from_json(fx.config(), fx.path("config.json"));
  emo::models::UNet2DConditionModel unet(cfg);
  emo::io::load_module(*unet, fx.weights());
  unet->eval();
  c10::InferenceMode mode;
  auto out = unet->forward(fx.input("sample"), fx.input("timestep"), fx.input("encoder_hidden_states"));
  EXPECT_TRUE(Close("sample", out, fx.output("sample")));
}

}  // namespace

TEST(GoldenUNet2D, SampleMathAttention) { run_unet2d(emo::compat::AttentionBackend::kMath); }

// On libtorch < 2.0 kAuto also takes the math path; on >= 2.0 it is the fused SDPA kernel.
TEST(GoldenUNet2D, SampleAutoAttention) { run_unet2d(emo::compat::AttentionBackend::kAuto); }

TEST(GoldenUNet2D, ConfigFromFixture) {
  EMO_GOLDEN_FIXTURE(fx, "unet2d");
  auto cfg = emo::models::UNet2DConditionConfig::from_json(fx.config(), fx.path("config.json"));
  const auto& j = fx.config();
  EXPECT_EQ(cfg.block_out_channels, j.at("block_out_channels").get<std::vector<int64_t>>());
  // SD's attention_head_dim is the number of heads.
  for (auto h : cfg.num_attention_heads) EXPECT_EQ(h, j.at("attention_head_dim").get<int64_t>());
  // The fixture's state dict loads strictly (no missing / unexpected keys).
  emo::models::UNet2DConditionModel unet(cfg);
  emo::io::LoadOptions opt;
  opt.strict = false;
  auto report = emo::io::load_module(*unet, fx.weights(), opt);
  EXPECT_TRUE(report.ok()) << report.summary();
}

// load_unet2d(dir) on a diffusers `unet/` layout (config.json + diffusion_pytorch_model.safetensors).
TEST(GoldenUNet2D, PublicLoaderFromDiffusersFolder) {
  EMO_GOLDEN_FIXTURE(fx, "unet2d");
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("emo_unet2d_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(fx.path("config.json"), dir / "config.json", fs::copy_options::overwrite_existing);
  fs::copy_file(fx.path("weights.safetensors"), dir / "diffusion_pytorch_model.safetensors",
                fs::copy_options::overwrite_existing);
  auto unet = emo::load_unet2d(dir.string());
  fs::remove_all(dir);
  c10::InferenceMode mode;
  auto out = unet->forward(fx.input("sample"), fx.input("timestep"), fx.input("encoder_hidden_states"));
  EXPECT_TRUE(Close("sample (load_unet2d)", out, fx.output("sample")));
}
