// diffusers.AutoencoderKL vs the vae fixture: posterior mean/logvar, decode (whole batch and chunked), and the
// public loader with legacy attention key names.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "emo/models.h"
#include "emo/weight_loader.h"
#include "models/autoencoder_kl.h"
#include "support/golden.h"

namespace fs = std::filesystem;

namespace {

// AllClose at the fixture tolerance, printing the max error seen (for reports).
::testing::AssertionResult Close(const char* what, const torch::Tensor& a, const torch::Tensor& b) {
  auto r = emo::test::AllClose(a, b, 1e-4);
  std::printf("  %s: %s\n", what, r.message());
  return r;
}
emo::models::AutoencoderKL build(const emo::test::Fixture& fx) {
  auto cfg = emo::models::AutoencoderKLConfig::from_json(fx.config(), fx.path("config.json"));
  emo::models::AutoencoderKL vae(cfg);
  emo::io::load_module(*vae, fx.weights());
  vae->eval();
  return vae;
}
}  // namespace

TEST(GoldenVae, EncodePosterior) {
  EMO_GOLDEN_FIXTURE(fx, "vae");
  auto vae = build(fx);
  c10::InferenceMode mode;
  auto [mean, logvar] = vae->encode(fx.input("image"));
  EXPECT_TRUE(Close("posterior_mean", mean, fx.output("posterior_mean")));
  EXPECT_TRUE(Close("posterior_logvar", logvar, fx.output("posterior_logvar")));
}

TEST(GoldenVae, Decode) {
  EMO_GOLDEN_FIXTURE(fx, "vae");
  auto vae = build(fx);
  c10::InferenceMode mode;
  EXPECT_TRUE(Close("decoded", vae->decode(fx.input("z")), fx.output("decoded")));
}

TEST(GoldenVae, DecodeInChunksOfOneFrame) {
  EMO_GOLDEN_FIXTURE(fx, "vae");
  auto vae = build(fx);
  c10::InferenceMode mode;
  const auto z = fx.input("z");
  std::vector<torch::Tensor> parts;
  int64_t expected_first = 0;
  vae->decode_chunked(z, 1, [&](int64_t first, const torch::Tensor& x) {
    EXPECT_EQ(first, expected_first);
    EXPECT_EQ(x.size(0), 1);
    expected_first += x.size(0);
    parts.push_back(x);
  });
  ASSERT_EQ(static_cast<int64_t>(parts.size()), z.size(0));
  EXPECT_TRUE(Close("decoded (chunks of 1)", torch::cat(parts, 0), fx.output("decoded")));
}

// load_vae(dir) on a diffusers-style folder whose weights use the legacy query/key/value/proj_attn names.
TEST(GoldenVae, PublicLoaderAcceptsLegacyAttentionNames) {
  EMO_GOLDEN_FIXTURE(fx, "vae");
  const fs::path dir = fs::temp_directory_path() / ("emo_vae_legacy_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(fx.path("config.json"), dir / "config.json", fs::copy_options::overwrite_existing);
  emo::io::StateDict legacy;
  size_t renamed = 0;
  for (const auto& [k, v] : fx.weights()) {
    std::string key = k;
    for (auto [from, to] : {std::pair<std::string, std::string>{".to_q.", ".query."}, {".to_k.", ".key."},
                            {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}}) {
      auto p = key.find(".attentions.0" + from);
      if (p != std::string::npos) {
        key.replace(p + 13, from.size(), to);
        ++renamed;
      }
    }
    legacy[key] = v;
  }
  EXPECT_GT(renamed, 0u);
  emo::io::write_safetensors((dir / "diffusion_pytorch_model.safetensors").string(), legacy);
  auto vae = emo::load_vae(dir.string());
  fs::remove_all(dir);
  const auto z = fx.input("z");
  auto decoded = vae.decode_latents(z * vae.scaling_factor(), 1);
  EXPECT_TRUE(Close("decoded", decoded, fx.output("decoded")));
  // Video layout [B, C, F, h, w] decodes frame by frame in (b f) order.
  auto video = (z * vae.scaling_factor()).unsqueeze(0).transpose(1, 2);  // [1, C, N, h, w]
  EXPECT_TRUE(Close("decoded (5-D latents)", vae.decode_latents(video, 1), fx.output("decoded")));
  auto mean = vae.encode_mean(fx.input("image"));
  EXPECT_TRUE(Close("posterior_mean", mean, fx.output("posterior_mean")));
}

// The channels-last path the pipeline takes on the CPU: same outputs, NCHW results, NHWC weights.
TEST(GoldenVae, ChannelsLastEncodeAndDecodeMatch) {
  EMO_GOLDEN_FIXTURE(fx, "vae");
  auto impl = build(fx);
  emo::Vae vae(impl.ptr());
  vae.use_channels_last(true);
  ASSERT_TRUE(vae.channels_last());
  ASSERT_TRUE(impl->decoder->conv_in->weight.is_contiguous(at::MemoryFormat::ChannelsLast));
  const auto z = fx.input("z");
  for (int64_t chunk : {int64_t{1}, z.size(0)}) {
    auto decoded = vae.decode_latents(z * vae.scaling_factor(), chunk);
    EXPECT_TRUE(decoded.is_contiguous());
    EXPECT_TRUE(Close("decoded (channels-last)", decoded, fx.output("decoded")));
  }
  auto mean = vae.encode_mean(fx.input("image"));
  EXPECT_TRUE(mean.is_contiguous());
  EXPECT_TRUE(Close("posterior_mean (channels-last)", mean, fx.output("posterior_mean")));
  vae.use_channels_last(false);  // and back
  EXPECT_TRUE(impl->decoder->conv_in->weight.is_contiguous());
  EXPECT_TRUE(Close("decoded (NCHW again)", vae.decode_latents(z * vae.scaling_factor(), 1), fx.output("decoded")));
}
