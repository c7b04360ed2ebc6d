// Small eval helpers without fixtures.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "emo/error.h"
#include "emo/eval.h"

namespace ev = emo::eval;

TEST(EvalUnits, PcmFloatToS16LikeSwresample) {
  auto x = torch::tensor({0.0f, 0.5f, -0.5f, 1.0f, -1.0f, 1.5f, -1.5f, 1.0f / 65536.0f, 3.0f / 65536.0f});
  auto y = ev::pcm_float_to_s16(x);
  std::vector<int16_t> want = {0, 16384, -16384, 32767, -32768, 32767, -32768, 0, 2};  // lrintf: half to even
  ASSERT_EQ(y.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(y[i].item<int16_t>(), want[i]) << i;
}

TEST(EvalUnits, FrechetOfIdenticalSetsIsZero) {
  torch::manual_seed(0);
  auto f = torch::randn({50, 8}, torch::kFloat64);
  auto s = ev::feature_statistics(f);
  EXPECT_NEAR(ev::frechet_distance(s, s).distance, 0.0, 1e-10);
  auto b = ev::feature_statistics(f, ev::Covariance::kBiased);
  EXPECT_TRUE(torch::allclose(b.sigma * 50.0 / 49.0, s.sigma, 1e-12, 1e-12));
}

TEST(EvalUnits, SsimPsnrRejectMismatchedFrames) {
  auto a = torch::zeros({16, 16, 3}, torch::kUInt8), b = torch::zeros({16, 17, 3}, torch::kUInt8);
  EXPECT_THROW(ev::ssim(a, b), emo::InputError);
  EXPECT_THROW(ev::psnr(a, b), emo::InputError);
  EXPECT_THROW(ev::ssim(torch::zeros({4, 4, 3}, torch::kUInt8), torch::zeros({4, 4, 3}, torch::kUInt8)), emo::InputError);
}

TEST(EvalUnits, MfccFrameCountFollowsPythonSpeechFeatures) {
  // numframes = 1 + ceil((N - 400) / 160); a signal no longer than one frame gives one frame.
  EXPECT_EQ(ev::mfcc(torch::ones({400}, torch::kInt16)).size(0), 1);
  EXPECT_EQ(ev::mfcc(torch::ones({401}, torch::kInt16)).size(0), 2);
  EXPECT_EQ(ev::mfcc(torch::ones({50560}, torch::kInt16)).size(0), 315);
  // Silence: zero energies are replaced by DBL_EPSILON before the log (finite output).
  EXPECT_TRUE(torch::isfinite(ev::mfcc(torch::zeros({1000}, torch::kInt16))).all().item<bool>());
}
