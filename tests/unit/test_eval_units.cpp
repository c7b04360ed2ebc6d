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

#include <torch/script.h>
#include <unistd.h>

#include <filesystem>

TEST(EvalUnits, I3dTorchScriptInterface) {
  // A stand-in TorchScript module with i3d_torchscript.pt's forward signature: records the flags it got
  // and returns 400 "logits" derived from the input, so the call convention and batching are checked.
  torch::jit::Module m("I3DStandIn");
  m.define(R"JIT(
def forward(self, x, rescale: bool, resize: bool, return_features: bool):
    flags = float(rescale) * 100.0 + float(resize) * 10.0 + float(return_features)
    b = x.shape[0]
    return x.mean([1, 2, 3, 4]).unsqueeze(1).repeat(1, 400) * 0.0 + x.reshape(b, -1).sum(1, keepdim=True) + flags
)JIT");
  const auto path = std::filesystem::temp_directory_path() / ("emo_i3d_" + std::to_string(::getpid()) + ".pt");
  m.save(path.string());
  auto i3d = ev::I3D::load(path.string());
  std::filesystem::remove(path);
  auto x = torch::ones({2, 3, 4, 8, 8});
  auto f = i3d.features(x, /*rescale=*/true, /*resize=*/false);
  ASSERT_EQ(f.sizes(), (c10::IntArrayRef{2, 400}));
  EXPECT_FLOAT_EQ(f[0][0].item<float>(), 3 * 4 * 8 * 8 + 101.0f);
  // common_metrics convention: 12 videos -> batches of 10 + 2, preprocess to 224 in [-1, 1], flags 0, 0, 1.
  auto videos = torch::full({12, 10, 6, 8, 3}, 255, torch::kUInt8);
  auto g = i3d.features_common_metrics(videos);
  ASSERT_EQ(g.sizes(), (c10::IntArrayRef{12, 400}));
  EXPECT_NEAR(g[11][5].item<double>(), 3.0 * 10 * 224 * 224 * 1.0 + 1.0, 1e-2);
  EXPECT_THROW(ev::I3D::load("/nonexistent/i3d_torchscript.pt"), emo::ModelError);
  EXPECT_THROW(i3d.features_common_metrics(torch::zeros({1, 9, 8, 8, 3}, torch::kUInt8)), emo::InputError);
}
