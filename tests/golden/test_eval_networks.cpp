// Golden parity of the metric networks: pytorch-fid FID-Inception (eval/fid_inception) and SyncNet with
// syncnet_python / Wav2Lip evaluate (eval/syncnet).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>

#include "emo/error.h"
#include "emo/eval.h"
#include "support/golden.h"

namespace ev = emo::eval;

namespace {
double maxdiff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}
}  // namespace

TEST(GoldenEvalFid, InceptionPool3AndBlocks) {
  EMO_GOLDEN_FIXTURE(fx, "eval/fid_inception");
  ASSERT_EQ(fx.config().at("dims").get<int64_t>(), 2048);
  auto model = ev::FidInception::from_state_dict(fx.weights(), "eval/fid_inception/weights.safetensors");
  int sets = 0;
  for (const auto& [key, tensor] : fx.io()) {
    const std::string prefix = "input.", suffix = ".images_u8";
    if (key.rfind(prefix, 0) != 0 || key.size() <= suffix.size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string set = key.substr(prefix.size(), key.size() - prefix.size() - suffix.size());
    SCOPED_TRACE(set);
    ++sets;
    auto taps = model.forward_blocks(tensor);  // input, block0, block1, block2, pool3
    ASSERT_EQ(taps.size(), 5u);
    auto pool3 = fx.output(set + ".pool3");
    std::printf("[fid %s] pool3 max|diff| %.3g (max|ref| %.3g)\n", set.c_str(), maxdiff(taps[4], pool3),
                pool3.abs().max().item<double>());
    EXPECT_TRUE(emo::test::AllClose(taps[4], pool3, 1e-4));
    const char* blocks[] = {"block0", "block1", "block2"};
    for (int b = 0; b < 3; ++b) {
      auto want = fx.output(set + "." + blocks[b] + "_channel_mean");
      EXPECT_TRUE(emo::test::AllClose(taps[1 + b].mean({2, 3}), want, 1e-4)) << blocks[b];
    }
    if (fx.has("output." + set + ".input0_resized_normalized"))
      // 1.3e-5: torch 2.x's bilinear resize kernel vs the torch 1.13 that made the fixture (float32 rounding).
      EXPECT_TRUE(emo::test::AllClose(taps[0][0], fx.output(set + ".input0_resized_normalized"), 3e-5));
  }
  EXPECT_GE(sets, 3);
}

TEST(GoldenEvalFid, FeaturesBatchedMatchesReference) {
  // The public features() path (uint8 NHWC -> batches) on the smallest set, batch size 1.
  EMO_GOLDEN_FIXTURE(fx, "eval/fid_inception");
  auto model = ev::FidInception::from_state_dict(fx.weights());
  auto feats = model.features(fx.input("s192x256.images_u8"), /*batch_size=*/1);
  EXPECT_TRUE(emo::test::AllClose(feats, fx.output("s192x256.pool3"), 1e-4));
}

TEST(GoldenEvalSync, Wav2LipEvaluate) {
  EMO_GOLDEN_FIXTURE(fx, "eval/syncnet");
  auto net = ev::SyncNet::from_state_dict(fx.weights(), "eval/syncnet/weights.safetensors");
  auto frames = fx.input("frames_bgr_u8");
  EXPECT_TRUE(torch::equal(ev::resize_224_linear(frames[0]), fx.output("frame0_resized_224_u8")));
  ev::SyncOptions opt;
  opt.variant = ev::SyncVariant::kWav2Lip;
  opt.vshift = static_cast<int>(fx.input("vshift").item<int64_t>());
  opt.batch_size = static_cast<int>(fx.input("batch_size").item<int64_t>());
  ASSERT_EQ(fx.input("sample_rate").item<int64_t>(), 16000);
  auto r = net.evaluate(frames, fx.input("audio_s16"), opt);
  std::printf("[sync] video_emb %.3g audio_emb %.3g mdist %.3g conf %.7g (ref %.7g) min_dist %.7g (ref %.7g) offset %d\n",
              maxdiff(r.video_emb, fx.output("video_emb")), maxdiff(r.audio_emb, fx.output("audio_emb")),
              maxdiff(r.mdist, fx.output("mdist")), r.conf, fx.output("conf").item<double>(), r.min_dist,
              fx.output("min_dist").item<double>(), r.offset);
  EXPECT_TRUE(emo::test::AllClose(r.video_emb, fx.output("video_emb"), 1e-4));
  EXPECT_TRUE(emo::test::AllClose(r.audio_emb, fx.output("audio_emb"), 1e-4));
  EXPECT_TRUE(emo::test::AllClose(r.dists, fx.output("dists"), 1e-4));
  EXPECT_TRUE(emo::test::AllClose(r.mdist, fx.output("mdist"), 1e-4));
  EXPECT_EQ(r.offset, fx.output("offset").item<int64_t>());
  const double conf = fx.output("conf").item<double>(), md = fx.output("min_dist").item<double>();
  EXPECT_NEAR(r.conf, conf, 1e-4 * std::max(1.0, md));  // conf is a difference of ~89-sized distances
  EXPECT_NEAR(r.min_dist, md, 1e-4 * md);
  EXPECT_TRUE(emo::test::AllClose(r.framewise_conf, fx.output("framewise_conf_medfilt"), 1e-4));
}

TEST(GoldenEvalSync, SyncnetPythonVariantOnPreResizedFrames) {
  // syncnet_python's evaluate takes 224x224 frames as they are; on frames resized like Wav2Lip's it must
  // give the same embeddings as the Wav2Lip variant (checked on the first 7 frames: 2 windows).
  EMO_GOLDEN_FIXTURE(fx, "eval/syncnet");
  auto net = ev::SyncNet::from_state_dict(fx.weights());
  auto frames = fx.input("frames_bgr_u8").narrow(0, 0, 7);
  auto audio = fx.input("audio_s16").narrow(0, 0, 7 * 640);
  std::vector<at::Tensor> resized;
  for (int64_t t = 0; t < frames.size(0); ++t) resized.push_back(ev::resize_224_linear(frames[t]));
  ev::SyncOptions o1, o2;
  o1.variant = ev::SyncVariant::kWav2Lip;
  o2.variant = ev::SyncVariant::kSyncnetPython;
  auto a = net.evaluate(frames, audio, o1);
  auto b = net.evaluate(torch::stack(resized), audio, o2);
  EXPECT_EQ(a.video_emb.size(0), 2);
  EXPECT_TRUE(torch::equal(a.video_emb, b.video_emb));
  EXPECT_EQ(a.offset, b.offset);
  EXPECT_EQ(a.conf, b.conf);
  // The reference's first two windows (batch of 20 vs 2: batch-independent up to rounding).
  EXPECT_TRUE(emo::test::AllClose(a.video_emb, fx.output("video_emb").narrow(0, 0, 2), 1e-4));
  EXPECT_THROW(net.evaluate(frames, audio.narrow(0, 0, 5 * 640), o1), emo::InputError);
}
