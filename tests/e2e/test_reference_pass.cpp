// reference_pass (src/pipeline/networks.h): hallo VAE-encodes [source, motion frames] and runs the ReferenceNet on
// them repeated per CFG half in every clip; emo computes each distinct (image, token row) once and keeps the source
// image's rows for the next clips of the job. Each case is checked against hallo's full batch computed directly on
// the tiny random-weight model, and the skipped work against the FLOPs counted for both. Likewise the face locator
// features (one frame computed, broadcast over the clip).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "emo/model_spec.h"
#include "emo/state_dict.h"
#include "emo/tiny_model.h"
#include "pipeline/networks.h"
#include "pipeline/stage_clock.h"

namespace fs = std::filesystem;
using emo::pipeline::StageClock;

namespace {

class ReferencePass : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("emo_refpass_" + std::to_string(::getpid()));
    emo::write_tiny_model(dir_.string());
    spec_ = emo::resolve_model(dir_.string());
    auto sd = emo::io::load_state_dict(spec_.paths.net);
    nets_ = emo::pipeline::Networks::load(spec_, sd, torch::kCPU, torch::kFloat).release();
  }
  static void TearDownTestSuite() {
    delete nets_;
    nets_ = nullptr;
    fs::remove_all(dir_);
  }

  struct Result {
    torch::Tensor latents;
    std::vector<torch::Tensor> banks;
    double vae_flops = 0, ref_flops = 0;
  };

  // What emo runs.
  static Result emo_pass(const torch::Tensor& pixels, const torch::Tensor& tokens, emo::pipeline::ReferenceCache* cache) {
    StageClock clock(torch::kCPU, /*count_flops=*/true);
    emo::pipeline::ClipInputs in;
    in.ref_pixels = pixels;
    in.reference_cache = cache;
    in.clock = &clock;
    auto r = emo::pipeline::reference_pass(*nets_, in, tokens);
    return {r.ref_latents, r.banks, flops(clock, "vae_encode"), flops(clock, "reference_net")};
  }

  // What hallo runs: the whole batch, every clip.
  static Result hallo_pass(const torch::Tensor& pixels, const torch::Tensor& tokens) {
    StageClock clock(torch::kCPU, /*count_flops=*/true);
    Result r;
    {
      StageClock::Scope sc(&clock, "vae_encode");
      auto p = pixels.min().item<double>() >= 0 ? pixels * 2 - 1 : pixels;
      r.latents = nets_->vae->encode_latents(p);                                    // [1+M, 4, h, w]
    }
    {
      StageClock::Scope sc(&clock, "reference_net");
      r.banks = nets_->reference->write_banks(r.latents.repeat({tokens.size(0), 1, 1, 1}),
                                              torch::zeros({}, torch::kLong), tokens);  // [halves (1+M), L, C]
    }
    r.vae_flops = flops(clock, "vae_encode");
    r.ref_flops = flops(clock, "reference_net");
    return r;
  }

  static double flops(const StageClock& c, const char* stage) {
    auto it = c.stages().find(stage);
    return it == c.stages().end() ? 0.0 : it->second.flops;
  }

  // Up to the float rounding of a smaller batch (bank values reach about 4 on the tiny model: 2e-5 seen).
  static void expect_same(const Result& got, const Result& want) {
    ASSERT_EQ(got.latents.sizes(), want.latents.sizes());
    EXPECT_TRUE(torch::allclose(got.latents, want.latents, 1e-4, 1e-4))
        << (got.latents - want.latents).abs().max().item<double>();
    ASSERT_EQ(got.banks.size(), want.banks.size());
    ASSERT_FALSE(want.banks.empty());
    for (size_t b = 0; b < want.banks.size(); ++b) {
      ASSERT_EQ(got.banks[b].sizes(), want.banks[b].sizes()) << "bank " << b;
      EXPECT_TRUE(torch::allclose(got.banks[b], want.banks[b], 1e-4, 1e-4))
          << "bank " << b << ": " << (got.banks[b] - want.banks[b]).abs().max().item<double>();
    }
  }

  static torch::Tensor tokens(bool cfg) {
    auto t = emo::pipeline::face_tokens(*nets_, torch::randn({512}));               // [2, T, D] uncond, cond
    return cfg ? t : t.slice(0, 1, 2);
  }
  static int64_t size() { return spec_.preset.width; }
  static int64_t motion() { return spec_.preset.motion_frames; }

  static inline fs::path dir_;
  static inline emo::ModelSpec spec_;
  static inline emo::pipeline::Networks* nets_ = nullptr;
};

}  // namespace

// Hallo's first clip: the motion frames are copies of the source, so the pass is one image per token row.
TEST_F(ReferencePass, FirstClipEncodesAndRunsTheSourceOnce) {
  c10::InferenceMode guard;
  torch::manual_seed(11);
  const int64_t M = motion();
  ASSERT_GE(M, 1) << "the tiny preset needs motion frames for this test";
  auto source = torch::rand({1, 3, size(), size()}) * 2 - 1;
  auto pixels = source.repeat({1 + M, 1, 1, 1});                                    // [1+M, 3, S, S]
  for (bool cfg : {true, false}) {
    SCOPED_TRACE(cfg ? "cfg" : "no cfg");
    auto tok = tokens(cfg);
    auto want = hallo_pass(pixels, tok);
    auto got = emo_pass(pixels, tok, nullptr);
    expect_same(got, want);
    // The FLOPs of hallo's networks on the source alone (one image, one row per token row).
    auto one = hallo_pass(source, tok);
    EXPECT_NEAR(got.vae_flops / one.vae_flops, 1.0, 1e-9);
    EXPECT_NEAR(got.ref_flops / one.ref_flops, 1.0, 1e-9);
    EXPECT_GT(want.ref_flops, 0.99 * (1 + M) * one.ref_flops);
  }
}

// Later clips: the source's latent and rows come from the job's cache; only the motion frames are computed.
TEST_F(ReferencePass, LaterClipsReuseTheSourceRowsOfTheJob) {
  c10::InferenceMode guard;
  torch::manual_seed(12);
  const int64_t M = motion();
  for (bool cfg : {true, false}) {
    SCOPED_TRACE(cfg ? "cfg" : "no cfg");
    const int64_t halves = cfg ? 2 : 1;
    auto tok = tokens(cfg);
    auto source = torch::rand({1, 3, size(), size()}) * 2 - 1;
    emo::pipeline::ReferenceCache cache;
    auto first = source.repeat({1 + M, 1, 1, 1});
    expect_same(emo_pass(first, tok, &cache), hallo_pass(first, tok));
    const auto one = hallo_pass(source, tok);  // FLOPs of one image, and of one ReferenceNet row per token row
    for (int clip = 1; clip <= 2; ++clip) {
      auto pixels = torch::cat({source, torch::rand({M, 3, size(), size()}) * 2 - 1}, 0);  // [1+M, 3, S, S]
      auto want = hallo_pass(pixels, tok);
      auto got = emo_pass(pixels, tok, &cache);
      expect_same(got, want);
      EXPECT_NEAR(got.vae_flops / one.vae_flops, double(M), 1e-9);
      // Source rows cached: each motion frame with the token row(s) it meets in hallo's batch.
      int64_t rows = 0;
      for (int64_t j = 0; j < halves * (1 + M); ++j) rows += (j % (1 + M)) != 0;
      EXPECT_NEAR(got.ref_flops / one.ref_flops, double(rows) / halves, 1e-9);
    }
    // A new source (another job reusing the cache object) is computed, not taken from the cache.
    auto other = torch::cat({torch::rand({1, 3, size(), size()}) * 2 - 1, torch::rand({M, 3, size(), size()}) * 2 - 1}, 0);
    auto want = hallo_pass(other, tok);
    auto got = emo_pass(other, tok, &cache);
    expect_same(got, want);
    EXPECT_NEAR(got.vae_flops / one.vae_flops, double(1 + M), 1e-9);
    // New tokens with the same source: the latent is reused, the rows are not.
    auto tok2 = tokens(cfg);
    auto again = torch::cat({other.slice(0, 0, 1), torch::rand({M, 3, size(), size()}) * 2 - 1}, 0);
    want = hallo_pass(again, tok2);
    got = emo_pass(again, tok2, &cache);
    expect_same(got, want);
    EXPECT_NEAR(got.ref_flops / one.ref_flops, double(1 + M), 1e-9);
  }
}

// The preprocessing rule looks at the whole batch: a source cached from a bright first clip (renormalised to 2x - 1)
// is not the latent of the same source in a clip whose motion frames are dark.
TEST_F(ReferencePass, CachedSourceFollowsThePreprocessingOfEachClip) {
  c10::InferenceMode guard;
  torch::manual_seed(13);
  const int64_t M = motion();
  auto tok = tokens(true);
  auto source = torch::rand({1, 3, size(), size()}) * 0.5 + 0.25;                   // bright: min >= 0
  emo::pipeline::ReferenceCache cache;
  auto first = source.repeat({1 + M, 1, 1, 1});
  expect_same(emo_pass(first, tok, &cache), hallo_pass(first, tok));
  auto dark = torch::cat({source, torch::rand({M, 3, size(), size()}) * 2 - 1}, 0);  // min < 0: left alone
  expect_same(emo_pass(dark, tok, &cache), hallo_pass(dark, tok));
  auto bright = torch::cat({source, torch::rand({M, 3, size(), size()}) * 0.5 + 0.25}, 0);
  expect_same(emo_pass(bright, tok, &cache), hallo_pass(bright, tok));
}

// The face locator (per-frame convolutions) sees the same face region in every frame of hallo's repeated input:
// emo computes one frame and broadcasts it.
using FaceLocatorOnce = ReferencePass;
TEST_F(FaceLocatorOnce, OneFrameBroadcastEqualsHallosRepeatedFrames) {
  c10::InferenceMode guard;
  torch::manual_seed(14);
  const int64_t F = 5;
  auto region = torch::rand({1, 3, size(), size()});
  StageClock clock(torch::kCPU, /*count_flops=*/true);
  torch::Tensor got, want;
  {
    StageClock::Scope sc(&clock, "emo");
    got = emo::pipeline::face_locator_features(*nets_, region, F);                  // [1, C0, F, h, w]
  }
  {
    StageClock::Scope sc(&clock, "hallo");
    want = nets_->face_locator->forward(region.unsqueeze(2).repeat({1, 1, F, 1, 1}));
  }
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-6)) << (got - want).abs().max().item<double>();
  EXPECT_NEAR(flops(clock, "emo") * F, flops(clock, "hallo"), 1e-6 * flops(clock, "hallo"));
  EXPECT_GT(flops(clock, "emo"), 0.0);
}
